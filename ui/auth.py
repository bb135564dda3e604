"""Sign-in: the gate ``app.py`` runs first, and :func:`current_user`, who every page and service acts for.

With ``[auth]`` in ``.streamlit/secrets.toml`` (Streamlit's own format, ``st.login``),
a visitor who has not signed in gets the sign-in screen and nothing else, whatever
page the address names; someone signed in but in no role gets "ask an owner for
access" and a way to log out. Without ``[auth]`` there is one person, the operator
on their own machine (``LOCAL_OPERATOR``), and the app is as it always was.

Who someone is comes from ``st.user`` (Streamlit's signed identity cookie); what they
may do comes from the accounts directory in the shared database, re-read on every run,
so a role changed in another app process counts at the next click.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import streamlit as st

from core.accounts import ANONYMOUS, LOCAL_OPERATOR, ROLE_WORDS, ROLES, Identity, PermissionDenied, SecretKeyInvalid
from core.accounts import service as accounts_service
from core.accounts.claims import read_claims
from core.accounts.crypto import configured_secrets
from core.accounts.roles import Role
from core.accounts.sources import ENV_NAMES, SECRET_KEY_NAME, configured_roles, secrets_mapping

__all__ = ["NO_SIGN_IN", "Visitor", "account_box", "auth_configured", "current_user", "gate", "log_out",
           "settings_section", "visitor"]

_SIGNED_IN = "_auth_signed_in"  # session_state: {"email", "user_id", "session_id", "touched"} once signed in
_TOUCH_SECONDS = 60.0

VisitorState = Literal["local", "signed_out", "no_email", "unverified", "no_access", "member"]


@dataclass(frozen=True)
class Visitor:
    state: VisitorState
    identity: Identity


def auth_configured() -> bool:
    """Whether ``[auth]`` is in secrets.toml: then everyone must sign in."""
    section = secrets_mapping().get("auth")
    return isinstance(section, Mapping) and len(section) > 0


def _providers() -> list[str | None]:
    """The providers ``[auth]`` names: None for the default one, else each ``[auth.<name>]``."""
    section = secrets_mapping().get("auth")
    if not isinstance(section, Mapping):
        return [None]
    # Streamlit's named providers: [auth.<name>] tables holding their own client_id (no "_" in a name).
    named = [str(k) for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v and "_" not in k]
    return [*([None] if "client_id" in section or not named else []), *named]


def _member(email: str, name: str) -> Identity:
    """The signed-in person: recorded at their first run in this session, re-read (role and all) at every run."""
    accounts = accounts_service.accounts()
    known = st.session_state.get(_SIGNED_IN)
    if isinstance(known, dict) and known.get("email") == email:
        identity = accounts.identity(known["user_id"], known["session_id"])
        if identity is not None:
            if time.monotonic() - known["touched"] >= _TOUCH_SECONDS:
                accounts.touch_session(known["session_id"])
                known["touched"] = time.monotonic()
            return identity
    identity = accounts.sign_in(email, name)
    st.session_state[_SIGNED_IN] = {"email": identity.email, "user_id": identity.user_id,
                                    "session_id": identity.session_id, "touched": time.monotonic()}
    return identity


def visitor() -> Visitor:
    """Who this run is for, and whether they may in."""
    if not auth_configured():
        return Visitor("local", LOCAL_OPERATOR)
    claims = read_claims(st.user.to_dict())
    if claims.state == "unverified" or claims.state == "no_email":
        return Visitor(claims.state, ANONYMOUS)
    if claims.state == "signed_out" or claims.email is None:
        return Visitor("signed_out", ANONYMOUS)
    identity = _member(claims.email, claims.name)
    return Visitor("member" if identity.has_access else "no_access", identity)


def current_user() -> Identity:
    """The one answer to "who is this?" for pages and the services they call.

    The local operator when no sign-in is configured; otherwise the signed-in person
    with their role now (``"none"`` for anyone not let in, whom no action is allowed).
    """
    return visitor().identity


def gate() -> Identity:
    """Let a member (or the local operator) through; draw the sign-in or no-access screen and stop otherwise."""
    found = visitor()
    if found.state in ("local", "member"):
        return found.identity
    st.title("Image Studio")
    if found.state == "signed_out":
        _sign_in_screen()
    else:
        _no_access_screen(found)
    st.stop()
    raise AssertionError("st.stop() returned")  # pragma: no cover - st.stop raises


def _sign_in_screen() -> None:
    st.markdown("Sign in to continue.")
    for provider in _providers():
        label = "Log in" if provider is None else f"Log in with {provider}"
        if st.button(label, type="primary", key=f"auth_login_{provider or 'default'}"):
            if provider is None:
                st.login()
            else:
                st.login(provider)


def _no_access_screen(found: Visitor) -> None:
    if found.state == "no_email":
        st.warning("Your sign-in did not share an email address, so Image Studio cannot tell who you are. "
                   "Ask an owner for access with an account that shares one.")
    elif found.state == "unverified":
        st.warning("Your sign-in provider says your email address is not verified. Verify it there, "
                   "then log in again, or ask an owner for access.")
    else:
        st.warning(f"You are signed in as **{found.identity.email}**, but you have no access to Image Studio "
                   "yet. Ask an owner for access.", icon=":material/lock:")
        if not accounts_service.accounts().has_owner():
            st.caption(f"No owner is configured yet: whoever runs this app names one in `{ENV_NAMES['owner']}`.")
    if st.button("Log out", key="auth_logout_no_access"):
        log_out(found.identity)


def log_out(identity: Identity) -> None:
    """End this signed-in session everywhere (the database) and in the browser (Streamlit's cookie)."""
    if identity.session_id is not None:
        accounts_service.accounts().end_session(identity.session_id)
    st.session_state.pop(_SIGNED_IN, None)
    st.logout()


def account_box(identity: Identity) -> None:
    """Who is signed in, their role, and the way out (in the sidebar; nothing when no sign-in is configured)."""
    if not identity.signed_in:
        return
    with st.sidebar:
        st.caption(f"Signed in as **{identity.email}** · {ROLE_WORDS[identity.role].split(':')[0]}")
        if st.button("Log out", key="auth_logout", icon=":material/logout:"):
            log_out(identity)


# --- Settings: sign-in and roles ---------------------------------------------------------------
NO_SIGN_IN = (
    "No sign-in is configured: everyone who can open this address is the operator. To share it, configure "
    "`[auth]` in `.streamlit/secrets.toml` (Streamlit's `st.login`, with any OpenID Connect provider) and name "
    "the owners in `IMAGE_STUDIO_OWNERS`: see “Sharing it with a team” in the README."
)


def settings_section(user: Identity) -> None:
    """Settings' part on sign-in: who is what, and (owners) changing it; the server secret for stored keys."""
    st.subheader("Sign-in and roles")
    if not auth_configured():
        st.info(NO_SIGN_IN, icon=":material/person:")
        return
    accounts = accounts_service.accounts()
    st.markdown(f"Everyone signs in here. You are **{user.email}** ({user.role}). "
                "Someone who signs in but has no role sees only “ask an owner for access”.")
    if not user.can("manage_roles"):  # who else is here is the owners' business
        return
    _configured_table()
    if not accounts.has_owner():
        st.warning(f"No owner is configured: name one in `{ENV_NAMES['owner']}`.")
    members = accounts.members()
    if members:
        st.dataframe(
            [{"Email": m.email, "Name": m.name, "Role": m.role, "From configuration": m.configured,
              "Given here": m.granted, "Last seen": m.last_seen} for m in members],
            hide_index=True, width="stretch",
        )
    if user.can("manage_roles"):
        _roles_form(user)
    _secret_status(user)


def _configured_table() -> None:
    configured = configured_roles()
    lines = []
    for role in ROLES:
        found = ", ".join(sorted(configured.lists[role].patterns)) or "nobody"
        lines.append(f"- **{ROLE_WORDS[role]}**. Configured (`{ENV_NAMES[role]}`): {found}")
    st.markdown("\n".join(lines))
    if configured.ignored:
        st.warning("Ignored in the configuration (neither an email nor an @domain): " + ", ".join(configured.ignored))


_REMOVE = "remove"


def _roles_form(user: Identity) -> None:
    accounts = accounts_service.accounts()
    st.caption("Give someone a role here, by email or a whole @domain. The configuration is the floor: a role "
               "given here can raise what it says, never lower it; to lower one, change the configuration.")
    with st.form("roles_form", border=False):
        c1, c2 = st.columns([3, 2])
        pattern = c1.text_input("Email or @domain", placeholder="ana@example.com or @example.com")
        choice = c2.selectbox("Role", [*ROLES, _REMOVE],
                              format_func=lambda r: "remove the role given here" if r == _REMOVE else r)
        if st.form_submit_button("Save role"):
            try:
                if choice == _REMOVE:
                    done = accounts.revoke(user, pattern)
                    st.success("Removed." if done else "No role was given here to that address.")
                else:
                    accounts.grant(user, pattern, cast(Role, choice))
                    st.success(f"{pattern.strip()} is now at least a {choice}.")
            except (ValueError, PermissionDenied) as exc:
                st.error(str(exc))
    grants = accounts.grants()
    if grants:
        st.dataframe([{"Email or domain": g.pattern, "Role given here": g.role, "By": g.granted_by,
                       "When": g.granted_at} for g in grants], hide_index=True, width="stretch")


def _secret_status(user: Identity) -> None:
    secrets = configured_secrets()
    stored = accounts_service.vault().count()
    if not secrets:
        st.caption(f"`{SECRET_KEY_NAME}` is not set: keys cannot be stored for people or the team until it is. "
                   f"{stored} stored key(s).")
        return
    st.caption(f"Stored keys are encrypted with `{SECRET_KEY_NAME}` ({len(secrets)} secret(s) configured; the "
               f"first encrypts). {stored} stored key(s); none is ever shown again.")
    if len(secrets) > 1 and stored and user.can("manage_team_keys"):
        if st.button("Re-encrypt stored keys with the newest secret"):
            try:
                done, unreadable = accounts_service.vault().rotate(user)
            except (SecretKeyInvalid, PermissionDenied) as exc:
                st.error(str(exc))
            else:
                st.success(f"Re-encrypted {done} key(s)."
                           + (f" {unreadable} could not be read with any configured secret." if unreadable else ""))
