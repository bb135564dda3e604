"""The emulator's job-time jitter (the screen benchmark's ±20 % / ±50 % runs): spread, bounded, fixed per job id."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import config
from core import services as app_services
from emulator import Emulator
from emulator.store import Job, jitter_factor
from tests.ports import free_port


def test_jitter_factor_is_bounded_spread_and_fixed_per_id() -> None:
    ids = [f"job-{i}" for i in range(400)]
    factors = [jitter_factor(i, 0.2) for i in ids]
    assert all(0.8 <= f <= 1.2 for f in factors)
    assert min(factors) < 0.85 and max(factors) > 1.15  # spread over the whole range, not one value
    assert factors == [jitter_factor(i, 0.2) for i in ids]  # the same id, the same length: repeatable
    assert jitter_factor("job-1", 0.0) == 1.0


def test_a_new_job_takes_its_jittered_time_once(tmp_path: Path) -> None:
    emu = Emulator(data_dir=tmp_path, latency=2.0, jitter=0.5)
    job = Job(id="abc", provider="coretoday", model="m", params={}, request={}, created_at=0.0, job_time=2.0)
    emu.store.add(job)
    assert job.job_time == pytest.approx(2.0 * jitter_factor("abc", 0.5))
    emu.store.add(job)  # saved again (a status change): its time is not spread twice
    assert job.job_time == pytest.approx(2.0 * jitter_factor("abc", 0.5))
    assert emu.jitter == 0.5 and emu.stats()["jitter"] == 0.5


def test_no_jitter_keeps_exact_times(tmp_path: Path) -> None:
    emu = Emulator(data_dir=tmp_path, latency=3.0)
    job = Job(id="abc", provider="coretoday", model="m", params={}, request={}, created_at=0.0, job_time=3.0)
    emu.store.add(job)
    assert job.job_time == 3.0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_jitter_outside_zero_to_one_is_refused(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ValueError):
        Emulator(data_dir=tmp_path, jitter=bad)


@pytest.mark.parametrize(("raw", "expected"), [("", 0.0), ("0.2", 0.2), ("-1", 0.0), ("5", 0.95), ("x", 0.0)])
def test_config_reads_the_jitter(monkeypatch: pytest.MonkeyPatch, raw: str, expected: float) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_JITTER", raw)
    assert config.emulator_jitter() == expected


def test_the_app_starts_its_emulator_with_the_configured_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_JITTER", "0.25")
    app_services.stop_emulator()  # one this worker started for an earlier test would be reused
    try:
        handle = app_services.get_emulator()
        assert handle.emulator is not None and handle.emulator.jitter == 0.25
    finally:
        app_services.stop_emulator()
