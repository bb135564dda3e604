"""One vocabulary (issue 15): ±0% said neutrally, a share per image that multiplies back to the total, the
upload limit Streamlit states is the 50 MB rule, download names without a stray "-"."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from core.exports import downloads
from core.history.store import Store
from core.history.views import JobFilter
from providers.registry import PROVIDERS
from tests.seeding import seed_jobs
from ui import format as fmt
from ui import history_detail

ROOT = Path(__file__).resolve().parents[2]


def test_a_bill_equal_to_its_estimate_is_no_news():
    assert history_detail.vs_estimate(Decimal("0.0528"), Decimal("0.0528")) == ("±0% vs estimate", False)
    assert history_detail.vs_estimate(Decimal("0.05281"), Decimal("0.0528")) == ("±0% vs estimate", False)
    assert history_detail.vs_estimate(Decimal("0.0600"), Decimal("0.0528")) == ("+14% vs estimate", True)
    assert history_detail.vs_estimate(Decimal("0.0400"), Decimal("0.0528")) == ("-24% vs estimate", True)
    assert history_detail.vs_estimate(Decimal("0.0400"), None) == (None, False)


def test_per_image_times_count_is_the_total_or_says_it_is_rounded():
    assert fmt.per_image(Decimal("0.1056"), 2) == "$0.0528"
    assert fmt.per_image(Decimal("0.1055"), 2) == "≈ $0.0528"  # $0.05275 cannot be written in four decimals
    assert fmt.per_image(Decimal("0.0528"), 1) == "$0.0528"
    assert fmt.per_image(None, 3) == "—"


def test_the_uploader_limit_is_the_50_mb_rule():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 50
    assert PROVIDERS["openai"].MODELS["gpt-image-2"].max_input_bytes == 50 * 2**20


def test_file_names_have_no_stray_dash():
    cut = downloads.file_slug("A lighthouse on a cliff at dawn, watercolour, very long name (8 side by side)")
    assert not cut.startswith("-") and not cut.endswith("-") and len(cut) <= 50
    assert downloads.file_slug("!!!") == "experiment"
    store = Store()
    seed_jobs(store, 4)
    for job in store.list_jobs(JobFilter(statuses=("succeeded",)), limit=4):
        for image in job.images:
            stem = downloads.image_file_name(job, image).rsplit(".", 1)[0]
            assert not stem.endswith(("-", "_")) and "--" not in stem and "__" not in stem, stem


def test_settings_price_table_speaks_plain_words():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "settings.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "item" in d.value.columns)
    items = set(table["item"])
    assert "Prompt text in, cached" in items and "High quality" in items
    assert not [i for i in items if "_" in i], items  # no raw catalogue key like text_input_cached
    assert set(table["provider"]) <= {"OpenAI", "core.today", "Apiframe", "EvoLink"}
