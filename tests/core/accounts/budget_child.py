"""Run as a separate process: one member's racers against the shared budget (issue 14, across processes).

``python budget_child.py <database url> <data dir> <user id> <racers> <go file>`` waits for the go file,
then submits ``racers`` one-job runs at $0.07 at once from as many threads, held to the member's own
daily cap and the team's, and prints how many were accepted and refused as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from core.history.store import Store  # noqa: E402
from core.history.views import Money, NewJob  # noqa: E402
from core.spend.budget import BudgetExceeded  # noqa: E402
from providers.types import ImageRequest  # noqa: E402


def main() -> None:
    url, data_dir, user_id, racers, go = sys.argv[1:6]
    store = Store(url, data_dir)
    request = ImageRequest(prompt="race", model="m1", quality="low")
    count = int(racers)
    barrier = threading.Barrier(count)
    out = {"accepted": 0, "refused": 0, "other": []}
    lock = threading.Lock()

    def race() -> None:
        job = NewJob(prompt="race", n=1, quality="low", size=request.size,
                     estimate=Money(Decimal("0.07"), Decimal("0.07"), "USD"))
        barrier.wait()
        try:
            store.create_run(provider="fake", endpoint="live", request=request, jobs=[job], user_id=user_id,
                             member_daily_cap=True)
        except BudgetExceeded:
            with lock:
                out["refused"] += 1
        except Exception as err:  # noqa: BLE001 - reported to the test, which fails on it
            with lock:
                out["other"].append(repr(err))
        else:
            with lock:
                out["accepted"] += 1

    while not Path(go).exists():
        time.sleep(0.01)
    threads = [threading.Thread(target=race) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
