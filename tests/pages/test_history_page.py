"""The History page on a seeded store: gallery, filters, deep links, delete, export, 10,000 jobs."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import clock
from core.history.store import Store
from core.history.views import JobFilter
from core.images import recipe
from providers.registry import PROVIDERS
from tests.seeding import attach_image, bulk_seed, make_image, seed_edit_chain, seed_experiment, seed_jobs

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "history.py")


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def seeded(store):
    return seed_jobs(store, 300)


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _count(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "result" in m.value and m.value.startswith("**"))


def _tiles(at: AppTest) -> list[str]:
    """The tiles' headline (provider · quality) in page order."""
    return [m.value for m in at.markdown if m.value.startswith("**") and " · " in m.value and "result" not in m.value]


def test_gallery_shows_the_newest_page_of_thumbnails(seeded, store):
    at = _page().run()
    assert not at.exception
    assert _count(at).startswith("**300** results · showing 1–24")
    newest = store.list_jobs(limit=24)
    assert len(_tiles(at)) == 24
    assert _tiles(at)[0].startswith(f"**{PROVIDERS[newest[0].provider].label}**")
    # Thumbnails are files handed over by path: one st.image per tile (placeholders for failed jobs too).
    assert len(at.get("image")) == 24
    pager = at.get("pagination")[0]
    assert pager.num_pages == 13


def test_filters_narrow_the_gallery(seeded, store):
    at = _page().run()
    at.multiselect(key="history_f_providers").set_value(["openai"]).run()
    expected = store.count_jobs(JobFilter(providers=("openai",)))
    assert expected < 300
    assert _count(at).startswith(f"**{expected}** results")
    assert all(t.startswith("**OpenAI**") for t in _tiles(at))

    at.multiselect(key="history_f_qualities").set_value(["high"]).run()
    expected = store.count_jobs(JobFilter(providers=("openai",), qualities=("high",)))
    assert _count(at).startswith(f"**{expected}** result")
    assert all("· High" in t for t in _tiles(at))

    at.multiselect(key="history_f_providers").set_value([]).run()
    at.multiselect(key="history_f_qualities").set_value([]).run()
    at.text_input(key="history_f_text").set_value("lighthouse").run()
    expected = store.count_jobs(JobFilter(text="lighthouse"))
    assert 0 < expected < 300
    assert _count(at).startswith(f"**{expected}** result")
    assert all("lighthouse" in c.value.lower() for c in at.caption if c.value.startswith("A "))

    at.text_input(key="history_f_text").set_value("").run()
    at.multiselect(key="history_f_statuses").set_value(["Failed"]).run()
    expected = store.count_jobs(JobFilter(statuses=("failed",)))
    assert _count(at).startswith(f"**{expected}** result")
    assert all("Failed" in t for t in _tiles(at))

    at.multiselect(key="history_f_statuses").set_value([]).run()
    at.selectbox(key="history_f_rating").set_value(4).run()
    expected = store.count_jobs(JobFilter(min_rating=4))
    assert 0 < expected < 300
    assert _count(at).startswith(f"**{expected}** result")

    at.selectbox(key="history_f_rating").set_value(0).run()
    at.selectbox(key="history_f_source").set_value("emulator").run()
    expected = store.count_jobs(JobFilter(endpoint="emulator"))
    assert _count(at).startswith(f"**{expected}** result")
    assert all(":material/science:" in t for t in _tiles(at))

    at.selectbox(key="history_f_source").set_value("all").run()
    today = clock.local_now().date()
    at.date_input(key="history_f_dates").set_value((today, today)).run()
    since = datetime.combine(today, datetime.min.time()).astimezone().astimezone(UTC)
    expected = store.count_jobs(JobFilter(since=since, until=since + timedelta(days=1)))
    assert 0 < expected < 300
    assert _count(at).startswith(f"**{expected}** result")


