"""Jobs outlive a restart; the emulator runs from the command line; images are real."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

from emulator import Emulator
from emulator.images import render
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_survive_a_restart(tmp_path, http):
    first = Emulator(data_dir=tmp_path, latency=1.5).start()
    try:
        created = http.post(
            first.url("coretoday") + "/v1/predictions",
            headers={"X-API-Key": "k"},
            json={"model": "openai/gpt-image-2", "input": {"prompt": "survive", "aspect_ratio": "2:3"}},
        ).json()
        task = http.post(
            first.url("evolink") + "/v1/images/generations",
            headers={"Authorization": "Bearer k"},
            json={"model": "gpt-image-2", "prompt": "survive too"},
        ).json()
        idem = {"X-API-Key": "k", "Idempotency-Key": "restart-1"}
        frame = http.post(
            first.url("apiframe") + "/v2/images/generate", headers=idem, json={"prompt": "p", "model": "gpt-image-2"}
        ).json()
    finally:
        first.stop()
    assert len(list((tmp_path / "emulator" / "jobs").glob("*.json"))) == 3

    second = Emulator(data_dir=tmp_path, latency=0.1).start()
    try:
        url = second.url("coretoday") + f"/v1/predictions/{created['id']}"
        body = http.get(url, headers={"X-API-Key": "k"}).json()
        assert body["status"] in ("pending", "processing")  # still running on its original 1.5 s clock
        deadline = time.monotonic() + 5
        while body["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
            body = http.get(url, headers={"X-API-Key": "k"}).json()
        assert body["metrics"]["total_time"] == 1.5
        img = Image.open(io.BytesIO(http.get(body["output"][0]).content))
        assert body["output"][0].startswith(second.base_url) and img.size == (1024, 1536)

        replay = http.post(
            second.url("apiframe") + "/v2/images/generate", headers=idem, json={"prompt": "p", "model": "gpt-image-2"}
        )
        assert replay.json()["jobId"] == frame["jobId"]

        stats = second.stats()
        assert stats["creates"] == {"openai": 0, "coretoday": 1, "apiframe": 1, "evolink": 1}
        job = stats["jobs"][created["id"]]
        assert job["completed_at"] == job["created_at"] + 1.5
        assert job["status_requests"] >= 2
        evolink = http.get(second.url("evolink") + f"/v1/tasks/{task['id']}", headers={"Authorization": "Bearer k"})
        assert evolink.json()["id"] == task["id"]
    finally:
        second.stop()


def test_canceled_state_is_persisted(tmp_path, http):
    with Emulator(data_dir=tmp_path, latency=5) as emu:
        pid = http.post(
            emu.url("coretoday") + "/v1/predictions",
            headers={"X-API-Key": "k"},
            json={"model": "openai/gpt-image-2", "input": {"prompt": "stop"}},
        ).json()["id"]
        http.delete(emu.url("coretoday") + f"/v1/predictions/{pid}", headers={"X-API-Key": "k"})
    saved = json.loads((tmp_path / "emulator" / "jobs" / f"{pid}.json").read_text())
    assert saved["final_state"] == "canceled" and saved["completed_at"] is not None
    with Emulator(data_dir=tmp_path, latency=0.1) as emu:
        assert emu.stats()["jobs"][pid]["state"] == "canceled"


def test_start_stop_and_urls(tmp_path):
    emu = Emulator(data_dir=tmp_path)
    emu.start()
    try:
        assert emu.port > 0 and emu.base_url == f"http://127.0.0.1:{emu.port}"
        assert emu.url("evolink") == emu.base_url + "/evolink"
        assert httpx.get(emu.base_url + "/_admin/health").json()["latency"] == 3.0
    finally:
        emu.stop()
    try:
        httpx.get(emu.base_url + "/_admin/health", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_command_line(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--latency", "0.1",
         "--data-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
        text = "".join(lines)
        for provider in ("openai", "coretoday", "apiframe", "evolink"):
            assert f"http://127.0.0.1:{port}/{provider}" in text
        health = httpx.get(f"http://127.0.0.1:{port}/_admin/health").json()
        assert health["latency"] == 0.1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    assert (tmp_path / "emulator" / "jobs").is_dir()


def test_render_is_fast_deterministic_and_labelled():
    kw = {"width": 1024, "height": 1024, "fmt": "png", "prompt": "a quiet harbour", "provider": "openai"}
    render(**kw)  # warm the font cache
    started = time.perf_counter()
    a = render(**kw)
    assert time.perf_counter() - started < 0.5  # typically ~40 ms
    assert render(**kw) == a
    assert render(**kw | {"prompt": "a loud harbour"}) != a
    assert render(**kw | {"index": 1}) != a
    img = Image.open(io.BytesIO(a))
    assert img.size == (1024, 1024) and img.mode == "RGB"
    # The label band at the top is darker than the picture under it.
    band = img.crop((0, 0, 1024, 40)).convert("L").resize((1, 1), Image.Resampling.BOX)
    assert band.getpixel((0, 0)) < 80


def test_render_formats_and_compression():
    base = {"width": 1536, "height": 1024, "prompt": "formats"}
    jpeg_small = render(**base, fmt="jpeg", compression=10)
    jpeg_big = render(**base, fmt="jpeg", compression=95)
    assert len(jpeg_small) < len(jpeg_big)
    webp = Image.open(io.BytesIO(render(**base, fmt="webp", compression=50, transparent=True)))
    assert webp.format == "WEBP" and webp.mode == "RGBA" and webp.size == (1536, 1024)
    opaque = Image.open(io.BytesIO(render(**base, fmt="png")))
    assert opaque.mode == "RGB"
