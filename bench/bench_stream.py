"""Streamed OpenAI previews: time to the first preview against time to the final image, same run.

OpenAI's adapter (``submit_streaming``, two previews) against the emulator, whose job takes
``--latency`` seconds and streams its previews at 1/3 and 2/3 of it, over loopback. Each job:
the time from the create to the first preview, and to the finished image (decoded, with its
usage). The figure is their ratio (first preview / final): how much sooner a person sees the
image forming than without previews.

    python -m bench.bench_stream [--jobs 6] [--latency 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import median
from emulator import Emulator
from providers.openai import OpenAIProvider
from providers.types import ImageRequest, PartialImage


def run(jobs: int, latency: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(port=0, data_dir=Path(tmp) / "emu", latency=latency).start()
        try:
            provider = OpenAIProvider(api_key="bench", base_url=emu.url("openai"), timeout=latency * 4 + 30)
            firsts: list[float] = []
            finals: list[float] = []
            for i in range(jobs):
                seen: list[float] = []
                started = time.monotonic()

                def note(_p: PartialImage, seen: list[float] = seen) -> None:
                    seen.append(time.monotonic())

                request = ImageRequest(prompt=f"a lighthouse at dusk {i}", model="gpt-image-2", size="1024x1024",
                                       quality="low", partial_images=2)
                status = provider.submit_streaming(request, on_preview=note)
                done = time.monotonic()
                assert status.state == "succeeded" and seen, "no preview arrived"
                firsts.append(seen[0] - started)
                finals.append(done - started)
            provider.close()
        finally:
            emu.stop()
    first, final = median(firsts), median(finals)
    print("\n== Streamed previews: time to first preview vs time to the final image (same run) ==")
    print(f"jobs {jobs}, emulator job time {latency:g} s, 2 previews each")
    print(f"first preview  median {first:.3f} s  (each: {', '.join(f'{x:.2f}' for x in firsts)})")
    print(f"final image    median {final:.3f} s  (each: {', '.join(f'{x:.2f}' for x in finals)})")
    print(f"ratio first/final {first / final:.2f} (the first preview comes after {first / final:.0%} of the wait)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--latency", type=float, default=3.0)
    args = parser.parse_args()
    return run(args.jobs, args.latency)


if __name__ == "__main__":
    raise SystemExit(main())
