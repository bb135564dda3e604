"""What the on-screen benchmarks share: a Streamlit server on a free port, headless Chromium, page clocks.

- :class:`Server` runs ``python -m streamlit run <script>`` (the app, or one of the
  bare baseline pages in ``bench/bare/``) exactly as tests/e2e does: its own data
  directory, its own built-in emulator port, no keys, on the real clock (no
  ``IMAGE_STUDIO_CLOCK``: the benchmark relates the emulator's clock to the browser's).
- :func:`chromium` launches Debian's ``/usr/bin/chromium`` through Playwright with
  tests/e2e/conftest.py's flags; a browser is never downloaded.
- :data:`OBSERVER_JS` is put into every page before Streamlit's own scripts run: a
  MutationObserver that notes, in page time (``performance.timeOrigin + performance.now()``,
  epoch milliseconds), when result images appear in the DOM, when they have loaded,
  and the animation frame after that (on screen). :func:`page_offset` turns page time
  into this process's ``time.time()``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, free_port, process_memory_mb, wait_until

CHROMIUM = "/usr/bin/chromium"
# As tests/e2e/conftest.py launches it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 1000}
# Settings a run must not inherit from the shell: live keys, another database, a pinned clock, other limits.
_DROPPED = ("IMAGE_STUDIO_DATABASE_URL", "IMAGE_STUDIO_CLOCK", "IMAGE_STUDIO_MAX_IN_FLIGHT",
            "IMAGE_STUDIO_EMULATOR_LATENCY", "IMAGE_STUDIO_EMULATOR_JITTER", "IMAGE_STUDIO_BUDGET_USD_DAILY",
            "IMAGE_STUDIO_BUDGET_USD_TOTAL")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k not in _DROPPED}
    env.update(extra or {})
    return env


class Server:
    """``streamlit run <script>`` on a free loopback port, with its own data dir and emulator port.

    ``latency`` and ``jitter`` go to the built-in emulator (``IMAGE_STUDIO_EMULATOR_LATENCY`` /
    ``_JITTER``); the bare poll-loop page reads the same variables for the emulator it starts.
    """

    def __init__(self, script: str, data_dir: Path, *, latency: float = 3.0, jitter: float = 0.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.script = script
        self.port = free_port()
        self.emulator_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "streamlit.log"
        self.env = clean_env({
            "IMAGE_STUDIO_DATA_DIR": str(data_dir),
            "IMAGE_STUDIO_EMULATOR_PORT": str(self.emulator_port),
            "IMAGE_STUDIO_EMULATOR_LATENCY": f"{latency:g}",
            "IMAGE_STUDIO_EMULATOR_JITTER": f"{jitter:g}",
            **(env or {}),
        })
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", self.script, "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, step=0.25, what=f"streamlit run {self.script}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_mb(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak so far) of the server process, in MB."""
        return process_memory_mb(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def emulator_stats(self) -> dict[str, Any]:
        """The built-in emulator's jobs and log (it listens on ``emulator_port`` once the server started it)."""
        answer = httpx.get(f"http://127.0.0.1:{self.emulator_port}/_admin/stats", timeout=30)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser); raises when it is missing."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: README's test command installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds(servers: Collection[int] = (), root: int | None = None) -> float:
    """CPU time used so far by this process's descendants but the ``servers`` (Playwright's driver, Chromium).

    The browser runs on the same two CPUs as the app: the on-screen benchmarks print its share.
    Only our own descendants count, never another engineer's browser.
    """
    root = os.getpid() if root is None else root
    stats = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _proc_stat(p.name))}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in servers:
            continue
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


