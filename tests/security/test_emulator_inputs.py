"""Issue 13, case 3: image links typed for Apiframe/EvoLink in emulator mode.

The emulator runs inside the app process. Before, it fetched any 127.0.0.1 port and
path named as an input image (an internal admin route was reached), and its error
told a closed port from an open one. A real provider can never fetch a private
address, so the app refuses such a link before any call, naming why, and the
emulator itself reads only its own files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.history.store import Store
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers import registry
from providers.errors import InvalidRequest
from providers.types import ImageRequest, InputImage
from tests.ports import free_port
from tests.security.conftest import FAST
from tests.security.fakes import FakeServer, png

KEYS = {"apiframe": {"X-API-Key": "afk_test"}, "evolink": {"Authorization": "Bearer ek-test"}}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=0.1).start()
    yield emulator
    emulator.stop()


def create(emu: Emulator, provider: str, url: str) -> httpx.Response:
    if provider == "evolink":
        path, body = "/v1/images/generations", {"model": "gpt-image-2", "prompt": "edit", "image_urls": [url]}
    else:
        path, body = "/v2/images/generate", {"model": "gpt-image-2", "prompt": "edit",
                                              "gptImage2Params": {"input_images": url}}
    return httpx.post(emu.url(provider) + path, json=body, headers=KEYS[provider], timeout=10)


def message(answer: httpx.Response) -> str:
    """The error message, in either provider's error shape."""
    err = answer.json().get("error")
    return str(err.get("message") if isinstance(err, dict) else err or answer.json())


@pytest.mark.parametrize("provider", ["evolink", "apiframe"])
def test_the_emulator_never_fetches_another_loopback_port(emu: Emulator, internal: FakeServer, provider):
    answer = create(emu, provider, f"http://127.0.0.1:{internal.port}/x.png")
    assert answer.status_code == 400
    assert "this machine" in answer.text and "INTERNAL-SECRET" not in answer.text
    assert internal.hits == 0


@pytest.mark.parametrize("provider", ["evolink", "apiframe"])
def test_an_open_port_and_a_closed_one_get_the_same_answer(emu: Emulator, internal: FakeServer, provider):
    closed = free_port()
    opened = message(create(emu, provider, f"http://127.0.0.1:{internal.port}/x.png"))
    shut = message(create(emu, provider, f"http://127.0.0.1:{closed}/x.png"))
    assert opened.replace(str(internal.port), "PORT") == shut.replace(str(closed), "PORT")
    assert internal.hits == 0


def test_the_emulators_own_admin_routes_are_not_input_images(emu: Emulator):
    before = len(emu.stats()["requests"])
    answer = create(emu, "evolink", emu.base_url + "/_admin/stats")
    assert answer.status_code == 400 and "this machine" in message(answer)
    assert len(emu.stats()["requests"]) == before + 1  # the create itself, nothing it fetched
    own = create(emu, "evolink", emu.upload(png(256, 256), "image/png"))  # its own files still work
    assert own.status_code == 200, own.text


def _runner(tmp_path: Path, emu: Emulator) -> tuple[JobRunner, Store]:
    store = Store(f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "files")

    def factory(name: str, endpoint: str, api_key: str | None = None):
        return registry.create(name, api_key="emulator", base_url=emu.url(name), uploader=emu.upload)

    return JobRunner(store, factory, **FAST).start(), store


@pytest.mark.parametrize("provider", ["evolink", "apiframe"])
@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "169.254.169.254",
                                  "10.1.2.3", "0.0.0.0:{port}"])
def test_the_app_refuses_a_private_input_link_before_any_call(tmp_path, emu, internal, provider, host):
    runner, store = _runner(tmp_path, emu)
    try:
        url = f"http://{host.format(port=internal.port)}/photo.png"
        request = ImageRequest(prompt="make it blue", model="gpt-image-2", images=(InputImage(url=url),))
        with pytest.raises(InvalidRequest) as info:
            runner.submit(provider, request, endpoint="emulator")
        said = str(info.value)
        assert "a provider can never fetch it" in said or "never fetched" in said or "metadata" in said
        assert "public https link" in said
        from core.history.views import JobFilter

        assert store.count_jobs(JobFilter()) == 0  # nothing stored, nothing reserved
        assert emu.stats()["creates"].get(provider, 0) == 0 and internal.hits == 0
    finally:
        runner.stop()
