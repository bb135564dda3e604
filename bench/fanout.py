"""Benchmark 2: a batch of eight on a one-image-per-call provider takes about one job's time.

core.today makes one image per call, so eight images are eight jobs. Through the
real ``JobRunner`` with its default limits, on the emulator (2-s jobs): the wall
time from pressing Generate (``submit``) until the eighth image is stored, against
one image's wall time measured the same way in the same run (target: at most
1.25x). Printed beside it: the same eight one after another, and the batch under
the runner's old flat limit of 4 jobs in flight per provider.

    python -m bench.fanout [--images 8] [--length 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from bench.common import Check, Lab, median, report
from core.jobs.runner import JobRunner
from providers.registry import PROVIDERS
from providers.types import ImageRequest

PROVIDER = "coretoday"  # max_images_per_call = 1
TARGET = 1.25


def request(n: int, i: int) -> ImageRequest:
    return ImageRequest(prompt=f"fan-out #{i}: a paper boat on a pond", model=PROVIDERS[PROVIDER].default_model,
                        quality="low", size="1:1", n=n)


def wall(lab: Lab, runner: JobRunner, n: int, i: int, timeout: float) -> float:
    """Seconds from submit until the last of its images is stored (the store's own finish times)."""
    began = time.time()
    ids = runner.submit(PROVIDER, request(n, i), endpoint="emulator").job_ids
    views = lab.wait_done(ids, timeout)
    bad = [v.status for v in views if v.status != "succeeded" or not v.images]
    if bad:
        raise RuntimeError(f"jobs did not succeed: {bad}")
    return max(v.finished_at.timestamp() for v in views) - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--length", type=float, default=2.0, help="the emulator's job time (default 2 s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single job and of the batch (median)")
    args = parser.parse_args(argv)
    timeout = args.length * 10 + 60
    with Lab(latency=args.length) as lab:
        runner = lab.runner
        limit = runner.in_flight_limit(PROVIDER)
        # A person's history at this quality: the runner learns the job time from it (core.today reports none).
        for i in range(4):
            wall(lab, runner, 1, -1 - i, timeout)
        singles, batches = [], []
        for r in range(args.repeat):  # alternated, so drift in the machine's speed hits both alike
            singles.append(wall(lab, runner, 1, 100 + r, timeout))
            batches.append(wall(lab, runner, args.images, 200 + r, timeout))
        sequential = sum(wall(lab, runner, 1, 300 + k, timeout) for k in range(args.images))
        runner.stop()
        old = JobRunner(lab.store, lab.provider_factory, pricing=lab.catalogue, max_in_flight=4).start()
        try:
            old_batch = wall(lab, old, args.images, 400, timeout)
        finally:
            old.stop()
    one, batch = median(singles), median(batches)
    checks = [Check(f"{args.images} images / one image (wall time)", batch / one, TARGET, "x",
                    f"{batch:.2f} s vs {one:.2f} s")]
    notes = [
        f"in flight: {limit} core.today jobs by default (one image per call: a whole batch of up to max_n at once)",
        f"one image {one:.2f} s = {one / args.length:.2f}x the emulator's {args.length:g}-s job; "
        f"{args.images} images {batch:.2f} s = {batch / args.length:.2f}x it",
        f"one after another: {sequential:.2f} s ({sequential / batch:.1f}x the batch)",
        f"with the old flat limit of 4 in flight: {old_batch:.2f} s ({old_batch / one:.2f}x one image)",
        f"runs: one image {', '.join(f'{x:.2f}' for x in singles)} s; batch {', '.join(f'{x:.2f}' for x in batches)} s",
    ]
    return report(f"Batch fan-out: {args.images} images on core.today (one image per call)", checks, notes)


if __name__ == "__main__":
    raise SystemExit(main())
