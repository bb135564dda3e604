"""The content-hash image route (ui/media_route.py), through Starlette's test client on the real handler
and the real file store: it serves only a stored image's 64-hex hash, with the immutable header, and
with [auth] configured only to a request carrying Streamlit's signed sign-in cookie."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core import services as app_services
from ui import media_route


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def client():
    with TestClient(Starlette(routes=media_route.ROUTES)) as c:
        yield c


@pytest.fixture
def stored():
    data = _png((200, 40, 90))
    info = app_services.store().files.put(data, "png")
    return info, data


def test_a_stored_image_is_served_by_its_hash_with_the_immutable_header(client, stored):
    info, data = stored
    answer = client.get(f"/studio-media/image/{info.sha256}")
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-content-type-options"] == "nosniff"
    thumb = client.get(f"/studio-media/thumb/{info.sha256}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.headers["cache-control"] == media_route.CACHE_CONTROL
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert im.format == "WEBP"


@pytest.mark.parametrize("name", [
    "abc",  # short
    "A" * 64,  # upper case is not the store's hash
    "g" * 64,  # not hex
    "0" * 63,
    "0" * 65,
    "..%2F..%2Fhistory.db",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
])
def test_anything_but_a_content_hash_is_refused(client, stored, name):
    answer = client.get(f"/studio-media/image/{name}")
    assert answer.status_code == 404
    assert answer.headers.get("cache-control") is None
    assert not answer.headers.get("content-type", "").startswith("image/")


def test_paths_a_hash_route_does_not_have_are_refused(client, stored):
    info, _ = stored
    for path in (f"/studio-media/original/{info.sha256}", f"/studio-media/image/{info.sha256}.png",
                 f"/studio-media/image/../../{info.sha256}", f"/studio-media/image/{info.sha256}/x"):
        assert client.get(path).status_code == 404, path


def test_a_well_formed_hash_nothing_is_stored_under_is_not_found(client, stored):
    answer = client.get("/studio-media/image/" + "0" * 64)
    assert answer.status_code == 404 and answer.text == "No such stored image."


def test_with_sign_in_configured_only_a_signed_in_browser_gets_the_image(client, stored, monkeypatch):
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    info, data = stored
    monkeypatch.setattr("ui.auth.auth_configured", lambda: True)
    url = f"/studio-media/image/{info.sha256}"
    assert client.get(url).status_code == 403

    user = json.dumps({"email": "ada@example.test", "is_logged_in": True})
    forged = create_signed_value("not-the-secret", "_streamlit_user", user).decode()
    client.cookies.set("_streamlit_user", forged)
    assert client.get(url).status_code == 403

    logged_out = create_signed_value(get_cookie_secret(), "_streamlit_user", json.dumps({"is_logged_in": False}))
    client.cookies.set("_streamlit_user", logged_out.decode())
    assert client.get(url).status_code == 403

    signed = create_signed_value(get_cookie_secret(), "_streamlit_user", user).decode()
    client.cookies.set("_streamlit_user", signed)
    answer = client.get(url)
    assert answer.status_code == 200 and answer.content == data


def test_the_page_address_is_made_only_for_files_of_the_store(stored, tmp_path):
    info, _ = stored
    data_dir = app_services.store().data_dir
    assert media_route._stored(data_dir / info.path, data_dir) == ("image", info.sha256)
    assert media_route._stored(data_dir / (info.thumb_path or ""), data_dir) == ("thumb", info.sha256)
    outside = tmp_path / "elsewhere" / "images" / f"{info.sha256}.png"
    assert media_route._stored(outside, data_dir) is None
    assert media_route._stored(data_dir / "composites" / f"{info.sha256}.png", data_dir) is None
    assert media_route._stored(data_dir / "images" / "ab" / "cd" / "not-a-hash.png", data_dir) is None
    assert media_route._stored(None, data_dir) is None
