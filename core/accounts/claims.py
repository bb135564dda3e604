"""What the identity provider's claims (``st.user``) say about who is signing in. Pure, no Streamlit.

Only a signed-in claim set with an email address can become a person: the email is the
identity (lowercased, as the role lists compare it). A provider that marks the address
unverified (``email_verified: false``) is not trusted with it, since anyone could then
claim an owner's address; a provider that says nothing about verification is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.accounts.roles import normalize_email, normalize_pattern

__all__ = ["ClaimsState", "SignInClaims", "read_claims"]

ClaimsState = Literal["signed_out", "no_email", "unverified", "signed_in"]


@dataclass(frozen=True)
class SignInClaims:
    state: ClaimsState
    email: str | None = None
    name: str = ""


def read_claims(claims: Mapping[str, object]) -> SignInClaims:
    if claims.get("is_logged_in") is not True:
        return SignInClaims("signed_out")
    raw = claims.get("email")
    email = normalize_email(raw) if isinstance(raw, str) else ""
    if not email or email.startswith("@") or normalize_pattern(email) != email:
        return SignInClaims("no_email")
    if claims.get("email_verified") in (False, "false"):
        return SignInClaims("unverified", email)
    name = claims.get("name")
    return SignInClaims("signed_in", email, name.strip() if isinstance(name, str) else "")
