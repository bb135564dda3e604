"""Stored images served by content hash, cached by the browser for good (issue 17).

``st.image(path)`` re-encodes a non-JPEG into a JPEG on every run that draws it
(~17 ms per 1024² WEBP), and a live panel redraws its cards several times a
second. The file store already names every image by the SHA-256 of its bytes,
so an address made of that hash never changes meaning: the page hands the
browser ``/studio-media/image/<sha256>`` (or ``.../thumb/<sha256>``), the
browser fetches it once and keeps it (``Cache-Control: public, max-age=31536000,
immutable``), and a redraw sends a string.

What the route serves: only a 64-hex content hash (the providers' hash rule,
``core.history.files.is_content_hash``) that the file store holds; nothing else
reaches the filesystem (no path, no extension, no walking). Who may fetch: with
``[auth]`` configured, only a browser carrying Streamlit's signed sign-in cookie
(a valid signature, ``is_logged_in``); without ``[auth]`` the one local operator.
Either way the address is unguessable: 256 bits derived from bytes one would
have to hold already. Roles are not checked here (a signed-in person with no
role who somehow had a hash could fetch that image): the pages are where roles
are kept.

``ROUTES`` goes into ``st.App(..., routes=...)`` (app.py); :func:`image_url`
is what a page passes to ``st.image``, or None where it should keep drawing
the file (AppTest has no browser URL; a composite is no stored image).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from core import services as app_services
from core.history.files import FileStore, is_content_hash

__all__ = ["CACHE_CONTROL", "PREFIX", "ROUTES", "image_url", "serve"]

log = logging.getLogger(__name__)

PREFIX = "/studio-media"  # Streamlit reserves /media/ for its own media files
CACHE_CONTROL = "public, max-age=31536000, immutable"
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_KINDS = ("image", "thumb")


def _signed_in(request: Request) -> bool:
    """Whether the request carries Streamlit's signed sign-in cookie; refuses when it cannot tell."""
    try:
        from streamlit.web.server.starlette.starlette_auth_routes import _get_cookie_value_from_request
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME
    except ImportError:  # a Streamlit that moved these: fail closed, never open
        log.warning("studio-media: cannot read the sign-in cookie with this Streamlit; refusing")
        return False
    try:
        raw = _get_cookie_value_from_request(request, USER_COOKIE_NAME)
        user = json.loads(raw) if raw else None
    except (ValueError, TypeError, RuntimeError):
        return False
    return isinstance(user, dict) and user.get("is_logged_in") is True


def _auth_configured() -> bool:
    from ui.auth import auth_configured  # the one home of "is [auth] configured"

    return auth_configured()


def _file(files: FileStore, kind: str, sha256: str) -> Path | None:
    if kind == "image":
        return files.find(sha256)
    thumb = files.abspath(files.rel_thumb_path(sha256))
    return thumb if thumb.is_file() else None


async def serve(request: Request) -> Response:
    kind = request.path_params.get("kind", "")
    sha256 = request.path_params.get("sha256", "")
    if kind not in _KINDS or not is_content_hash(sha256):
        return PlainTextResponse("Not a stored image's address.", status_code=404)
    if _auth_configured() and not _signed_in(request):
        return PlainTextResponse("Sign in to Image Studio first.", status_code=403)
    path = _file(app_services.store().files, kind, sha256)
    media_type = _TYPES.get(path.suffix.lower()) if path is not None else None
    if path is None or media_type is None:
        return PlainTextResponse("No such stored image.", status_code=404)
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    })


ROUTES: list[Route] = [Route(PREFIX + "/{kind}/{sha256}", serve, methods=["GET", "HEAD"])]


def _stored(path: Path | str | None, data_dir: Path) -> tuple[str, str] | None:
    """(kind, sha256) when ``path`` is an image or thumbnail of the file store, else None."""
    if path is None:
        return None
    p = Path(path)
    sha256 = p.stem
    if not is_content_hash(sha256) or p.suffix.lower() not in _TYPES:
        return None
    try:
        rel = p.resolve().relative_to(data_dir.resolve())
    except (ValueError, OSError):
        return None
    top = rel.parts[0] if rel.parts else ""
    return {"images": ("image", sha256), "thumbs": ("thumb", sha256)}.get(top)


def image_url(path: Path | str | None) -> str | None:
    """The browser's address of a stored image or thumbnail, or None to draw the file as before."""
    import streamlit as st

    try:
        page = st.context.url
    except Exception:  # no script run (or a Streamlit without it): keep the file
        return None
    if not page:
        return None
    found = _stored(path, app_services.store().data_dir)
    if found is None:
        return None
    parts = urlsplit(page)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    kind, sha256 = found
    return f"{parts.scheme}://{parts.netloc}{PREFIX}/{kind}/{sha256}"
