"""Kill the real server (SIGKILL) while a maker's job runs on their stored key; started again, it
finishes the job with that key and never the operator's (issue 14: whose key pays).

The job and the key are put straight into the server's database, as the Studio and Settings would
(the test plays the page); the server's runner sends the job to a provider at the address the operator
configured (``CORETODAY_BASE_URL``), which is an emulator run by this test, so it can count the keys it
saw. The operator's own key sits in the server's environment the whole time: it must never be used.
"""

from __future__ import annotations

import signal
import time

import pytest

from core.accounts import Accounts, KeyVault
from core.accounts.crypto import new_secret
from core.accounts.sources import configured_roles
from core.history.store import Store
from core.history.views import NewJob
from emulator import Emulator
from providers.types import ImageRequest

pytestmark = pytest.mark.slow

MAKER_KEY = "ct-kim-own-key-0123456789"
OPERATOR_KEY = "ct-operator-env-key-9876543210"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_job_it_finishes_with_the_makers_stored_key_never_the_operators(tmp_path):
    from tests.e2e.conftest import AppServer

    emu = Emulator(port=0, data_dir=tmp_path / "provider", latency=5).start()
    secret = new_secret()
    data = tmp_path / "app-data"
    data.mkdir()
    server = AppServer(data, env={"CORETODAY_BASE_URL": emu.url("coretoday"), "CORETODAY_API_KEY": OPERATOR_KEY,
                                  "IMAGE_STUDIO_SECRET_KEY": secret, "IMAGE_STUDIO_MAKERS": "kim@example.com"})
    try:
        server.start()
        store = Store(data_dir=data)
        kim = Accounts(store.engine, lambda: configured_roles({"IMAGE_STUDIO_MAKERS": "kim@example.com"}).rules) \
            .sign_in("kim@example.com")
        KeyVault(store.engine, {"IMAGE_STUDIO_SECRET_KEY": secret}).store(kim, "coretoday", MAKER_KEY)
        request = ImageRequest(prompt="A lighthouse at dawn", model="gpt-image-2", size="3:2", quality="low")
        _, (job_id,) = store.create_run(
            provider="coretoday", endpoint="live", request=request, user_id=kim.user_id, key_holder=kim.user_id,
            jobs=[NewJob(prompt=request.prompt, n=1, quality="low", size="3:2", estimate=None)],
        )
        _wait(lambda: store.get_job(job_id).provider_job_id, 30, "the provider's job id")
        assert not store.get_job(job_id).done
        server.stop(signal.SIGKILL)
        seen_before = sum(emu.store.keys_seen.values())

        server.start()  # the same command again, same data directory: no browser, no session
        job = _wait(lambda: (j := store.get_job(job_id)).done and j, 60, "the job to finish after the restart")
        assert job.status == "succeeded", (job.status, job.error_message, job.error_detail)
        assert len(job.images) == 1 and job.images[0].path.exists()
        assert job.key_holder == kim.user_id
        # Every request the provider saw, before and after the kill, carried the maker's key.
        assert sum(emu.store.keys_seen.values()) > seen_before >= 1
        assert dict(emu.store.keys_seen).keys() == {MAKER_KEY}, dict(emu.store.keys_seen)
        assert len(list((tmp_path / "provider" / "emulator" / "jobs").glob("*.json"))) == 1  # created once
    finally:
        server.stop()
        emu.stop()


@pytest.mark.browser
def test_a_key_typed_in_settings_by_a_signed_in_maker_survives_sigkill(signed_in_app, page, tmp_path, artifacts_dir):
    """The same, the whole way: a maker signs in through the real OIDC provider, types their key in
    Settings, generates on core.today in the Studio; the server is killed mid-job and started again."""
    from playwright.sync_api import expect

    from tests.e2e.test_login import OWNER, WAIT, sign_in

    emu = Emulator(port=0, data_dir=tmp_path / "provider", latency=8).start()
    try:
        app = signed_in_app(owners=OWNER, makers="kim@example.com",
                            env={"CORETODAY_BASE_URL": emu.url("coretoday"), "CORETODAY_API_KEY": OPERATOR_KEY,
                                 "IMAGE_STUDIO_SECRET_KEY": new_secret()})
        page.goto(app.url + "/settings")
        sign_in(page, app.url, "kim@example.com")
        page.goto(app.url + "/settings")
        field = page.get_by_label("core.today key")
        field.fill(MAKER_KEY)
        page.get_by_role("button", name="Store keys").click()
        expect(page.get_by_text("Stored: core.today")).to_be_visible(timeout=WAIT)
        assert MAKER_KEY not in page.inner_text("body")  # never shown again
        page.goto(app.url)
        expect(page.get_by_role("heading", name="Studio")).to_be_visible(timeout=WAIT)
        page.locator('input[aria-label="Provider"]').click()
        page.get_by_role("option", name="core.today", exact=True).click()
        expect(page.get_by_text("Simulated results.")).to_have_count(0, timeout=WAIT)  # their key: live
        prompt = page.get_by_label("Prompt", exact=True)
        prompt.fill("A lighthouse at dawn, on Kim's key")
        prompt.press("Control+Enter")
        generate = page.get_by_role("button", name="Generate 1 image")
        expect(generate).to_be_enabled(timeout=WAIT)
        generate.click()

        store = Store(data_dir=app.data_dir)
        job = _wait(lambda: next(iter(store.list_jobs(limit=1)), None), 30, "the job in the history")
        assert job.endpoint == "live" and job.key_holder == job.user_id is not None
        _wait(lambda: store.get_job(job.id).provider_job_id, 30, "the provider's job id")
        assert not store.get_job(job.id).done
        page.screenshot(path=str(artifacts_dir / "restart_key_before_kill.png"))
        app.stop(signal.SIGKILL)
        seen_before = sum(emu.store.keys_seen.values())

        app.start()
        done = _wait(lambda: (j := store.get_job(job.id)).done and j, 60, "the job to finish after the restart")
        assert done.status == "succeeded", (done.status, done.error_message, done.error_detail)
        assert sum(emu.store.keys_seen.values()) > seen_before >= 1
        assert dict(emu.store.keys_seen).keys() == {MAKER_KEY}, dict(emu.store.keys_seen)
        assert len(list((tmp_path / "provider" / "emulator" / "jobs").glob("*.json"))) == 1
    finally:
        emu.stop()
