"""Benchmark 5: the app process's resident memory after 200 generated images.

Starts the real app (``python -m streamlit run app.py`` on a free loopback port,
with its own data directory and emulator port, like tests/e2e) and drives the
Studio page in headless Chromium (/usr/bin/chromium through Playwright), as a
person would: a prompt with a ``{{word}}`` variable, 20 values, 10 images per
prompt, Generate -> 200 images through the app's own runner and its built-in
emulator (which runs inside the app process, so its rendering counts too). Then
the History page and back. The app's VmRSS (``/proc/<pid>/status``) must stay
under 400 MB: images live on disk, not in session state.

    python -m bench.app_memory [--words 20] [--per-prompt 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.browser import images_per_prompt
from bench.common import ROOT, Check, free_port, process_memory_mb, report, wait_until

TARGET_MB = 400
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
WORDS = ["Spring", "Summer", "Autumn", "Winter", "Dawn", "Dusk", "Harbour", "Forest", "Desert", "Glacier",
         "Market", "Festival", "Library", "Garden", "Bridge", "Lantern", "Orchard", "Meadow", "Canyon", "Island",
         "River", "Summit", "Valley", "Lagoon"]


class App:
    """The app under ``streamlit run``, in its own data directory (see tests/e2e/conftest.py)."""

    def __init__(self, data_dir: Path, latency: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir / "streamlit.log"
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.update(IMAGE_STUDIO_DATA_DIR=str(data_dir), IMAGE_STUDIO_EMULATOR_PORT=str(free_port()),
                   IMAGE_STUDIO_EMULATOR_LATENCY=str(latency))
        env.pop("IMAGE_STUDIO_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        import httpx

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, step=0.25, what="the app")

    def memory_mb(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak so far) of the app process, in MB."""
        return process_memory_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def idle(page) -> None:
    """Wait until the app is not running a script (its status widget shows while it does)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def generate(page, words: list[str], per_prompt: int, timeout_s: float) -> float:
    """Fill the Studio form, press Generate, wait for every image; returns the seconds it took."""
    prompt = page.locator('textarea[aria-label="Prompt"]')
    prompt.fill("A poster for the {{word}} festival, bold lettering, flat colours")
    prompt.press("Control+Enter")  # a text area applies its text on Ctrl+Enter
    values = page.locator('textarea[aria-label="{{word}}"]')
    values.wait_for(timeout=15_000)
    values.fill("\n".join(words))
    values.press("Control+Enter")
    page.get_by_text(f"{len(words)} word values").wait_for(timeout=15_000)
    images_per_prompt(page, per_prompt)
    total = len(words) * per_prompt
    button = page.get_by_role("button", name=f"Generate {total} images")
    button.wait_for(timeout=15_000)
    idle(page)
    began = time.monotonic()
    button.click()
    page.get_by_text(f"{total} images ready").first.wait_for(timeout=timeout_s * 1000)
    took = time.monotonic() - began
    idle(page)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=20, help="values of {{word}}: prompts (at most 24)")
    parser.add_argument("--per-prompt", type=int, default=10, help="images per prompt (at most 10)")
    parser.add_argument("--latency", type=float, default=0.5, help="the emulator's job time in seconds")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: README's test command installs it")
        return 1
    from playwright.sync_api import sync_playwright

    words = WORDS[: args.words]
    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-memory-"))
    app = App(tmp, args.latency)
    readings: dict[str, dict[str, float]] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(app.url)
            page.get_by_role("heading", name="Studio").wait_for(timeout=60_000)
            idle(page)
            readings["Studio opened"] = app.memory_mb()
            took = generate(page, words, args.per_prompt, timeout_s=600)
            readings[f"{len(words) * args.per_prompt} images shown"] = app.memory_mb()
            page.get_by_role("link", name="History").click()
            page.get_by_role("heading", name="History").wait_for(timeout=30_000)
            idle(page)
            page.get_by_role("link", name="Studio").click()
            page.get_by_role("heading", name="Studio").wait_for(timeout=30_000)
            idle(page)
            readings["after History and back"] = app.memory_mb()
            browser.close()
        from core.history.store import Store

        store = Store(data_dir=tmp)
        images = sum(len(j.images) for j in store.list_jobs(limit=10_000) if j.status == "succeeded")
    finally:
        app.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    final = max(r["VmRSS"] for k, r in readings.items() if k != "Studio opened")
    start = readings["Studio opened"]["VmRSS"]
    checks = [
        Check(f"app VmRSS after {images} images", final, TARGET_MB, "MB",
              f"{(final - start) / max(images, 1) * 1024:.0f} KB per image over the start"),
    ]
    notes = [f"{label}: VmRSS {r['VmRSS']:.0f} MB, peak (VmHWM) {r['VmHWM']:.0f} MB" for label, r in readings.items()]
    notes.append(f"{images} images stored on disk; generating them took {took:.1f} s "
                 f"(emulator job time {args.latency:g} s, OpenAI: 10 images per call)")
    return report("App memory after generating images (real app, headless Chromium)", checks, notes)


if __name__ == "__main__":
    raise SystemExit(main())
