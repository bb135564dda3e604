"""core.history.ops and the store's deletion: delete with files, winners, experiments, edit chains."""

from __future__ import annotations

from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import JobFilter, Money, NewJob
from providers.types import ImageRequest
from tests.seeding import attach_image, make_image, seed_edit_chain, seed_experiment, seed_jobs


def test_delete_keeps_shared_files_removes_unique_ones_and_skips_active_jobs():
    store = Store()
    seed_jobs(store, 12, distinct_images=3)
    done = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=20)
    lone = done[0]
    unique = attach_image(store, lone.id, make_image(77))
    shared = done[1]
    _, (active,) = store.create_run(provider="openai", endpoint="live",
                                    request=ImageRequest(prompt="p", model="gpt-image-2"),
                                    jobs=[NewJob(prompt="p", n=1, quality="low", size="1:1", estimate=Money(None))])
    result = store.delete_jobs([lone.id, shared.id, active])
    assert set(result.deleted) == {lone.id, shared.id}
    assert result.skipped_active == (active,)
    assert result.files_removed == 1 and result.files_kept == 1
    assert not (store.data_dir / unique.path).exists()
    assert shared.images[0].path.exists()
    assert store.get_run(lone.run_id) is None  # its run had no other job
    assert store.get_job(active) is not None
    assert {r["job_id"] for r in store.ledger_rows()} >= {lone.id, shared.id}


def test_one_winner_per_group():
    store = Store()
    exp = seed_experiment(store)
    ids = [j.id for j in store.list_jobs(JobFilter(experiment_id=exp))]
    history_ops.mark_winner(store, ids, ids[0], 0)
    history_ops.mark_winner(store, ids, ids[1], 0)
    assert [j.id for j in store.get_jobs(ids) if j.images[0].winner] == [ids[1]]
    history_ops.mark_winner(store, ids, ids[1], 0, winner=False)
    assert not any(j.images[0].winner for j in store.get_jobs(ids))


def test_experiments_are_listed_with_counts_cost_and_thumbnails():
    store = Store()
    first = seed_experiment(store, name="First")
    second = seed_experiment(store, name="Second", endpoint="live")
    listed = history_ops.list_experiments(store)
    assert [e.id for e in listed] == [second, first]
    assert history_ops.count_experiments(store) == 2
    one = listed[1]
    assert (one.jobs, one.succeeded, one.active, one.failed) == (4, 4, 0, 0)
    assert one.simulated and not listed[0].simulated
    assert one.cost_usd > 0 and len(one.thumbs) == 4
    assert set(one.providers) == {"openai", "evolink"}


def test_edit_chain_both_ways():
    store = Store()
    seed_jobs(store, 3)
    root = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    a, b = seed_edit_chain(store, root.id, steps=2)
    before, after = history_ops.edit_chain(store, a)
    assert [j.id for j in before] == [root.id] and [j.id for j in after] == [b]
    before, after = history_ops.edit_chain(store, root.id)
    assert before == [] and [j.id for j in after] == [a, b]


def test_facets_list_what_exists():
    store = Store()
    seed_jobs(store, 8)
    f = history_ops.facets(store)
    assert f["providers"] == ["apiframe", "coretoday", "evolink", "openai"]
    assert f["models"] == ["gpt-image-2"]
