"""Run the emulator in the foreground: ``python -m emulator --port 8765`` (or ``python -m providers.emulator``)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from . import PROVIDERS, Emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=3.0, help="job time in seconds (default 3)")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="spread job times by up to this fraction either way, fixed per job id (e.g. 0.2)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="jobs and files go under DIR/emulator")
    parser.add_argument("--apiframe-result-shape", choices=("images", "string"), default="images")
    parser.add_argument("--prerender", action="store_true",
                        help="render results while the job runs, as a real provider does (benchmarks)")
    args = parser.parse_args(argv)
    emu = Emulator(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        latency=args.latency,
        apiframe_result_shape=args.apiframe_result_shape,
        prerender=args.prerender,
        jitter=args.jitter,
    ).start()
    spread = f" ±{emu.jitter:.0%}" if emu.jitter else ""
    print(f"Image Studio emulator on {emu.base_url} (latency {emu.latency:g} s{spread}, data in {emu.store.root})")
    for provider in PROVIDERS:
        print(f"  {provider:<10} {emu.url(provider)}")
    print(f"  admin      {emu.base_url}/_admin/health   (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()  # the server runs in its own thread; sleep until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
