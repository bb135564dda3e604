"""Where the accounts configuration comes from: ``.streamlit/secrets.toml``, then the environment.

The same order as provider keys (``core.config.get_secret``). Each name is looked up
under ``[image_studio]`` in secrets.toml, then at the top level of secrets.toml,
then in the environment; the first one set wins:

- ``IMAGE_STUDIO_OWNERS``, ``IMAGE_STUDIO_MAKERS``, ``IMAGE_STUDIO_VIEWERS``: lists of emails
  or ``@domain`` (a comma-separated string, or a TOML list of strings);
- ``IMAGE_STUDIO_SECRET_KEY``: one or several comma-separated Fernet keys, the first encrypts.

Nothing here caches: a changed environment or secrets file counts at the next read
(Streamlit reloads secrets.toml when it changes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from core import config
from core.accounts.roles import ParsedList, Role, RoleRules, parse_list

__all__ = [
    "ENV_NAMES",
    "SECRET_KEY_NAME",
    "SECTION",
    "ConfiguredRoles",
    "configured_roles",
    "read_setting",
    "secrets_mapping",
]

SECTION = "image_studio"
SECRET_KEY_NAME = "IMAGE_STUDIO_SECRET_KEY"
ENV_NAMES: Mapping[Role, str] = {
    "owner": "IMAGE_STUDIO_OWNERS",
    "maker": "IMAGE_STUDIO_MAKERS",
    "viewer": "IMAGE_STUDIO_VIEWERS",
}


def secrets_mapping() -> Mapping[str, object]:
    """``st.secrets`` as a mapping, or an empty one when there is no secrets file (``config.streamlit_secrets``)."""
    return config.streamlit_secrets()


def read_setting(name: str, secrets: Mapping[str, object] | None = None) -> str | list[str] | None:
    """A setting from ``[image_studio]``, the top of secrets.toml, or the environment (first set wins)."""
    secrets = secrets_mapping() if secrets is None else secrets
    section = secrets.get(SECTION)
    candidates: list[object] = []
    if isinstance(section, Mapping):
        candidates.append(section.get(name))
    candidates.append(secrets.get(name))
    candidates.append(os.environ.get(name))
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, list | tuple) and value:
            return [str(v) for v in value]
    return None


@dataclass(frozen=True)
class ConfiguredRoles:
    """The three lists as configured, and what in them was not an email or a domain."""

    lists: Mapping[Role, ParsedList]

    @property
    def rules(self) -> RoleRules:
        return RoleRules({role: parsed.patterns for role, parsed in self.lists.items()})

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(entry for parsed in self.lists.values() for entry in parsed.ignored)


def configured_roles(secrets: Mapping[str, object] | None = None) -> ConfiguredRoles:
    secrets = secrets_mapping() if secrets is None else secrets
    return ConfiguredRoles({role: parse_list(read_setting(env, secrets)) for role, env in ENV_NAMES.items()})
