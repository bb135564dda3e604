"""Benchmark 4: a 24-megapixel JPEG made ready for upload, in time and memory.

``core.images.prepare.prepare`` on a 6000x4000 photo-like JPEG (noise over a
gradient, so it compresses like a real photo, not like a flat test card),
for the cases a person meets: already fine; sideways (EXIF orientation 6) for
OpenAI (50 MB per image); sideways and over EvoLink gpt-image-1's 10 MB; and
sideways and far over it (a quality-100 file, so it must be scaled down).
Median time over several runs (target: at most 0.5 s each) and the peak
resident memory the call adds, printed: measured in a fresh process per case
(VmHWM after the call minus VmRSS before it, Linux), since a process that has
already held big images keeps that memory and would hide the peak.

    python -m bench.image_prep [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Check, median, report

TARGET = 0.5
W, H = 6000, 4000


def photo(quality: int, orientation: int | None) -> bytes:
    from PIL import Image

    base = Image.linear_gradient("L").resize((W, H)).convert("RGB")
    noise = Image.effect_noise((W, H), 40).convert("RGB")
    img = Image.blend(base, noise, 0.5)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child_peak(path: Path, provider: str, model: str) -> None:
    """In a fresh process: prepare the file once and print the MB its peak adds to the resident memory."""
    from core.images import prepare as imageprep
    from providers.registry import PROVIDERS

    data = path.read_bytes()
    caps = PROVIDERS[provider].caps(model)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the current RSS
    except OSError:
        pass
    before = _status_kb("VmRSS")
    imageprep.prepare([("photo.jpg", data)], caps)
    peak = _status_kb("VmHWM")
    print("" if before is None or peak is None else f"{max(0, peak - before) / 1024:.1f}")


def peak_mb(data: bytes, provider: str, model: str, tmp: Path) -> float | None:
    path = tmp / f"photo-{len(data)}.jpg"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-m", "bench.image_prep", "--child", str(path), provider, model],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip().splitlines()
    return float(out[-1]) if out and out[-1] else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("FILE", "PROVIDER", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_peak(Path(args.child[0]), args.child[1], args.child[2])
        return 0

    from core.images import prepare as imageprep
    from providers.registry import PROVIDERS

    upright, sideways, heavy = photo(92, None), photo(92, 6), photo(100, 6)
    cases = [
        ("upright, within the limit (OpenAI)", upright, "openai", "gpt-image-2"),
        ("sideways (EXIF 6), OpenAI 50 MB", sideways, "openai", "gpt-image-2"),
        ("sideways, over EvoLink's 10 MB", sideways, "evolink", "gpt-image-1"),
        ("sideways, far over 10 MB (quality 100)", heavy, "evolink", "gpt-image-1"),
    ]
    checks, notes = [], [f"input: {W}x{H} JPEG ({W * H / 1e6:.0f} MP); {args.runs} runs each after one warm-up"]
    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-prep-"))
    try:
        for label, data, provider, model in cases:
            caps = PROVIDERS[provider].caps(model)
            imageprep.prepare([("photo.jpg", data)], caps)  # warm-up: imports, codec tables
            times = []
            for _ in range(args.runs):
                began = time.perf_counter()
                result = imageprep.prepare([("photo.jpg", data)], caps)
                times.append(time.perf_counter() - began)
            peak = peak_mb(data, provider, model, tmp)
            out, info = result.images[0].data, result.infos[0]
            peak_text = f"peak +{peak:.0f} MB" if peak is not None else "peak memory not measurable here"
            checks.append(Check(label, median(times), TARGET, "s",
                                f"{len(data) / 2**20:.1f} MB -> {info.width}x{info.height} "
                                f"{len(out) / 2**20:.1f} MB; {peak_text}"))
            for notice in result.notices:
                notes.append(f"{label}: {notice}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    notes.append(f"a {W}x{H} RGB image decoded in full is {W * H * 3 / 2**20:.0f} MB")
    return report("Image preparation: a 24-megapixel JPEG", checks, notes)


if __name__ == "__main__":
    raise SystemExit(main())
