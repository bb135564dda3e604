"""Who is asking, and what their role lets them do: the one check every write path makes.

An :class:`Identity` is handed out by ``ui.auth.current_user()`` (from ``st.user`` and the
accounts directory) and passed down to the services; a service about to change
something calls ``identity.require(action)`` itself, on the server, whatever the page
showed. With no sign-in configured the app has one person, the operator on their own
machine: :data:`LOCAL_OPERATOR`, who may do everything, as before accounts existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.accounts.roles import AccessRole

__all__ = [
    "ANONYMOUS",
    "LOCAL_OPERATOR",
    "LOCAL_USER_ID",
    "PERMISSIONS",
    "Action",
    "Identity",
    "PermissionDenied",
]

Action = Literal[
    "view",  # open what is shared with them (History, results, comparisons)
    "rate",  # rate images, vote in reviews
    "generate",  # submit jobs (Studio, Compare, edits, re-renders): spends money
    "use_own_key",  # store their own provider key
    "delete_own",  # delete jobs they made
    "delete_any",
    "manage_settings",  # app-wide defaults and price overrides (a credit's value)
    "set_caps",  # the team cap and per-member caps
    "manage_team_keys",  # the keys shared with the team
    "manage_roles",  # who is what
    "see_all_spend",  # everyone's spend
    "view_all",  # everyone's work in History, private or not
]

_VIEWER: frozenset[Action] = frozenset({"view", "rate"})
_MAKER: frozenset[Action] = _VIEWER | {"generate", "use_own_key", "delete_own"}
_OWNER: frozenset[Action] = _MAKER | {
    "delete_any", "manage_settings", "set_caps", "manage_team_keys", "manage_roles", "see_all_spend",
    "view_all",
}
PERMISSIONS: Mapping[AccessRole, frozenset[Action]] = {
    "owner": _OWNER,
    "maker": _MAKER,
    "viewer": _VIEWER,
    "none": frozenset(),
}

LOCAL_USER_ID = "local"  # the operator when no sign-in is configured (not a row in ``users``)


class PermissionDenied(PermissionError):
    """A role does not allow the action (the message is for the person, never a secret)."""

    def __init__(self, identity: Identity, action: Action, what: str | None = None) -> None:
        self.identity = identity
        self.action = action
        who = identity.email or "this visitor"
        if what is not None:  # allowed the action, not on this thing (someone else's job)
            super().__init__(f"{who} ({identity.role}) may not {what}: it is someone else's. "
                             "Ask its maker or an owner.")
        else:
            super().__init__(f"Not allowed: {who} is a {identity.role} and may not {action.replace('_', ' ')}. "
                             "Ask an owner if you need to.")


@dataclass(frozen=True)
class Identity:
    """One person: their user id, email, name and role right now."""

    user_id: str  # a users.id; LOCAL_USER_ID for the local operator; "" for a visitor not signed in
    email: str | None  # lowercased; None for the local operator and a visitor not signed in
    name: str
    role: AccessRole
    local: bool = False  # True only when no sign-in is configured: the operator on their own machine
    session_id: str | None = None  # the app's id of this signed-in browser session

    def can(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    def require(self, action: Action) -> None:
        """Raise :class:`PermissionDenied` unless the role allows ``action``."""
        if not self.can(action):
            raise PermissionDenied(self, action)

    def owns(self, made_by: str | None) -> bool:
        """Whether something made by ``made_by`` (a user id; None: before accounts) is this person's own."""
        return made_by is not None and made_by == self.user_id

    def require_on(self, action: Action, made_by: str | None, what: str) -> None:
        """``action`` on one thing: allowed for its maker, and for whoever may do it to anyone's.

        ``delete_own`` is widened by ``delete_any``; ``generate`` (cancel, check again) by ``view_all``
        (an owner looks after everyone's jobs).
        """
        self.require(action)
        wider: Action = "delete_any" if action == "delete_own" else "view_all"
        if not (self.owns(made_by) or self.can(wider)):
            raise PermissionDenied(self, action, what)

    def sees(self, made_by: str | None, shared: bool | None) -> bool:
        """Whether History shows this person a job: their own, one shared with the team, or (owners) all."""
        return self.can("view_all") or (self.can("view") and (self.owns(made_by) or bool(shared)))

    @property
    def history_scope(self) -> str | None:
        """``JobFilter.visible_to`` for this person: None (everyone's) for owners, else their user id."""
        return None if self.can("view_all") else self.user_id

    @property
    def has_access(self) -> bool:
        return self.role != "none"

    @property
    def signed_in(self) -> bool:
        return not self.local and self.email is not None


LOCAL_OPERATOR = Identity(user_id=LOCAL_USER_ID, email=None, name="Operator", role="owner", local=True)
ANONYMOUS = Identity(user_id="", email=None, name="Visitor", role="none")  # sign-in configured, not signed in
