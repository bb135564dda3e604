"""The review cookies' middleware over a stand-in ASGI app: the browser id, and a link carried across sign-in."""

from __future__ import annotations

import asyncio

from core.review.browser_id import COOKIE, PENDING, BrowserIdMiddleware

TOKEN = "A" * 32


def _call(path: str = "/", query: str = "", cookie: str = "") -> tuple[int, list[tuple[bytes, bytes]], bool]:
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "query_string": query.encode(),
             "headers": [(b"cookie", cookie.encode())] if cookie else []}
    asyncio.run(BrowserIdMiddleware(app)(scope, None, send))
    start = sent[0]
    return start["status"], start["headers"], bool(reached)


def _set_cookies(headers) -> dict[str, str]:
    out = {}
    for name, value in headers:
        if name == b"set-cookie":
            k, _, rest = value.decode().partition("=")
            out[k] = rest.split(";")[0]
    return out


def test_a_browser_gets_one_id_and_a_forged_one_is_replaced() -> None:
    status, headers, reached = _call()
    ids = _set_cookies(headers)
    assert status == 200 and reached and len(ids[COOKIE]) >= 16
    assert _set_cookies(_call(cookie=f"{COOKIE}={ids[COOKIE]}")[1]) == {}  # kept
    assert COOKIE in _set_cookies(_call(cookie=f'{COOKIE}="<script>"')[1])  # not our shape: a new one


def test_a_review_link_opened_signed_out_comes_back_after_sign_in() -> None:
    browser = f"{COOKIE}={'b' * 24}"
    assert _set_cookies(_call(query=f"review={TOKEN}", cookie=browser)[1]) == {PENDING: TOKEN}
    # Signed in already: nothing to carry.
    assert _set_cookies(_call(query=f"review={TOKEN}", cookie=f"{browser}; _streamlit_user=x")[1]) == {}
    # Back from the identity provider at the bare root, signed in: sent to the link, the cookie cleared.
    status, headers, reached = _call(cookie=f"{browser}; {PENDING}={TOKEN}; _streamlit_user=x")
    assert status == 302 and not reached
    assert (b"location", f"/?review={TOKEN}".encode()) in headers and _set_cookies(headers)[PENDING] == ""
    # Not at the root, or with a query of its own, or still signed out: no redirect.
    for kw in ({"path": "/history"}, {"query": "job=1"}, {}):
        cookie = f"{browser}; {PENDING}={TOKEN}" + ("; _streamlit_user=x" if kw else "")
        assert _call(cookie=cookie, **kw)[0] == 200, kw
