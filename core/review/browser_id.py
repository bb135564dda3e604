"""A random id per browser, in a cookie, so a voter without sign-in is one voter across tabs and reloads.

Streamlit's sessions are per tab; a review must not let a second tab vote twice on a pair, so
without sign-in the voter is the browser. ``BrowserIdMiddleware`` (an ASGI middleware ``app.py``
gives ``st.App``) sets the cookie on the first page load when the request carries none; the page
reads it back from ``st.context.cookies``, which come from the same browser's WebSocket handshake.
The id says nothing about the person: it is only a key to their votes.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie
from typing import Any

__all__ = ["COOKIE", "BrowserIdMiddleware", "valid"]

COOKIE = "image_studio_browser"
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_YEAR = 365 * 24 * 3600

Scope = dict[str, Any]


def valid(value: str | None) -> str | None:
    """The id if it has the shape this module writes, else None (a forged cookie is just ignored)."""
    return value if value and _SHAPE.match(value) else None


def _has_cookie(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed Cookie header: treat as none
                return False
            if COOKIE in jar and valid(jar[COOKIE].value):
                return True
    return False


class BrowserIdMiddleware:
    """Adds ``Set-Cookie`` with a fresh id to HTTP responses of a request that carried no valid one."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or _has_cookie(scope):
            await self.app(scope, receive, send)
            return
        cookie = (f"{COOKIE}={secrets.token_urlsafe(18)}; Path=/; Max-Age={_YEAR}; HttpOnly; SameSite=Lax")

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