# Page time is epoch milliseconds: performance.timeOrigin + performance.now().
# A result image is a shown <img> under a Streamlit image element. arm(n, text) starts a watch: the page
# notes when n result images are in the DOM (dom), have loaded (loaded) and the animation frame after
# that (painted: on screen), counting images whose own block (the result card) shows ``text`` (the app's result
# card shows its job's prompt), or, with no text, images whose address was not on the page when armed.
OBSERVER_JS = """
(() => {
  if (window.__bench) return;
  const SEL = '[data-testid="stImage"] img, [data-testid="stImageContainer"] img';
  const now = () => performance.timeOrigin + performance.now();
  const B = window.__bench = {now, known: new Set(), target: 0, dom: null, loaded: null, painted: null,
                              clickedAt: null, textAt: null, textSel: null, textOld: null, enabledAt: null};
  // A result image: shown (not in a collapsed expander), and either its grid cell says B.text (the app's
  // result card carries the job's prompt) or, with no text, its address was not on the page when armed.
  // The innermost block around the image: its own result card (the Studio's output pane is one column
  // holding the new job's header beside the older results, so the column would match too early).
  const cell = (i) => i.closest('[data-testid="stVerticalBlock"]') || i.closest('[data-testid="stColumn"]');
  const fresh = () => Array.from(document.querySelectorAll(SEL)).filter(i => i.checkVisibility()
    && (B.text ? (cell(i) || i).textContent.includes(B.text) : !B.known.has(i.currentSrc || i.src)));
  B.check = () => {
    if (!B.target) return;
    const imgs = fresh();
    if (B.dom === null && imgs.length >= B.target) B.dom = now();
    const ok = imgs.filter(i => i.complete && i.naturalWidth > 0);
    if (B.loaded === null && ok.length >= B.target) {
      B.loaded = now();
      requestAnimationFrame(() => { B.painted = now(); });
    }
  };
  B.arm = (n, text) => {
    B.known = new Set(Array.from(document.querySelectorAll(SEL)).map(i => i.currentSrc || i.src));
    B.text = text || null; B.target = n; B.dom = B.loaded = B.painted = null;
  };
  // The app shows a job's prompt in its card's caption from the moment the job exists (Streamlit 1.67's
  // st.caption is a stCaptionContainer: the old stCaption matched nothing, and the room bench clicked
  // every session's Generate three times).
  B.sent = () => !!B.text && Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
    .some(c => c.checkVisibility() && c.textContent.includes(B.text));
  B.metric = (label) => {
    const m = Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
      .find(e => (e.querySelector('[data-testid="stMetricLabel"]') || e).textContent.includes(label));
    const v = m && m.querySelector('[data-testid="stMetricValue"]');
    return v ? v.textContent : null;
  };
  B.watchMetric = (label) => {
    B.textSel = label; B.textOld = B.metric(label); B.textAt = null; B.clickedAt = null; B.textNew = null;
    return B.textOld;
  };
  B.checkText = () => {
    if (B.textSel === null || B.textAt !== null || B.clickedAt === null) return;
    const value = B.metric(B.textSel);
    if (value !== null && value !== B.textOld) { B.textAt = now(); B.textNew = value; }
  };
  B.checkEnabled = () => {
    if (B.enabledAt !== null) return;
    const box = document.querySelector('textarea[aria-label="Prompt"]');
    if (box && !box.disabled && !box.closest('[data-stale="true"]')) B.enabledAt = now();
  };
  B.firstPaint = () => {
    const e = performance.getEntriesByType('paint').find(p => p.name === 'first-paint')
      || performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
    return e ? performance.timeOrigin + e.startTime : null;
  };
  const all = () => { B.check(); B.checkText(); B.checkEnabled(); };
  document.addEventListener('load', (e) => { if (e.target && e.target.tagName === 'IMG') all(); }, true);
  document.addEventListener('pointerdown', () => {
    if (B.textSel !== null && B.clickedAt === null) B.clickedAt = now();
  }, true);
  new MutationObserver(all).observe(document, {childList: true, subtree: true, attributes: true,
                                               characterData: true, attributeFilter: ['src', 'disabled']});
})();
"""


def new_page(browser: Any) -> Any:
    """A page in a fresh browser context (no cache, no cookies), with the observer installed."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(OBSERVER_JS)
    return context.new_page()


@dataclass(frozen=True)
class Offset:
    """``time.time() = page seconds + seconds``, known to within ``uncertainty`` (half the best round trip)."""

    seconds: float
    uncertainty: float

    def to_epoch(self, page_ms: float | None) -> float:
        return float("nan") if page_ms is None else page_ms / 1000 + self.seconds


def page_offset(page: Any, rounds: int = 7) -> Offset:
    """Both clocks are this machine's, but Chromium's timeOrigin and Python's time.time() need not agree to
    the millisecond: read the page clock between two reads of ours and keep the tightest round trip."""
    best: Offset | None = None
    for _ in range(rounds):
        before = time.time()
        page_ms = page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time()
        guess = Offset((before + after) / 2 - page_ms / 1000, (after - before) / 2)
        if best is None or guess.uncertainty < best.uncertainty:
            best = guess
    assert best is not None
    return best


def idle(page: Any, timeout_s: float = 60) -> None:
    """Wait until the page runs no script (Streamlit's status widget shows while one runs)."""
    page.wait_for_timeout(250)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_s * 1000)


def marks(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "({dom: __bench.dom, loaded: __bench.loaded, painted: __bench.painted, clickedAt: __bench.clickedAt,"
        " textAt: __bench.textAt, textNew: __bench.textNew, enabledAt: __bench.enabledAt,"
        " firstPaint: __bench.firstPaint(), navStart: performance.timeOrigin})")
    return result


def click_until_sent(page: Any, button: Any, text: str, *, wait_s: float = 10, tries: int = 3) -> tuple[float, int]:
    """Click ``button`` until the page shows a job card with ``text`` (the observer must be armed with it).

    Returns (the first click's time.time(), clicks made). A click that sends nothing is clicked again,
    as a person would; the wait still counts from the first click and the benchmarks print how many
    clicks were repeated.
    """
    first = time.time()
    for k in range(1, tries + 1):
        button.click()
        try:
            page.wait_for_function("__bench.sent() || __bench.dom !== null", timeout=wait_s * 1000)
            return first, k
        except Exception as err:  # playwright's TimeoutError
            if "Timeout" not in type(err).__name__ or k == tries:
                raise
    raise AssertionError("unreachable")


def images_per_prompt(page: Any, count: int) -> None:
    """Set the Studio's "Images per prompt" (it sits in the form's "More settings" expander)."""
    field = page.locator('input[aria-label="Images per prompt"]')
    if not field.is_visible():
        page.get_by_text("More settings and model details", exact=True).click()
        field.wait_for(state="visible", timeout=15_000)
    field.fill(str(count))
    field.press("Enter")
