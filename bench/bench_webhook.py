"""Provider done -> job finished in the history, with webhooks against polling, alternated in one run.

A runner on a SQLite history drives EvoLink (or ``--provider``) jobs on the emulator (``--latency``
seconds each). Webhook jobs carry a callback to a loopback server holding the app's
``core.jobs.webhooks.Receiver`` (``IMAGE_STUDIO_PUBLIC_URL`` set): the emulator calls back when
the job ends, the receiver wakes the worker, one status read confirms it. Polling jobs are sent
without it and found by the runner's ordinary schedule. Late = the moment the history shows the
job finished (what the job panel draws on its next refresh, at most one second later) minus the
emulator's end of the job, both on this process's clock. The goal: the webhook median under 100 ms.
Also printed: the status reads each job needed.

    python -m bench.bench_webhook [--jobs 5] [--latency 2] [--provider evolink]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import clock
from bench.common import median
from core.history.store import Store
from core.jobs import webhooks
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers import registry
from providers.types import ImageRequest

GOAL = 0.100


def _hooks_server(receiver_box: list[webhooks.Receiver]) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def hook(request: Request) -> JSONResponse:
        p = request.path_params
        verdict = await run_in_threadpool(receiver_box[0].receive, p["provider"], p["job_id"], p["token"],
                                          await request.body(), request.headers)
        return JSONResponse({"result": verdict.reason}, status_code=verdict.status)

    app = Starlette(routes=[Route("/hooks/{provider}/{job_id}/{token}", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def _one(runner: JobRunner, emu: Emulator, provider: str, i: int, answered: list[float]) -> tuple[float, int]:
    model = registry.provider_class(provider).default_model
    job_id = runner.submit(provider, ImageRequest(prompt=f"a red fox {i}", model=model, quality="low"),
                           endpoint="emulator").job_ids[0]
    while True:
        job = runner.store.get_job(job_id)
        if job is not None and job.done:
            seen = clock.timestamp()
            break
        time.sleep(0.005)
    assert job.status == "succeeded", job.error_message
    emu_job = emu.store.get(job.provider_job_id or "")
    assert emu_job is not None
    done = emu_job.created_at + emu_job.job_time
    offset = clock.timestamp() - time.monotonic()  # the emulator records deliveries on the monotonic clock
    answered += [d["at"] + offset - done for d in emu.store.deliveries if d["job"] == emu_job.id and d["status"]]
    return seen - done, emu_job.status_requests


def run(jobs: int, latency: float, provider: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(port=0, data_dir=Path(tmp) / "emu", latency=latency).start()
        emu.store.prerender = True  # results rendered at creation: the figure is the notice, not the drawing
        box: list[webhooks.Receiver] = []
        server, url = _hooks_server(box)
        os.environ["IMAGE_STUDIO_SECRET_KEY"] = "bench secret"

        def factory(name: str, endpoint: str, api_key: str | None = None):  # noqa: ANN202 - the runner's factory
            return registry.create(name, api_key="bench", base_url=emu.url(name), uploader=emu.upload)

        runner = JobRunner(Store(f"sqlite:///{Path(tmp) / 'core.db'}", Path(tmp) / "data"), factory).start()
        box.append(webhooks.Receiver(runner.store, runner.nudge, lambda job: "bench"))
        hooked: list[tuple[float, int]] = []
        polled: list[tuple[float, int]] = []
        answered: list[float] = []  # when the app had answered the callback, after the provider's end
        try:
            for i in range(jobs):  # alternated, so both meet the same machine load
                os.environ["IMAGE_STUDIO_PUBLIC_URL"] = url
                hooked.append(_one(runner, emu, provider, 2 * i, answered))
                os.environ.pop("IMAGE_STUDIO_PUBLIC_URL")
                polled.append(_one(runner, emu, provider, 2 * i + 1, []))
        finally:
            runner.stop()
            server.should_exit = True
            emu.stop()
    hook_med, poll_med = median([x for x, _ in hooked]), median([x for x, _ in polled])
    print(f"\n== Provider done -> finished in the history: webhook vs polling ({provider}, same run) ==")
    print(f"jobs {jobs} each, emulator job time {latency:g} s")
    print(f"webhook  median {hook_med * 1000:.0f} ms  (each: {', '.join(f'{x * 1000:.0f}' for x, _ in hooked)} ms; "
          f"status reads {[n for _, n in hooked]})")
    print(f"polling  median {poll_med * 1000:.0f} ms  (each: {', '.join(f'{x * 1000:.0f}' for x, _ in polled)} ms; "
          f"status reads {[n for _, n in polled]})")
    print(f"  of which the callback hop (provider end -> the app answered it): median {median(answered) * 1000:.0f} ms")
    print(f"ratio webhook/polling {hook_med / poll_med:.2f}; goal webhook median < {GOAL * 1000:.0f} ms: "
          f"{'met' if hook_med < GOAL else 'NOT met'}")
    print("  (to the screen add the job panel's refresh, at most 1 s, the same for both)")
    return 0 if hook_med < GOAL else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--provider", default="evolink", choices=sorted(webhooks.CALLBACK_PROVIDERS))
    args = parser.parse_args()
    return run(args.jobs, args.latency, args.provider)


if __name__ == "__main__":
    raise SystemExit(main())
