"""Provider keys encrypted at rest: round trip, never shown, rotation, tampering, a restart, roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import db
from core.accounts import (
    TEAM,
    Accounts,
    Identity,
    KeyStatus,
    KeyUnreadable,
    KeyVault,
    PermissionDenied,
    SecretKeyInvalid,
    SecretKeyMissing,
    open_key,
)
from core.accounts.crypto import new_secret
from core.accounts.sources import configured_roles

KEY = "sk-test-1234567890abcdef-SECRET"
CHILD = Path(__file__).with_name("key_child.py")


@pytest.fixture
def engine(db_url: str) -> Engine:
    found = db.get_engine(db_url)
    db.migrate(found)
    return found


@pytest.fixture
def people(engine: Engine) -> Callable[[str], Identity]:
    rules = configured_roles({"IMAGE_STUDIO_OWNERS": "ana@example.com", "IMAGE_STUDIO_MAKERS": "max@example.com",
                              "IMAGE_STUDIO_VIEWERS": "vic@example.com"}).rules
    accounts = Accounts(engine, lambda: rules)
    return lambda email: accounts.sign_in(email)


def secrets(*keys: str) -> dict[str, object]:
    return {"IMAGE_STUDIO_SECRET_KEY": ",".join(keys)}


def tokens(engine: Engine) -> list[str]:
    with db.read(engine) as conn:
        return [r.token for r in conn.execute(sa.select(db.stored_keys.c.token)).all()]


def set_token(engine: Engine, holder: str, provider: str, token: str) -> None:
    with db.write(engine) as conn:
        conn.execute(sa.update(db.stored_keys).where(db.stored_keys.c.holder == holder,
                                                     db.stored_keys.c.provider == provider).values(token=token))


def test_a_stored_key_round_trips_and_is_never_shown(engine: Engine, people: Callable[[str], Identity]) -> None:
    max_ = people("max@example.com")
    vault = KeyVault(engine, secrets(new_secret()))
    status = vault.store(max_, "openai", f"  {KEY}  ")
    assert open_key(engine, max_.user_id, "openai", vault._secrets) == KEY
    assert all(KEY not in t and "1234" not in t for t in tokens(engine))  # encrypted at rest
    # What a page may learn: that it is set, by whom, when. Nothing of the key itself.
    assert vault.statuses(max_.user_id) == {"openai": status}
    assert KEY not in repr(status) and "cdef" not in repr(status)
    assert set(KeyStatus.__dataclass_fields__) == {"holder", "provider", "set_by", "set_at", "rotated_at"}
    assert status.set_by == "max@example.com"
    assert open_key(engine, max_.user_id, "evolink", vault._secrets) is None
    vault.store(max_, "openai", "sk-replaced")
    assert open_key(engine, max_.user_id, "openai", vault._secrets) == "sk-replaced" and vault.count() == 1
    assert vault.forget(max_, "openai") and vault.count() == 0
    with pytest.raises(ValueError, match="empty"):
        vault.store(max_, "openai", "   ")


def test_storing_without_a_server_secret_is_a_clear_error(engine: Engine, people: Callable[[str], Identity]) -> None:
    max_ = people("max@example.com")
    with pytest.raises(SecretKeyMissing, match="IMAGE_STUDIO_SECRET_KEY is not set.*Fernet.generate_key"):
        KeyVault(engine, {}).store(max_, "openai", KEY)
    assert tokens(engine) == []  # nothing written
    with pytest.raises(SecretKeyInvalid, match="entry 2 of 2 is not a Fernet key") as err:
        KeyVault(engine, secrets(new_secret(), "hunter2-not-a-key")).store(max_, "openai", KEY)
    assert "hunter2" not in str(err.value)


def test_the_secret_comes_from_the_environment_too(engine: Engine, people: Callable[[str], Identity],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_SECRET_KEY", f" {new_secret()} ")
    max_ = people("max@example.com")
    KeyVault(engine, {}).store(max_, "openai", KEY)
    assert open_key(engine, max_.user_id, "openai", {}) == KEY


def test_rotation_reads_old_keys_and_re_encrypts_with_the_new(engine: Engine,
                                                              people: Callable[[str], Identity]) -> None:
    ana, max_ = people("ana@example.com"), people("max@example.com")
    old, new = new_secret(), new_secret()
    KeyVault(engine, secrets(old)).store(max_, "openai", KEY)
    KeyVault(engine, secrets(old)).store(ana, "apiframe", "afk-team", team=True)
    before = tokens(engine)

    rotated = KeyVault(engine, secrets(new, old))
    assert open_key(engine, max_.user_id, "openai", secrets(new, old)) == KEY  # the old secret still opens it
    with pytest.raises(KeyUnreadable):
        open_key(engine, max_.user_id, "openai", secrets(new))  # not yet re-encrypted
    with pytest.raises(PermissionDenied):
        rotated.rotate(max_)
    assert rotated.rotate(ana) == (2, 0)
    assert set(tokens(engine)).isdisjoint(before)
    assert open_key(engine, max_.user_id, "openai", secrets(new)) == KEY  # the old secret can go now
    assert open_key(engine, TEAM, "apiframe", secrets(new)) == "afk-team"
    assert rotated.statuses(TEAM)["apiframe"].rotated_at is not None
    with pytest.raises(KeyUnreadable):
        open_key(engine, max_.user_id, "openai", secrets(old))
    # A key sealed with a secret nobody configures any more is counted, left alone, never guessed at.
    set_token(engine, max_.user_id, "openai", before[0])
    assert KeyVault(engine, secrets(new)).rotate(ana) == (1, 1)


def test_a_changed_or_moved_token_is_refused(engine: Engine, people: Callable[[str], Identity]) -> None:
    max_, ana = people("max@example.com"), people("ana@example.com")
    conf = secrets(new_secret())
    vault = KeyVault(engine, conf)
    vault.store(max_, "openai", KEY)
    vault.store(ana, "openai", "sk-ana")
    (max_token,) = [t for h, t in _rows(engine) if h == max_.user_id]

    flipped = max_token[:40] + ("A" if max_token[40] != "A" else "B") + max_token[41:]
    set_token(engine, max_.user_id, "openai", flipped)
    with pytest.raises(KeyUnreadable, match="changed"):
        open_key(engine, max_.user_id, "openai", conf)
    # Max's (valid) token copied onto Ana's row does not open as Ana's key, nor as another provider's.
    set_token(engine, ana.user_id, "openai", max_token)
    with pytest.raises(KeyUnreadable, match="someone else"):
        open_key(engine, ana.user_id, "openai", conf)
    vault.store(max_, "evolink", "ek")
    set_token(engine, max_.user_id, "evolink", max_token)
    with pytest.raises(KeyUnreadable, match="someone else"):
        open_key(engine, max_.user_id, "evolink", conf)


def _rows(engine: Engine) -> list[tuple[str, str]]:
    with db.read(engine) as conn:
        return [(r.holder, r.token) for r in conn.execute(sa.select(db.stored_keys)).all()]


def test_who_may_store_which_key(engine: Engine, people: Callable[[str], Identity]) -> None:
    vault = KeyVault(engine, secrets(new_secret()))
    vic, max_, ana = people("vic@example.com"), people("max@example.com"), people("ana@example.com")
    with pytest.raises(PermissionDenied):
        vault.store(vic, "openai", KEY)  # a viewer never spends, so keeps no key
    with pytest.raises(PermissionDenied):
        vault.store(max_, "openai", KEY, team=True)  # the team's keys are an owner's
    assert vault.store(ana, "openai", KEY, team=True).holder == TEAM
    assert vault.store(max_, "openai", KEY).holder == max_.user_id
    assert set(vault.statuses(TEAM)) == {"openai"} and set(vault.statuses(max_.user_id)) == {"openai"}


def test_another_process_opens_the_key_after_a_restart(db_url: str, engine: Engine,
                                                       people: Callable[[str], Identity]) -> None:
    """What a restarted runner sees: the key from the database, decrypted with the configured secret."""
    secret = new_secret()
    max_, ana = people("max@example.com"), people("ana@example.com")
    KeyVault(engine, secrets(secret)).store(max_, "openai", KEY)
    Accounts(engine, lambda: configured_roles({}).rules).grant(ana, "lee@example.com", "maker")

    def child(env_secret: str | None) -> dict[str, object]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_STUDIO_")}
        if env_secret is not None:
            env["IMAGE_STUDIO_SECRET_KEY"] = env_secret
        out = subprocess.run([sys.executable, str(CHILD), db_url, max_.user_id, "openai", "lee@example.com"],
                             env=env, capture_output=True, text=True, timeout=60, check=True)
        return dict(json.loads(out.stdout))

    assert child(f"{new_secret()},{secret}") == {"key": KEY, "error": None, "role": "maker"}
    assert child(new_secret())["error"] == "KeyUnreadable"
    assert child(None)["error"] == "SecretKeyMissing"