def test_nothing_matches_offers_to_clear_the_filters(seeded):
    at = _page().run()
    at.text_input(key="history_f_text").set_value("no prompt says this").run()
    assert any("Nothing matches" in i.value for i in at.info)
    at.button(key="history_clear_filters").click().run()
    assert _count(at).startswith("**300** results")


def test_empty_history_says_where_images_come_from():
    at = _page().run()
    assert not at.exception
    assert any("No images yet" in i.value for i in at.info)


def test_paging_moves_through_the_history(seeded, store):
    at = _page().run()
    at.get("pagination")[0].set_value(2).run()
    assert _count(at).startswith("**300** results · showing 25–48")
    second = store.list_jobs(limit=24, offset=24)
    assert at.checkbox(key=f"history_sel_{second[0].id}") is not None
    assert len(_tiles(at)) == 24


def test_deep_link_opens_the_detail_view(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("succeeded",), endpoint="live"), limit=1)[0]
    at = _page()
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    assert job.prompt[:40] in at.subheader[0].value
    codes = [c.value for c in at.code]
    assert job.prompt in codes  # the prompt as sent, in a box with a copy button
    params = at.dataframe[0].value
    assert job.id in set(params["Value"])
    assert "Run again" in [b.label for b in at.button]
    assert [m.label for m in at.metric][:3] == ["Estimated", "Billed", "Took"]
    assert any(job.id in c for c in codes)  # the share link


def test_detail_offers_the_request_as_code(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("succeeded",), providers=("openai",)), limit=1)[0]
    at = _page()
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    codes = [c.value for c in at.code]
    curl = next(c for c in codes if c.startswith("curl "))
    assert "images/generations" in curl and "OPENAI_API_KEY" in curl
    assert any(c.startswith("import os") for c in codes)
    assert not any("could not be written" in c.value for c in at.caption)


def test_deep_link_to_a_failed_job_explains_the_failure(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("failed",)), limit=1)[0]
    at = _page()
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    assert at.error, "a failed job says what went wrong"
    assert "Edit this" in [b.label for b in at.button if b.disabled]


def test_deep_link_to_a_missing_job_says_so(seeded):
    at = _page()
    at.query_params["job"] = "0" * 32
    at.run()
    assert not at.exception
    assert any("not in the history" in w.value for w in at.warning)


def test_detail_shows_the_edit_chain(seeded, store):
    first = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    chain = seed_edit_chain(store, first.id, steps=2)
    at = _page()
    at.query_params["job"] = chain[0]
    at.run()
    assert not at.exception
    assert any("1 step before this one, 1 made from it" in c.value for c in at.caption)
    at.button(key=f"history_chain_{chain[1]}").click().run()
    assert at.query_params["job"] == chain[1]
    assert "step 2" in at.subheader[0].value


def test_rating_in_the_detail_view_is_stored(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    at = _page()
    at.query_params["job"] = job.id
    at.run()
    at.get("feedback")[0].set_value(3).run()
    assert store.get_job(job.id).images[0].rating == 4


def test_delete_removes_files_but_keeps_a_shared_one(store):
    seeded = seed_jobs(store, 30)
    newest = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=2)
    own, shared = newest[0], newest[1]
    unique = attach_image(store, own.id, make_image(999, (64, 64)))
    own_file = store.data_dir / unique.path
    shared_file = shared.images[0].path
    others = [j for j in store.list_jobs(limit=100) if j.id != shared.id and j.images
              and j.images[0].sha256 == shared.images[0].sha256]
    assert others, "the seeding shares image files between jobs"
    assert own_file.exists() and shared_file.exists()

    at = _page().run()
    at.checkbox(key=f"history_sel_{own.id}").check().run()
    at.checkbox(key=f"history_sel_{shared.id}").check().run()
    at.button(key="history_open_delete").click().run()
    at.button(key="history_delete_confirm").click().run()
    assert not at.exception
    assert store.get_job(own.id) is None and store.get_job(shared.id) is None
    assert store.count_jobs() == len(seeded.job_ids) - 2
    assert not own_file.exists(), "a file only the deleted job used goes with it"
    assert not (store.data_dir / unique.thumb_path).exists()
    assert shared_file.exists(), "a file another job still shows is kept"
    # Budgets do not change: the ledger keeps the deleted jobs' rows.
    assert {r["job_id"] for r in store.ledger_rows()} >= {own.id, shared.id}


