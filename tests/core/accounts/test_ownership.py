"""Issue 14 on the server side: every write path checks the acting person, history is scoped to them,
each job records who made it and whose key it uses, the ledger records who spent, and the per-member
daily cap holds across users (also when they race), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from core_fakes import FakePricing, FakeWorld, factory_for
from store_helpers import new_run

from core.accounts import LOCAL_OPERATOR, TEAM, Accounts, Identity, KeyVault, PermissionDenied, open_key
from core.accounts.crypto import new_secret
from core.accounts.sources import configured_roles
from core.compare import experiments as ex
from core.history import analytics
from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import KEY_NEEDED, JobFilter
from core.jobs.runner import JobRunner, KeyNeeded
from core.spend.budget import BudgetExceeded
from core.spend.money import usd_to_nanos
from providers.types import ImageRequest

KEY_A = "sk-ann-own-key-0000000001"
KEY_TEAM = "sk-team-key-0000000002"
OPERATOR_KEY = "sk-operator-env-key-0003"


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


@pytest.fixture
def people(store: Store) -> Callable[[str], Identity]:
    rules = configured_roles({"IMAGE_STUDIO_OWNERS": "olga@example.com",
                              "IMAGE_STUDIO_MAKERS": "ann@example.com, bob@example.com",
                              "IMAGE_STUDIO_VIEWERS": "vic@example.com"}).rules
    accounts = Accounts(store.engine, lambda: rules)
    return lambda email: accounts.sign_in(email)


def req(prompt: str = "a red fox") -> ImageRequest:
    return ImageRequest(prompt=prompt, model="m1", quality="low")


def runner_for(store: Store, world: FakeWorld, *, secrets: dict[str, object] | None = None,
               usd: str = "0.07") -> JobRunner:
    return JobRunner(store, factory_for(world), pricing=FakePricing(Decimal(usd)), scan_seconds=0.05,
                     key_opener=lambda holder, provider: open_key(store.engine, holder, provider, secrets))


def wait_until(check: Callable[[], bool], timeout: float = 45.0) -> None:  # generous: a loaded CI box
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


# --- 1. every write path checks the acting person --------------------------------------------------
def test_a_viewer_can_write_nothing_and_the_refusal_says_why(store: Store, people) -> None:
    vic, ann = people("vic@example.com"), people("ann@example.com")
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    with pytest.raises(PermissionDenied, match="vic@example.com is a viewer and may not generate"):
        runner.submit("fake", req(), endpoint="emulator", by=vic)
    assert store.count_jobs() == 0 and store.ledger_rows() == []  # refused before anything was stored
    _, (job_id,) = new_run(store, user_id=ann.user_id)
    for attempt in (lambda: store.delete_jobs([job_id], by=vic),
                    lambda: store.set_caps(Decimal(100000), None, by=vic),
                    lambda: runner.cancel(job_id, by=vic),
                    lambda: runner.recheck(job_id, by=vic),
                    lambda: store.share_link("job", job_id, by=vic)):
        with pytest.raises(PermissionDenied):
            attempt()
    plan = ex.Plan(kind="side_by_side", rows=ex.Axis("none", ("",)), cols=ex.Axis("provider", ("fake",)),
                   cells=(), base_provider="fake")
    with pytest.raises(PermissionDenied):  # Compare's run refuses before it makes an experiment
        ex.run_plan(plan, ex.PlanQuote(cells=(), totals={}, spends={}, refusal=None), runner=runner, store=store,
                    by=vic)
    assert history_ops.count_experiments(store) == 0
    # Rating and voting are what a viewer is for.
    store.set_rating(job_id, 4, by=vic)
    history_ops.mark_winner(store, [job_id], job_id, 0, by=vic)
    assert store.get_job(job_id).rating == 4


def test_a_maker_cannot_raise_a_cap_and_b_cannot_delete_or_cancel_as_job(store: Store, people) -> None:
    ann, bob, olga = people("ann@example.com"), people("bob@example.com"), people("olga@example.com")
    with pytest.raises(PermissionDenied, match="ann@example.com is a maker and may not set caps"):
        store.set_caps(Decimal("100000"), None, by=ann)
    assert store.get_caps().daily is None
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    sub = runner.submit("fake", req(), endpoint="emulator", by=ann)
    (job_id,) = sub.job_ids
    with pytest.raises(PermissionDenied, match="may not cancel this job: it is someone else's"):
        runner.cancel(job_id, by=bob)
    assert runner.cancel(job_id, by=ann) == "canceled"
    with pytest.raises(PermissionDenied, match="may not delete this job: it is someone else's"):
        store.delete_jobs([job_id], by=bob)
    _, (bobs,) = new_run(store, user_id=bob.user_id)
    with pytest.raises(PermissionDenied):  # one job not theirs refuses the whole deletion
        store.delete_jobs([bobs, job_id], by=bob)
    assert store.get_job(bobs) is not None
    assert store.delete_jobs([job_id], by=ann).deleted == (job_id,)
    assert runner.cancel(bobs, by=olga) == "canceled"  # an owner looks after anyone's jobs
    assert store.delete_jobs([bobs], by=olga).deleted == (bobs,)  # and deletes anyone's
    store.set_caps(Decimal("5"), None, member_daily=Decimal("1"), by=olga)
    assert store.get_caps().member_daily == Decimal("1")


# --- 2. who made what, and who sees it -------------------------------------------------------------
def test_history_shows_each_maker_their_own_and_the_shared_and_an_owner_all(store: Store, people) -> None:
    ann, bob, vic, olga = (people(e) for e in ("ann@example.com", "bob@example.com", "vic@example.com",
                                                "olga@example.com"))
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    (a_private,) = runner.submit("fake", req("ann private"), endpoint="emulator", by=ann).job_ids
    (a_shared,) = runner.submit("fake", req("ann shared"), endpoint="emulator", by=ann).job_ids
    (b_private,) = runner.submit("fake", req("bob private"), endpoint="emulator", by=bob).job_ids
    with pytest.raises(PermissionDenied):
        store.share_jobs([a_shared], True, by=bob)
    assert store.share_jobs([a_shared], True, by=ann) == 1
    run = store.get_run(store.get_job(a_private).run_id)
    assert store.get_job(a_private).user_id == ann.user_id and run is not None

    def seen(who: Identity, **kw: object) -> set[str]:
        return {j.id for j in store.list_jobs(JobFilter(visible_to=who.history_scope, **kw))}  # type: ignore[arg-type]

    assert seen(ann) == {a_private, a_shared}
    assert seen(bob) == {a_shared, b_private}
    assert seen(bob, mine_only=True) == {b_private}
    assert seen(vic) == {a_shared}
    assert seen(olga) == {a_private, a_shared, b_private}
    assert store.count_jobs(JobFilter(visible_to=bob.history_scope)) == 2
    assert not bob.sees(ann.user_id, False) and bob.sees(ann.user_id, True) and olga.sees(ann.user_id, False)

    # A read-only link: only its maker (or an owner) makes one; the token opens exactly that job.
    with pytest.raises(PermissionDenied):
        store.share_link("job", a_private, by=bob)
    token = store.share_link("job", a_private, by=ann)
    assert store.share_link("job", a_private, by=ann) == token  # one link per job
    assert store.open_share(token) == ("job", a_private)
    assert store.open_share(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    exp = store.create_experiment("ann's grid", user_id=ann.user_id)
    assert history_ops.count_experiments(store, visible_to=bob.user_id) == 0
    assert history_ops.count_experiments(store, visible_to=ann.user_id) == 1
    assert store.open_share(store.share_link("experiment", exp, by=ann)) == ("experiment", exp)


# --- 3. whose key pays -----------------------------------------------------------------------------
def test_a_job_is_sent_and_followed_with_its_makers_stored_key_and_never_another(
    store: Store, people, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_API_KEY", OPERATOR_KEY)
    secrets = {"IMAGE_STUDIO_SECRET_KEY": new_secret()}
    ann, bob, olga = people("ann@example.com"), people("bob@example.com"), people("olga@example.com")
    vault = KeyVault(store.engine, secrets)
    vault.store(ann, "fake", KEY_A)
    vault.store(olga, "fake", KEY_TEAM, team=True)
    world = FakeWorld(job_time=0.2)
    runner = runner_for(store, world, secrets=secrets).start()
    try:
        with pytest.raises(KeyNeeded):  # a signed-in member never rides on the operator's configured key
            runner.submit("fake", req(), by=bob)
        (mine,) = runner.submit("fake", req("ann's"), by=ann, key_holder=ann.user_id).job_ids
        (team,) = runner.submit("fake", req("bob's"), by=bob, key_holder=TEAM).job_ids
        wait_until(lambda: all(store.get_job(j).status == "succeeded" for j in (mine, team)))
        assert store.get_job(mine).key_holder == ann.user_id and store.get_job(team).key_holder == TEAM
        assert set(world.keys_sent) == {KEY_A, KEY_TEAM}  # the operator's key was never sent

        # The key is gone: the job waits and says so; it is never sent with the team's or the operator's.
        vault.forget(ann, "fake")
        before = len(world.keys_sent)
        (waiting,) = runner.submit("fake", req("ann's again"), by=ann, key_holder=ann.user_id).job_ids
        wait_until(lambda: store.get_job(waiting).key_needed)
        job = store.get_job(waiting)
        assert job.status == "queued" and (job.error_detail or "").startswith(KEY_NEEDED)
        assert len(world.keys_sent) == before and world.creates == 2
        # Stored again, it goes on with that key (the runner looks again after a pause).
        vault.store(ann, "fake", KEY_A)
        runner._not_before.clear()
        runner.wake()
        wait_until(lambda: store.get_job(waiting).status == "succeeded")
        assert not store.get_job(waiting).key_needed
        assert set(world.keys_sent[before:]) == {KEY_A}
    finally:
        runner.stop()


def test_the_local_operator_keeps_the_configured_key_as_before(store: Store, monkeypatch) -> None:
    world = FakeWorld(job_time=0.1)
    runner = runner_for(store, world).start()
    try:
        (job_id,) = runner.submit("fake", req()).job_ids  # no identity passed: the operator, as always
        wait_until(lambda: store.get_job(job_id).status == "succeeded")
        assert store.get_job(job_id).key_holder == "config" and store.get_job(job_id).user_id == "local"
    finally:
        runner.stop()
    assert LOCAL_OPERATOR.can("set_caps") and LOCAL_OPERATOR.history_scope is None


# --- 4. money per person ---------------------------------------------------------------------------
def test_the_ledger_records_who_spent_and_each_member_has_their_own_daily_cap(store: Store, people) -> None:
    ann, bob, olga = people("ann@example.com"), people("bob@example.com"), people("olga@example.com")
    store.set_caps(Decimal("0.35"), None, member_daily=Decimal("0.14"), by=olga)
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    runner.submit("fake", req(), endpoint="emulator", by=ann)
    runner.submit("fake", req(), endpoint="emulator", by=ann)
    with pytest.raises(BudgetExceeded, match="your own daily") as info:
        runner.submit("fake", req(), endpoint="emulator", by=ann)
    assert info.value.scope == "member" and info.value.left == 0
    runner.submit("fake", req(), endpoint="emulator", by=bob)  # Bob's own share is untouched
    runner.submit("fake", req(), endpoint="emulator", by=bob)
    runner.submit("fake", req(), endpoint="emulator", by=olga)  # the team cap: 0.35 of 0.35 now
    with pytest.raises(BudgetExceeded) as team:
        runner.submit("fake", req(), endpoint="emulator", by=olga)
    assert team.value.scope == "daily"
    spend = {m.user_id: m.today for m in store.member_spend("emulator")}
    assert spend == {ann.user_id: Decimal("0.14"), bob.user_id: Decimal("0.14"), olga.user_id: Decimal("0.07")}
    assert store.spend("emulator", member=ann.user_id).member_left == 0
    assert store.spend("emulator", member=bob.user_id).member_today == Decimal("0.14")
    assert {r["user_id"] for r in store.ledger_rows("emulator")} == {ann.user_id, bob.user_id, olga.user_id}
    # A maker's Spend page: their own rows only (charts and CSV); None is everyone's, for owners.
    assert len(analytics.ledger_records(store, "emulator", user_id=ann.user_id)) == 2
    assert len(analytics.ledger_frame(store, "emulator", user_id=olga.user_id)) == 1
    assert len(analytics.ledger_records(store, "emulator")) == 5


def test_budget_race_twenty_racers_across_four_members(store: Store, people) -> None:
    """20 submissions at once by 4 members, 5 each: own cap fits 3 each, team cap fits 10 in all."""
    members = [people(f"{n}@example.com") for n in ("ann", "bob")] + [
        Accounts(store.engine, lambda: configured_roles({"IMAGE_STUDIO_MAKERS": "@team.example.com"}).rules)
        .sign_in(f"{n}@team.example.com") for n in ("cy", "di")]
    store.set_caps(Decimal("0.70"), None, member_daily=Decimal("0.21"))
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    barrier = threading.Barrier(20)
    accepted: dict[str, int] = {m.user_id: 0 for m in members}
    other: list[BaseException] = []
    lock = threading.Lock()

    def submit(who: Identity, i: int) -> None:
        barrier.wait()
        try:
            runner.submit("fake", req(f"race {i}"), endpoint="emulator", by=who)
        except BudgetExceeded:
            return
        except BaseException as err:  # noqa: BLE001 - any other failure fails the test below
            with lock:
                other.append(err)
        else:
            with lock:
                accepted[who.user_id] += 1

    threads = [threading.Thread(target=submit, args=(members[i % 4], i)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    assert all(n <= 3 for n in accepted.values()), accepted  # nobody past their own cap
    assert sum(accepted.values()) == 10  # 4 members x 3 = 12 would fit their own caps: the team cap binds
    rows = store.ledger_rows("emulator")
    assert sum(r["usd_nanos"] for r in rows) == usd_to_nanos(Decimal("0.70"))
    for m in members:
        assert sum(r["usd_nanos"] for r in rows if r["user_id"] == m.user_id) == accepted[m.user_id] * 70_000_000


def test_budget_race_across_four_processes_one_member_each(store: Store, db_url: str, data_dir: Path,
                                                            tmp_path: Path) -> None:
    """4 processes x 5 racers, one member each: nobody past their own $0.21, the team's $0.70 exact."""
    import json
    import subprocess
    import sys

    store.set_caps(Decimal("0.70"), None, member_daily=Decimal("0.21"))
    go = tmp_path / "go"
    users = [f"member-{i}" for i in range(4)]
    child = Path(__file__).with_name("budget_child.py")
    procs = [subprocess.Popen([sys.executable, str(child), db_url, str(data_dir), user, "5", str(go)],
                              stdout=subprocess.PIPE, text=True) for user in users]
    time.sleep(1.0)  # let every child import and connect, so they race rather than queue at start-up
    go.touch()
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(r["other"] == [] for r in results), results
    assert all(r["accepted"] + r["refused"] == 5 for r in results)
    assert all(r["accepted"] <= 3 for r in results), results
    assert sum(r["accepted"] for r in results) == 10
    rows = store.ledger_rows("live")
    assert sum(r["usd_nanos"] for r in rows) == usd_to_nanos(Decimal("0.70"))
    for user, result in zip(users, results, strict=True):
        assert sum(1 for r in rows if r["user_id"] == user) == result["accepted"]


def test_a_session_key_job_waits_after_a_restart_and_never_takes_the_operators_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's bug: a job sent with a key typed in Settings resumed on the operator's environment key."""
    monkeypatch.setenv("FAKE_API_KEY", OPERATOR_KEY)
    world = FakeWorld(job_time=30.0)
    first = runner_for(store, world).start()
    (job_id,) = first.submit("fake", req(), api_key=KEY_A).job_ids
    wait_until(lambda: store.get_job(job_id).provider_job_id is not None)
    first.stop()  # a graceful stop releases the claim; the typed key was in its memory only
    world.job_time = 0.2
    second = runner_for(store, world).start()
    try:
        wait_until(lambda: store.get_job(job_id).key_needed)
        assert store.get_job(job_id).key_holder == "session" and OPERATOR_KEY not in world.keys_sent
        assert second.supply_session_key("fake", KEY_A, by=Identity("u", "u@x.io", "U", "maker")) == 0  # signed in
        assert second.supply_session_key("fake", KEY_A) == 1  # the operator types it again
        wait_until(lambda: store.get_job(job_id).status == "succeeded")
        assert set(world.keys_sent) == {KEY_A} and not store.get_job(job_id).key_needed
    finally:
        second.stop()
