"""Accounts: who may do what in Image Studio, and the provider keys people keep in it.

- ``roles``: the three roles and lists of emails or ``@domain`` (pure);
- ``sources``: the configuration (``IMAGE_STUDIO_OWNERS``/``_MAKERS``/``_VIEWERS``,
  ``IMAGE_STUDIO_SECRET_KEY``) from secrets.toml or the environment;
- ``identity``: :class:`Identity` and the role check every write path makes (``require``);
- ``directory``: users, roles granted in the app and signed-in sessions, in the shared database;
- ``crypto`` and ``keys``: provider keys encrypted at rest (Fernet), never shown again;
- ``service``: this process's directory and vault.

Sign-in itself is Streamlit's (``st.login``); ``ui.auth.current_user()`` turns ``st.user``
into an :class:`Identity`.
"""

from core.accounts.crypto import KeyUnreadable, SecretKeyInvalid, SecretKeyMissing
from core.accounts.directory import Accounts, CannotChangeOwnRole, Grant, Member
from core.accounts.identity import (
    ANONYMOUS,
    LOCAL_OPERATOR,
    LOCAL_USER_ID,
    PERMISSIONS,
    Action,
    Identity,
    PermissionDenied,
)
from core.accounts.keys import TEAM, KeyStatus, KeyVault, open_key
from core.accounts.roles import ROLE_WORDS, ROLES, AccessRole, Role

__all__ = [
    "ANONYMOUS",
    "LOCAL_OPERATOR",
    "LOCAL_USER_ID",
    "PERMISSIONS",
    "ROLES",
    "ROLE_WORDS",
    "TEAM",
    "AccessRole",
    "Accounts",
    "Action",
    "CannotChangeOwnRole",
    "Grant",
    "Identity",
    "KeyStatus",
    "KeyUnreadable",
    "KeyVault",
    "Member",
    "PermissionDenied",
    "Role",
    "SecretKeyInvalid",
    "SecretKeyMissing",
    "open_key",
]
