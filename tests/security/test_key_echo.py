"""Issue 13, case 4: a provider (or a proxy) that echoes the API key in its error answer.

README: "Keys are never written to the history, logs, exports or the page." Before,
a 401 body that echoed the key went verbatim into ``error_detail`` and onto the
History page. Here a fake provider of the test's own answers 401 with the key in
its body, through the real OpenAI adapter and the real runner; the key must then
be nowhere: not in the error, not in the database file, not in a log line, not in
the exports, not on the page.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.exports import downloads
from core.history.store import Store
from providers.errors import AuthError
from providers.registry import provider_class
from providers.types import ImageRequest
from tests.security.apptext import page_text
from tests.security.fakes import FakeProvider, echo_key

ROOT = Path(__file__).resolve().parents[2]
REQUEST = ImageRequest(prompt="a teapot", model="gpt-image-2", size="1:1", quality="low")
SHAPED = "sk-proj-ECHOabcdefghijklmnopqrstuvwx0123456789"  # looks like an OpenAI key
UNSHAPED = "zz9-plural-z-alpha-42-ECHO-KEY"  # looks like nothing in particular: known only because it is configured


@pytest.mark.parametrize("key", [SHAPED, UNSHAPED])
def test_the_adapters_error_never_carries_the_key(fake: FakeProvider, key):
    fake.create = echo_key
    provider = provider_class("openai")(key, f"{fake.url}/openai/v1")
    with pytest.raises(AuthError) as info:
        provider.generate(REQUEST)
    err = info.value
    assert fake.seen[-1].headers["authorization"] == f"Bearer {key}"  # the key was sent, and echoed back
    for text in (str(err), err.detail or "", repr(err.args)):
        assert key not in text
    assert "[redacted]" in (err.detail or "")


@pytest.mark.parametrize("key", [SHAPED, UNSHAPED])
def test_the_key_is_nowhere_after_a_job_with_an_echoing_provider(fake, run_job, store: Store, tmp_path, key,
                                                                 caplog):
    fake.create = echo_key
    caplog.set_level(logging.DEBUG)
    job = run_job("openai", REQUEST, key=key)
    assert job.status == "failed" and job.error_kind == "auth"
    assert key not in (job.error_message or "") and key not in (job.error_detail or "")
    # Not in the database at all (every table, every column): read the file itself.
    store.engine.dispose()
    for path in tmp_path.glob("security.db*"):
        assert key.encode() not in path.read_bytes()
    # Not in any log line, of any logger.
    assert key not in caplog.text
    # Not in the exports.
    archive = downloads.build_zip(store, [job.id])
    assert key.encode() not in archive
    assert key not in downloads.selection_report(store, [job.id])


def test_the_history_page_never_shows_the_key(fake, monkeypatch):
    """The same job through the app's own store, then the History page and the job's detail view."""
    from core.jobs.runner import JobRunner
    from tests.security.conftest import FAST, fake_factory

    fake.create = echo_key
    store = Store()
    runner = JobRunner(store, fake_factory(fake, SHAPED), **FAST).start()
    try:
        (job_id,) = runner.submit("openai", REQUEST, endpoint="live").job_ids
        import time

        deadline = time.monotonic() + 20
        while not (store.get_job(job_id) and store.get_job(job_id).done) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    at = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    shown = page_text(at)
    assert "refused the API key" in shown or "No working OpenAI key" in shown
    assert SHAPED not in shown


def test_a_key_in_the_providers_billing_report_is_not_stored(store: Store):
    """The ledger's raw report (``billed_raw``) goes through the same rule at the store boundary."""
    import sqlalchemy as sa

    from core import db
    from core.history.views import Billing, NewJob
    from core.jobs.claims import JobClaims

    _, (job_id,) = store.create_run(provider="evolink", endpoint="live", request=REQUEST, jobs=[
        NewJob(prompt=REQUEST.prompt, n=1, quality="low", size="1:1", estimate=None)])
    claims = JobClaims(store.engine)
    claims.claim(job_id, "me", 30)
    raw = {"credits": 3, "echo": {"auth": f"Authorization: Bearer {SHAPED}", "list": [SHAPED]}}
    assert claims.finish(job_id, "me", status="failed", billing=Billing("estimated", raw=raw))
    with db.read(store.engine) as conn:
        stored = conn.execute(sa.select(db.jobs.c.billed_raw).where(db.jobs.c.id == job_id)).scalar()
    assert SHAPED not in str(stored) and stored["credits"] == 3


def test_log_lines_are_redacted_whatever_logger(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("some.library").warning("retrying with header Authorization: Bearer %s", SHAPED)
    try:
        raise RuntimeError(f"boom with {SHAPED}")
    except RuntimeError:
        logging.getLogger("core.jobs.runner").exception("job x: unexpected error")
    assert SHAPED not in caplog.text and "[redacted]" in caplog.text
