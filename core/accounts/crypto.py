"""Provider keys encrypted at rest: Fernet under the server secret ``IMAGE_STUDIO_SECRET_KEY``.

The secret is one Fernet key, or several separated by commas for rotation: the
first encrypts, every one of them decrypts (``MultiFernet``). To rotate, put a new
key first, keep the old ones after it, restart, and re-encrypt what is stored
(Settings, or ``KeyVault.rotate``); then the old keys can go. Make a key with
``python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.

What is sealed is the provider key *bound* to whom it belongs: the token's plaintext
names the holder and the provider, and opening it checks both, so a token copied
onto another row (another user, another provider) is refused like a changed one.
Fernet authenticates every token (AES-CBC with an HMAC), so a changed byte is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.accounts.sources import SECRET_KEY_NAME, read_setting

__all__ = [
    "KeyUnreadable",
    "SecretKeyInvalid",
    "SecretKeyMissing",
    "Sealer",
    "configured_secrets",
    "new_secret",
    "sealer",
]

_MAKE_ONE = 'python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SecretKeyMissing(RuntimeError):
    """No server secret is configured, so no key can be stored (or read back)."""

    def __init__(self) -> None:
        super().__init__(
            f"{SECRET_KEY_NAME} is not set, so keys cannot be stored encrypted. Set it in the environment or in "
            f".streamlit/secrets.toml (under [image_studio]) to a Fernet key, made with: {_MAKE_ONE}"
        )


class SecretKeyInvalid(ValueError):
    """A configured secret is not a Fernet key (the message says which one by position, never its text)."""


class KeyUnreadable(ValueError):
    """A stored key cannot be opened: changed, moved to another row, or sealed with a secret no longer configured."""


def new_secret() -> str:
    return Fernet.generate_key().decode()


def configured_secrets(secrets: Mapping[str, object] | None = None) -> list[str]:
    """The configured secrets, newest first (empty when none is set)."""
    raw = read_setting(SECRET_KEY_NAME, secrets)
    if raw is None:
        return []
    parts = raw.split(",") if isinstance(raw, str) else raw
    return [p.strip() for p in parts if p.strip()]


class Sealer:
    """Seals and opens keys with the configured secrets (the first one encrypts)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SecretKeyMissing()
        fernets = []
        for position, secret in enumerate(secrets, start=1):
            try:
                fernets.append(Fernet(secret.encode()))
            except (ValueError, TypeError) as exc:
                raise SecretKeyInvalid(
                    f"{SECRET_KEY_NAME}: entry {position} of {len(secrets)} is not a Fernet key "
                    f"(32 bytes, url-safe base64). Make one with: {_MAKE_ONE}"
                ) from exc
        self._fernet = MultiFernet(fernets)
        self.count = len(fernets)

    def seal(self, holder: str, provider: str, key: str) -> str:
        plain = json.dumps({"v": 1, "holder": holder, "provider": provider, "key": key}, separators=(",", ":"))
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, token: str, holder: str, provider: str) -> str:
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError) as exc:
            raise KeyUnreadable(
                f"The stored {provider} key cannot be decrypted: it was changed, or it was encrypted with a "
                f"secret that is no longer in {SECRET_KEY_NAME}."
            ) from exc
        if not isinstance(payload, dict) or payload.get("holder") != holder or payload.get("provider") != provider:
            raise KeyUnreadable(f"The stored {provider} key belongs to someone else: refused.")
        key = payload.get("key")
        if not isinstance(key, str):
            raise KeyUnreadable(f"The stored {provider} key is damaged.")
        return key

    def rotate(self, token: str) -> str:
        """The same token re-encrypted with the newest secret (raises :class:`KeyUnreadable` if it cannot be read)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise KeyUnreadable("A stored key cannot be decrypted with any configured secret.") from exc


def sealer(secrets: Mapping[str, object] | None = None) -> Sealer:
    """A sealer over the secrets configured now; raises :class:`SecretKeyMissing` when there are none."""
    return Sealer(configured_secrets(secrets))