def test_export_zip_lists_every_selected_job(seeded, store):
    page = store.list_jobs(limit=24)
    picked = [j for j in page if j.status == "succeeded"][:3] + [j for j in page if j.status != "succeeded"][:1]
    assert len(picked) == 4
    at = _page().run()
    for job in picked:
        at.checkbox(key=f"history_sel_{job.id}").check().run()
    assert any("4 selected" in m.value for m in at.markdown)
    at.button(key="history_open_export").click().run()
    at.button(key="history_sel_zip").click().run()
    assert not at.exception
    made = at.session_state["history_export_zip"]
    assert set(made["ids"]) == {j.id for j in picked}
    assert any(b.label.startswith("Download ZIP") for b in at.get("download_button"))

    zf = zipfile.ZipFile(io.BytesIO(made["data"]))
    rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
    assert {r["job_id"] for r in rows} == {j.id for j in picked}
    failed = next(r for r in rows if r["status"] != "succeeded")
    assert failed["image"] == ""
    images = [n for n in zf.namelist() if n.startswith("images/")]
    assert len(images) == 3
    carried = recipe.extract(zf.read(images[0]))
    assert carried is not None and carried["job_id"] in {j.id for j in picked}
    assert carried["params"]["prompt"]
    assert "metadata.json" in zf.namelist()

    at.button(key="history_sel_report").click().run()
    html = at.session_state["history_export_report"]["data"]
    assert html.startswith("<!doctype html>") and "data:image/jpeg;base64," in html
    assert "http://" not in html and "https://" not in html  # opens offline, nothing fetched


def test_select_page_then_clear(seeded):
    at = _page().run()
    at.button(key="history_select_page").click().run()
    assert any("24 selected" in m.value for m in at.markdown)
    at.button(key="history_clear_sel").click().run()
    assert not any("selected" in m.value for m in at.markdown)


def test_experiment_link_filters_to_its_results(seeded, store):
    exp_id = seed_experiment(store)
    at = _page()
    at.query_params["experiment"] = exp_id
    at.run()
    assert not at.exception
    assert _count(at).startswith("**4** results")
    assert any("Showing the results of" in i.value for i in at.info)


def test_run_again_hands_the_job_to_studio(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/history.py")
    at.query_params["job"] = job.id
    at.run()
    at.button(key="history_rerun").click().run()
    assert not at.exception
    # Studio takes the hand-over (session_state["studio_prefill"]) before drawing its form.
    assert at.title[0].value == "Studio"
    assert "studio_prefill" not in at.session_state
    assert at.text_area(key="studio_prompt").value == job.prompt
    assert any("The form holds that request" in i.value for i in at.info)


def test_edit_this_puts_the_image_in_studios_tray(seeded, store):
    job = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/history.py")
    at.query_params["job"] = job.id
    at.run()
    at.button(key="history_edit").click().run()
    assert not at.exception
    assert at.title[0].value == "Studio"
    assert at.session_state["studio_parent_job"] == job.id
    assert [item.data for item in at.session_state["studio_kept_inputs"]] == [job.images[0].path.read_bytes()]


def test_first_page_renders_from_ten_thousand_jobs(store):
    bulk_seed(store, 10_000)
    at = _page().run()
    assert not at.exception
    assert _count(at).startswith("**10,000** results · showing 1–24")
    assert len(at.get("image")) == 24
    assert at.get("pagination")[0].num_pages == 417
    at.multiselect(key="history_f_providers").set_value(["evolink"]).run()
    assert _count(at).startswith("**2,500** results")
