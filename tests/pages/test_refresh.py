"""Issue 17's page costs through AppTest and the live panel's schedule: the collapsed history picker
computes nothing, and the panel looks fast only around a job's expected end."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

import clock
from core import services as app_services
from tests.seeding import seed_jobs
from ui import jobs as ui_jobs
from ui import refresh

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def _picker_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.key and b.key.startswith("studio_hist_")]


def test_the_collapsed_history_picker_queries_and_draws_nothing(monkeypatch):
    store = app_services.store()
    seed_jobs(store, 12)
    calls: list[object] = []
    real = type(store).list_jobs

    def counting(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("flt"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "list_jobs", counting)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label == "Use a result from history" for e in at.expander)
    assert _picker_buttons(at) == []
    assert calls == []  # the Studio page itself lists no jobs while the picker is shut

    at.session_state["studio_hist_open"] = True  # what opening it in the browser sets
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(_picker_buttons(at)) >= 1
    assert len(calls) == 1


def _job(**changes):
    store = app_services.store()
    seeded = seed_jobs(store, 1)
    job = store.get_jobs(seeded.job_ids)[0]
    return replace(job, **changes)


def test_the_panel_looks_fast_only_around_the_expected_end():
    running = _job(status="running", finished_at=None, expected_seconds=20.0)

    def at(elapsed: float, expected: float | None = 20.0):
        # Read the clock here, just before each use: the pinned clock still ticks (slowly under faketime).
        return replace(running, submitted_at=clock.now() - timedelta(seconds=elapsed), expected_seconds=expected)

    assert ui_jobs.next_refresh([replace(running, status="succeeded")]) is None  # nothing to follow
    assert ui_jobs.next_refresh([at(2.0)]) == ui_jobs.REFRESH_SECONDS  # far from its end
    assert ui_jobs.next_refresh([at(17.4)]) == ui_jobs.NEAR_END_SECONDS  # inside 3 s (15 %) before its end
    assert ui_jobs.next_refresh([at(20.5)]) == ui_jobs.NEAR_END_SECONDS  # a little late
    assert ui_jobs.next_refresh([at(40.0)]) == ui_jobs.REFRESH_SECONDS  # long overdue: no better guess
    assert ui_jobs.next_refresh([at(5.0, None)]) == ui_jobs.REFRESH_SECONDS  # no idea how long it takes
    # Just before the window opens: wake when it does, not a whole second later.
    soon = ui_jobs.next_refresh([at(17.0 - 0.5)])
    assert soon is not None and 0.3 < soon <= 0.5
    # The soonest of several decides.
    assert ui_jobs.next_refresh([at(2.0), at(17.0)]) == ui_jobs.NEAR_END_SECONDS


def test_the_sidebar_spend_is_today_s_exact_figure_from_today_s_rows_alone(monkeypatch):
    from decimal import Decimal

    from core.spend import budget
    from ui import services

    store = app_services.store()
    seed_jobs(store, 300)  # a week and more of ledger rows, live and simulated
    store.set_caps(Decimal("5"), None)
    for endpoint in ("live", "emulator"):
        whole = store.spend(endpoint)
        shown = services.spend_today(endpoint)
        assert (shown.today_usd, shown.daily_cap, shown.daily_left) == (whole.today, whole.caps.daily,
                                                                       whole.left_today)
        assert whole.today < whole.total  # older days exist and are not counted as today's
    # Only today's rows are read: the whole-ledger sums (total, pending) are not run for the sidebar.
    seen: list[object] = []
    real = budget._spent_nanos
    monkeypatch.setattr(budget, "_spent_nanos", lambda conn, endpoint, since=None: seen.append(since) or real(
        conn, endpoint, since))
    services.spend_today("live")
    assert seen == [budget.day_start()]


def test_history_reads_its_filter_facets_once_not_on_every_rerun(monkeypatch):
    from core.history import ops as history_ops

    seed_jobs(app_services.store(), 20)
    calls: list[int] = []
    real = history_ops.facets
    monkeypatch.setattr(history_ops, "facets", lambda store: calls.append(1) or real(store))
    at = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1


def test_a_job_that_announces_its_end_needs_no_fast_looks():
    # A job a worker of this process drives wakes the panel itself (refresh.wake_on_finish): near its
    # expected end the panel keeps its plain pace; a job driven elsewhere still gets the fast looks.
    running = _job(status="running", finished_at=None, expected_seconds=20.0)
    near = replace(running, id="near", submitted_at=clock.now() - timedelta(seconds=19.0))
    assert ui_jobs.next_refresh([near]) == ui_jobs.NEAR_END_SECONDS
    assert ui_jobs.next_refresh([near], announced={"near"}) == ui_jobs.REFRESH_SECONDS
    other = replace(near, id="other")
    assert ui_jobs.next_refresh([near, other], announced={"near"}) == ui_jobs.NEAR_END_SECONDS


def test_watchers_wake_each_fragment_that_waits_for_a_finished_job(monkeypatch):
    woken: list[tuple[str, str]] = []
    monkeypatch.setattr(refresh, "_rerun_fragment", lambda s, f: woken.append((s, f)) or True)
    watchers = refresh.Watchers()
    watchers.watch("session-a", "frag-1", ["job-1", "job-2"])
    watchers.watch("session-b", "frag-9", ["job-2"])
    watchers.watch("session-a", "frag-1", ["job-2"])  # the same panel looking again: one wake, not two
    watchers.finished("job-2")
    assert sorted(woken) == [("session-a", "frag-1"), ("session-b", "frag-9")]
    watchers.finished("job-2")  # told twice: nobody is woken again
    assert len(woken) == 2
    watchers.finished("job-3")  # nobody waits for it
    assert len(woken) == 2
    assert watchers.watched("job-1") == {("session-a", "frag-1")}
    # A run that registered before a wake can tell it was woken meanwhile (its end must keep the wake).
    mark = watchers.watch("session-a", "frag-1", ["job-4"])
    assert watchers.wakes("session-a", "frag-1") == mark
    watchers.finished("job-4")
    assert watchers.wakes("session-a", "frag-1") == mark + 1
    assert watchers.wakes("session-b", "frag-9") == 1


def test_a_wake_for_a_session_that_is_gone_sends_nothing():
    # No Streamlit runtime here (or the session closed): False, and no exception into the runner's thread.
    assert refresh._rerun_fragment("no-such-session", "frag") is False


def test_the_collapsed_breakdown_draws_no_data_grid():
    # "How it adds up" is shut on arrival: its data grid is built only once someone opens it (issue 17: the
    # browser built it on every run, shut or not).
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_area(key="studio_prompt").set_value("A lighthouse on a cliff at dawn").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label == "How it adds up" for e in at.expander)
    assert len(at.dataframe) == 0
    at.session_state["studio_breakdown_open"] = True  # what opening it in the browser sets
    at.run()
    assert len(at.dataframe) == 1


def test_the_same_batch_elsewhere_is_a_markdown_table_with_every_provider():
    # Markdown, not a data table (issue 17: a first-time visitor's browser fetched a dozen more scripts for
    # it). Dollar signs are escaped (two would start maths) and the chosen cell is marked.
    from providers.registry import PROVIDERS

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_area(key="studio_prompt").set_value("A lighthouse on a cliff at dawn").run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [m.value for m in at.markdown if m.value.startswith("| |")]
    assert len(tables) == 1, [m.value[:40] for m in at.markdown]
    lines = tables[0].splitlines()
    assert lines[0] == "| | Low | Medium | High |" and set(lines[1]) == {"|", "-"}
    assert len(lines) == 2 + len(PROVIDERS)
    assert "\\$" in tables[0] and "$0" not in tables[0].replace("\\$", "")
    assert sum("**●" in line for line in lines) == 1
    assert all(line.count("|") == 5 for line in lines)


def test_copy_as_code_is_written_only_once_opened():
    # A result card's "Copy as code" popover sent its tabs and code blocks with every redraw of the panel, shut
    # or not (issue 17: six elements a card, every card, every second while a batch ran).
    from ui import studio_state as ss

    store = app_services.store()
    seeded = seed_jobs(store, 1)
    job = store.get_jobs(seeded.job_ids)[0]
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[ss.RUNS] = [{"run_id": job.run_id, "job_ids": [job.id]}]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.value.startswith(job.prompt[:20]) or job.prompt[:20] in c.value for c in at.caption)  # its card
    code_keys = [k for k in at.session_state.keys() if str(k).endswith("_code")]
    assert len(code_keys) == 1, code_keys
    assert len(at.code) == 0
    at.session_state[code_keys[0]] = True  # what opening it in the browser sets
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    snippets = [c.value for c in at.code]
    assert len(snippets) >= 2 and any("curl" in s for s in snippets), snippets
