"""The Settings page: session keys, where base URLs come from (never typed here), defaults, budget."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from providers.registry import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "settings.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def test_base_urls_are_not_taken_from_a_visitor():
    # A base URL typed in the browser would let any visitor point the app at an internal address.
    at = _page().run()
    assert not at.exception
    labels = [t.label for t in at.text_input]
    assert labels and all("base URL" not in label for label in labels)
    assert not [t for t in at.text_input if t.key and t.key.startswith("settings_url_")]
    assert "session_base_urls" not in at.session_state


def test_it_says_where_base_urls_come_from(monkeypatch):
    monkeypatch.setenv("EVOLINK_BASE_URL", "https://gateway.example.test")
    at = _page().run()
    text = " ".join(m.value for m in at.markdown)
    for cls in PROVIDERS.values():
        assert f"`{cls.base_url_env}`" in text
    table = at.dataframe[0].value
    in_use = dict(zip(table["Environment variable"], table["Base URL in use"], strict=True))
    assert in_use["EVOLINK_BASE_URL"] == "https://gateway.example.test"
    assert in_use["OPENAI_BASE_URL"].startswith("https://api.openai.com")
