"""polling.wait / next_interval with a fake clock: no real sleeping."""

from __future__ import annotations

import pytest

from providers.errors import ProviderTimeout
from providers.polling import MAX_INTERVAL, estimate_total, next_interval, wait
from providers.types import JobStatus


class FakeJob:
    """A job of ``length`` seconds on a fake clock; progress like the emulator's (10 % queued, then linear)."""

    def __init__(self, length: float, *, progress: bool = True, rtt: float = 0.004) -> None:
        self.length = length
        self.progress = progress
        self.rtt = rtt
        self.now = 0.0
        self.polls = 0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def poll(self) -> JobStatus:
        self.now += self.rtt / 2
        self.polls += 1
        t = self.now
        self.now += self.rtt / 2
        if t >= self.length:
            return JobStatus("job", "succeeded", progress=100)
        queued = 0.1 * self.length
        p = 0 if t < queued else max(1, min(99, int(100 * (t - queued) / (self.length - queued))))
        return JobStatus("job", "queued" if p == 0 else "running", progress=p if self.progress else None)

    def run(self, expected: float | None, deadline: float = 1000.0) -> JobStatus:
        return wait(self.poll, expected_seconds=expected, deadline_seconds=deadline, clock=self.clock, sleep=self.sleep)

    @property
    def late(self) -> float:
        return self.now - self.length


def tolerance(length: float) -> float:
    return min(0.3, max(0.15, 0.05 * length))


@pytest.mark.parametrize("length", [3, 5, 10, 15, 30, 60, 100])
@pytest.mark.parametrize("expected_factor", [None, 0.5, 0.8, 1.0, 1.2, 3.0])
def test_with_progress_a_finished_job_is_seen_in_time_at_under_two_requests_a_second(length, expected_factor):
    job = FakeJob(length)
    status = job.run(None if expected_factor is None else length * expected_factor)
    assert status.state == "succeeded"
    assert 0 <= job.late <= tolerance(length), job.sleeps
    assert job.polls / job.now <= 2.0, (job.polls, job.sleeps)


@pytest.mark.parametrize("expected_factor", [None, 1.0, 3.0])
def test_a_two_second_job(expected_factor):
    # Shorter jobs cannot meet both goals when the expected time is too short: the
    # polls spent around the wrong end are the price. With a fair or no estimate they can.
    job = FakeJob(2.0)
    job.run(None if expected_factor is None else 2.0 * expected_factor)
    assert 0 <= job.late <= tolerance(2.0)
    assert job.polls / job.now <= 2.0


@pytest.mark.parametrize("length", [3, 5, 15, 45, 100])
def test_with_an_accurate_expected_time_and_no_progress(length):
    job = FakeJob(length, progress=False)
    job.run(length)
    assert 0 <= job.late <= tolerance(length)
    assert job.polls / job.now <= 2.0


def test_sparse_early_dense_at_the_end():
    job = FakeJob(15, progress=False)
    job.run(15)
    early = [s for s in job.sleeps[:3]]
    assert all(s >= 1.0 for s in early)
    assert max(job.sleeps[-4:]) <= 0.15


def test_unknown_length_starts_near_one_second_and_backs_off_to_the_cap():
    assert next_interval(0.0, None) == pytest.approx(1.0)
    assert next_interval(3.0, None) == pytest.approx(1.0)
    assert 1.0 < next_interval(6.0, None) < MAX_INTERVAL
    assert next_interval(100.0, None) == MAX_INTERVAL


def test_next_interval_phases_for_a_known_length():
    assert next_interval(0.0, 15.0) == pytest.approx(1.0)  # first sparse step
    assert next_interval(6.0, 15.0) == pytest.approx(3.0)  # grows with the time waited
    assert next_interval(11.0, 15.0) == pytest.approx(1.0)  # not past the spread's start (20 %: 12 s)...
    assert next_interval(12.0, 15.0) == pytest.approx(1.0)  # ...inside it a second at most
    assert next_interval(13.5, 15.0) == pytest.approx(0.75, abs=0.01)  # just what is left before dense
    assert next_interval(14.5, 15.0) <= 0.15  # dense around the end
    assert next_interval(15.5, 15.0) <= 0.15  # ...and just after it
    running_long = [next_interval(15.0 + x, 15.0) for x in (1.6, 3, 6, 10, 20, 60)]
    assert running_long == sorted(running_long)  # backs off gradually
    assert running_long[0] <= 0.3 and running_long[-1] == MAX_INTERVAL


def test_next_interval_is_never_zero_or_negative():
    for elapsed in (0.0, 0.01, 0.5, 2.99, 3.0, 3.01, 10.0):
        for expected in (None, 0.1, 1.0, 3.0, 15.0):
            for progress in (None, 0.0, 1.0, 50.0, 99.0):
                assert next_interval(elapsed, expected, progress) > 0


def test_progress_only_ever_shortens_the_estimate():
    assert estimate_total(5.0, 15.0, 50.0) == pytest.approx(10.0)
    assert estimate_total(5.0, 8.0, 50.0) == pytest.approx(8.0)
    assert estimate_total(5.0, None, 25.0) == pytest.approx(20.0)
    assert estimate_total(5.0, None, None) is None
    assert estimate_total(5.0, None, 0.0) is None


def test_deadline_raises_provider_timeout():
    job = FakeJob(1000)
    with pytest.raises(ProviderTimeout) as info:
        job.run(None, deadline=30)
    assert info.value.sent is True
    assert "30 seconds" in str(info.value)
    assert job.now == pytest.approx(30, abs=0.1)  # the last sleep is cut to the deadline


def test_failed_and_canceled_jobs_are_returned_not_raised():
    for state in ("failed", "canceled"):
        st = wait(
            lambda state=state: JobStatus("j", state), expected_seconds=1, deadline_seconds=5, sleep=lambda s: None
        )
        assert st.state == state


def test_on_status_sees_every_answer_and_started_at_counts_time_already_spent():
    job = FakeJob(5)
    job.now = 2.0  # submitted at 0, waiting starts at 2
    seen: list[str] = []
    wait(
        job.poll,
        expected_seconds=5,
        deadline_seconds=100,
        started_at=0.0,
        clock=job.clock,
        sleep=job.sleep,
        on_status=lambda st: seen.append(st.state),
    )
    assert seen[-1] == "succeeded" and len(seen) == job.polls
    assert job.late <= tolerance(5)


def test_provider_estimate_is_used_when_the_caller_has_none():
    job = FakeJob(8, progress=False)

    def poll() -> JobStatus:
        st = job.poll()
        st.estimated_seconds = 8.0
        return st

    wait(poll, expected_seconds=None, deadline_seconds=100, clock=job.clock, sleep=job.sleep)
    assert job.late <= tolerance(8)
