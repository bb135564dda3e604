"""Fixtures shared by the whole suite.

Streamlit's caches are process-wide and leak between AppTest instances, so they
are cleared around every test. Every test gets its own data directory so nothing
touches ./data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ARTIFACTS = ROOT / "test-artifacts"


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
    from studio import app_services

    app_services.shutdown()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
