"""Issue 13, case 1: a server file read through an uploaded image's recipe.

"Restore the form" passed the input-image names of an uploaded image's embedded
recipe to ``FileStore.read()``/``find()``. A recipe entry such as
``{"sha256": "../../../../srv/private/photo"}`` loaded ``/srv/private/photo.png``
into the tray, ready to send to a provider. Only a 64-hex content hash may name a
stored image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.history.files import FileStore
from core.images import recipe
from core.prompts import draft
from providers.types import ImageRequest
from tests.ports import free_port
from tests.security.fakes import png

ROOT = Path(__file__).resolve().parents[2]
SECRET = png(40, 30, (1, 2, 3))


@pytest.fixture
def private_file(tmp_path: Path) -> Path:
    path = tmp_path / "srv" / "private" / "photo.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(SECRET)
    return path


def traversal_to(path: Path) -> str:
    """The recipe entry that reached ``path`` (an absolute path walked to from the data folder)."""
    return "../../../.." + str(path.with_suffix(""))


@pytest.mark.parametrize("name", ["traversal", "absolute", "upper", "short", "glob", "null", "not-a-string"])
def test_only_a_content_hash_names_a_stored_image(tmp_path, private_file, name):
    store = FileStore(tmp_path / "data")
    hostile = {
        "traversal": traversal_to(private_file),
        "absolute": str(private_file.with_suffix("")),
        "upper": hashlib.sha256(SECRET).hexdigest().upper(),
        "short": "ab" * 8,
        "glob": "*",
        "null": "a" * 63 + "\x00",
        "not-a-string": 12345,
    }[name]
    assert store.find(hostile) is None
    with pytest.raises(ValueError):
        store.read(hostile)


def test_a_stored_image_is_still_found_by_its_hash(tmp_path):
    store = FileStore(tmp_path / "data")
    info = store.put(SECRET, "png")
    assert store.read(info.sha256) == SECRET


@pytest.fixture
def emulator(monkeypatch):
    from core import services

    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    services.stop_emulator()
    yield
    services.stop_emulator()


def test_restore_the_form_never_loads_a_file_from_outside_the_store(emulator, private_file):
    from ui import studio_state as ss

    request = ImageRequest(prompt="A teapot shaped like a whale", model="gpt-image-2", size="1:1", quality="low")
    meta = draft.recipe_for(provider="openai", request=request)
    meta["params"]["images"] = [{"sha256": traversal_to(private_file), "name": "photo.png"},
                                {"sha256": str(private_file.with_suffix("")), "name": "abs.png"}]
    carrier = recipe.embed(png(300, 200), "png", meta)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.file_uploader(key=ss.UPLOAD).set_value(("made-here.png", carrier, "image/png")).run()
    at.button(key="studio_recipe_restore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key=ss.PROMPT).value == "A teapot shaped like a whale"  # the recipe itself still works
    kept = at.session_state[ss.KEPT]
    assert all(item.data != SECRET for item in kept), "a file from outside the store is in the tray"
    assert not kept
    assert any("2 of its input images are not in this app's history" in s.value for s in at.success)
