"""The app side of the crash test, run as a child process the test SIGKILLs.

Usage: crash_child.py DB_URL DATA_DIR EMULATOR_BASE_URL LEASE_SECONDS
Submits one core.today job to the emulator through a real JobRunner, prints its
job id, then keeps the runner going until it is killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.history.store import Store  # noqa: E402
from core.jobs.runner import JobRunner  # noqa: E402
from providers import registry  # noqa: E402 - after the path set-up above
from providers.types import ImageRequest  # noqa: E402


def main() -> None:
    db_url, data_dir, emu_base, lease = sys.argv[1:5]

    def factory(name: str, endpoint: str, api_key: str | None = None):
        return registry.create(name, api_key=api_key or "emulator-key", base_url=f"{emu_base}/{name}")

    runner = JobRunner(Store(db_url, data_dir), factory, scan_seconds=0.1, lease_seconds=float(lease)).start()
    request = ImageRequest(prompt="a lighthouse in a storm", model="gpt-image-2", quality="low", size="1:1")
    submitted = runner.submit("coretoday", request, endpoint="emulator")
    print(submitted.job_ids[0], flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
