"""Every page runs, through app.py and on its own, without an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))


def test_every_page_is_reachable_through_navigation():
    # app.py names each page; a page file nobody routes to is dead code.
    source = (ROOT / "app.py").read_text()
    for page in PAGE_FILES:
        assert f'"{page}"' in source, f"{page} is not in app.py's st.navigation"


@pytest.mark.parametrize("script", ["app.py", *PAGE_FILES])
def test_script_runs_without_exception(script):
    at = AppTest.from_file(str(ROOT / script), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{script} shows no title"


def test_app_opens_on_studio():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert [t.value for t in at.title][0] == "Studio"


def test_sidebar_says_when_spend_is_simulated():
    # No key anywhere (the suite's fixture removes them): the emulator's meter is shown, labelled so.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    labels = [m.label for m in at.sidebar.metric]
    assert "Simulated spend today" in labels and "Spent today" not in labels
    assert any("Simulated results" in w.value for w in at.sidebar.warning)
