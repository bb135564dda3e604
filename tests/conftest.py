"""Fixtures shared by the whole suite.

Streamlit's caches are process-wide and leak between AppTest instances, so they
are cleared around every test. Every test gets its own data directory so nothing
touches ./data.

Every test runs on a pinned day (``SUITE_DAY``, the day the model line-up was last
checked), never on the machine's calendar: a test about a shutdown says which day it
needs with ``@pytest.mark.today("2026-11-30")``. Child processes the test starts (the
app, the emulator) inherit the same timeline through ``IMAGE_STUDIO_CLOCK``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import clock  # noqa: E402 - needs the project root on sys.path

ARTIFACTS = ROOT / "test-artifacts"
SUITE_DAY = "2026-12-01T12:00:00Z"


def pytest_configure(config):
    config.addinivalue_line("markers", "today(instant): run the test on this day (ISO date or instant)")


@pytest.fixture(autouse=True)
def _pinned_clock(request, monkeypatch):
    marker = request.node.get_closest_marker("today")
    with clock.pin(marker.args[0] if marker else SUITE_DAY):
        monkeypatch.setenv(clock.ENV, clock.environment_value())
        yield


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("IMAGE_STUDIO_DATA_DIR", str(data))
    # No test may reach a real provider: drop any keys and base URLs from the environment.
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) and name.split("_")[0] in {
            "OPENAI", "CORETODAY", "APIFRAME", "EVOLINK",
        }:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("IMAGE_STUDIO_DATABASE_URL", raising=False)
    yield data


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    # The process-wide runner belongs to this test's data dir: stop it before the dir goes.
    from core import services as app_services

    app_services.shutdown()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
