"""Who is what: the three roles, and lists of emails or ``@domain`` read into rules.

Pure functions, no I/O. A list is what ``IMAGE_STUDIO_OWNERS`` (``_MAKERS``,
``_VIEWERS``) holds: entries separated by commas (or whitespace), each an email
(``ana@example.com``) or a whole domain (``@example.com``). Emails are compared
without regard to case. An entry naming one email is more specific than a domain:
when any exact entry matches, the domain entries are not consulted, so
``MAKERS=@example.com`` with ``VIEWERS=guest@example.com`` makes the guest a viewer.
Among matches of the same kind the highest role wins. A domain matches exactly
(``@example.com`` is not ``@sub.example.com``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "ROLES",
    "ROLE_WORDS",
    "AccessRole",
    "ParsedList",
    "Role",
    "RoleRules",
    "highest",
    "normalize_email",
    "normalize_pattern",
    "parse_list",
    "rank",
]

Role = Literal["owner", "maker", "viewer"]
AccessRole = Literal["owner", "maker", "viewer", "none"]  # "none": signed in, in no list

ROLES: tuple[Role, ...] = get_args(Role)  # highest first
ROLE_WORDS: Mapping[AccessRole, str] = {
    "owner": "Owner: settings, team keys, caps, prices, everyone's spend",
    "maker": "Maker: generates, compares and edits within their own daily cap",
    "viewer": "Viewer: opens what is shared, rates and votes, never spends",
    "none": "No access",
}
_RANK: Mapping[AccessRole, int] = {"owner": 3, "maker": 2, "viewer": 1, "none": 0}


def rank(role: AccessRole) -> int:
    return _RANK[role]


def highest(roles: Iterable[AccessRole]) -> AccessRole:
    best: AccessRole = "none"
    for role in roles:
        if _RANK[role] > _RANK[best]:
            best = role
    return best


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_pattern(entry: str) -> str | None:
    """An entry as stored and compared (``ana@example.com``, ``@example.com``), or None if it is neither."""
    text = entry.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or "@" in local or "." not in domain.strip(".") or any(c.isspace() for c in text):
        return None
    if local == "":
        return f"@{domain}"
    return text


def _domain(email: str) -> str:
    return email.rpartition("@")[2]


@dataclass(frozen=True)
class ParsedList:
    """One configured list: the patterns kept and the entries that were neither an email nor a domain."""

    patterns: frozenset[str] = frozenset()
    ignored: tuple[str, ...] = ()


def parse_list(value: str | Iterable[str] | None) -> ParsedList:
    """``"ana@x.com, @y.org"`` (or a TOML list of such strings) into patterns."""
    if value is None:
        return ParsedList()
    parts = value.replace(",", " ").replace(";", " ").split() if isinstance(value, str) else list(value)
    kept: set[str] = set()
    ignored: list[str] = []
    for part in parts:
        pattern = normalize_pattern(str(part))
        if pattern is None:
            if str(part).strip():
                ignored.append(str(part).strip())
        else:
            kept.add(pattern)
    return ParsedList(frozenset(kept), tuple(ignored))


@dataclass(frozen=True)
class RoleRules:
    """Patterns per role; :meth:`role_of` says what an email is under them."""

    patterns: Mapping[Role, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Role]]) -> RoleRules:
        out: dict[Role, set[str]] = {}
        for pattern, role in pairs:
            out.setdefault(role, set()).add(pattern)
        return cls({role: frozenset(found) for role, found in out.items()})

    def role_of(self, email: str) -> AccessRole:
        address = normalize_email(email)
        if "@" not in address:
            return "none"
        exact = [role for role, found in self.patterns.items() if address in found]
        if exact:
            return highest(exact)
        domain = f"@{_domain(address)}"
        return highest(role for role, found in self.patterns.items() if domain in found)

    def has_owner(self) -> bool:
        return bool(self.patterns.get("owner"))
