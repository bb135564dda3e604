"""Two cookies for review links: a random id per browser, and a review link carried across sign-in.

Streamlit's sessions are per tab; a review must not let a second tab vote twice on a pair, so
without sign-in the voter is the browser. ``BrowserIdMiddleware`` (an ASGI middleware ``app.py``
gives ``st.App``) sets ``COOKIE`` on the first page load when the request carries none; the page
reads it back from ``st.context.cookies``, which come from the same browser's WebSocket handshake.
The id says nothing about the person: it is only a key to their votes.

With sign-in on, a viewer who opens ``/?review=<token>`` signed out goes through the identity
provider and comes back to ``/`` with the query gone. So a signed-out request for a review link
also sets ``PENDING`` (the token, 15 minutes), and the first signed-in request for the bare root
that carries it is redirected to the link and the cookie cleared: the link survives the round trip.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

__all__ = ["COOKIE", "PENDING", "BrowserIdMiddleware", "valid"]

COOKIE = "image_studio_browser"
PENDING = "image_studio_review_link"
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_YEAR = 365 * 24 * 3600
_PENDING_SECONDS = 15 * 60
_SIGNED_IN = "_streamlit_user"  # Streamlit's identity cookie (possibly in chunks: _streamlit_user_<n>)

Scope = dict[str, Any]


def valid(value: str | None) -> str | None:
    """The value if it has the shape of what this module writes (and of a review token), else None."""
    return value if value and _SHAPE.match(value) else None


def _cookies(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed Cookie header: treat as none
                continue
            out.update({k: m.value for k, m in jar.items()})
    return out


def _set(name: str, value: str, max_age: int) -> tuple[bytes, bytes]:
    return (b"set-cookie", f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax".encode())


class BrowserIdMiddleware:
    """Adds the cookies above to HTTP responses, and sends a returning signed-in viewer back to their link."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        jar = _cookies(scope)
        headers: list[tuple[bytes, bytes]] = []
        if not valid(jar.get(COOKIE)):
            headers.append(_set(COOKIE, secrets.token_urlsafe(18), _YEAR))
        at_root = scope.get("path") in ("", "/")
        signed_in = any(k == _SIGNED_IN or k.startswith(_SIGNED_IN + "_") for k in jar)
        query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        token = valid((query.get("review") or [""])[0])
        pending = valid(jar.get(PENDING))
        if at_root and signed_in and pending and not query:
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", f"/?review={pending}".encode()), _set(PENDING, "", 0), *headers]})
            await send({"type": "http.response.body", "body": b""})
            return
        if at_root and token and not signed_in:
            headers.append(_set(PENDING, token, _PENDING_SECONDS))
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)
