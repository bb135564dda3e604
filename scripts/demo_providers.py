"""Generate and edit one image on every provider against the emulator, and save them.

    python -m providers.emulator --port 8765        # in another terminal
    python scripts/demo_providers.py --emulator http://127.0.0.1:8765

or let the script start one for itself: ``python scripts/demo_providers.py --start-emulator``.

Uses only the public provider API (``providers.registry``, ``ImageRequest``,
``generate``). Keys: the emulator takes any key, so a fixed demo key is sent and
real keys from the environment are never used here.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from providers.errors import ProviderError  # noqa: E402
from providers.registry import PROVIDERS, create  # noqa: E402
from providers.types import ImageRequest, InputImage, OutputImage  # noqa: E402

DEMO_KEY = "emulator-demo-key"
PROMPT = "A lighthouse on a rocky coast at dusk, warm light in the window, watercolour"
EDIT_PROMPT = "Add a small red sailboat on the water, keep everything else unchanged"


def emulator_uploader(base: str):
    """Host local bytes on the emulator so URL-only providers can fetch them."""

    def upload(data: bytes, mime: str) -> str:
        answer = httpx.post(f"{base}/_admin/uploads", content=data, headers={"Content-Type": mime}, timeout=30)
        answer.raise_for_status()
        return answer.json()["url"]

    return upload


def centre_mask(image: OutputImage) -> bytes:
    """A PNG mask the size of ``image``: transparent (to edit) in the middle, opaque elsewhere."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(image.data)) as img:
        w, h = img.size
    mask = Image.new("RGBA", (w, h), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(0, 0, 0, 0))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    return buf.getvalue()


def save(out_dir: Path, name: str, images: list[OutputImage]) -> list[Path]:
    paths = []
    for i, image in enumerate(images, 1):
        path = out_dir / f"{name}-{i}.{image.format}"
        path.write_bytes(image.data)
        paths.append(path)
    return paths


def run(base: str, out_dir: Path, names: list[str]) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    uploader = emulator_uploader(base)
    failures = 0
    for name in names:
        cls = PROVIDERS[name]
        provider = create(name, api_key=DEMO_KEY, base_url=f"{base}/{name}", uploader=uploader)
        try:
            caps = provider.caps()
            request = ImageRequest(
                prompt=PROMPT, model=caps.model, size=caps.sizes[0] if caps.sizes[0] != "auto" else "1:1", quality="low"
            )
            started = time.monotonic()
            generated = provider.generate(request)  # type: ignore[attr-defined]
            paths = save(out_dir, f"{name}-generate", generated)
            print(f"{cls.label:11} generate {time.monotonic() - started:5.1f}s  {', '.join(map(str, paths))}")

            first = generated[0]
            source = InputImage(data=first.data, mime=f"image/{first.format}", name=f"source.{first.format}")
            edit = request.with_(prompt=EDIT_PROMPT, images=(source,))
            if caps.accepts_mask and first.format == "png":
                edit = edit.with_(mask=InputImage(data=centre_mask(first), mime="image/png", name="mask.png"))
            started = time.monotonic()
            edited = provider.generate(edit)  # type: ignore[attr-defined]
            paths = save(out_dir, f"{name}-edit", edited)
            print(f"{cls.label:11} edit     {time.monotonic() - started:5.1f}s  {', '.join(map(str, paths))}")
        except ProviderError as exc:
            failures += 1
            print(f"{cls.label:11} FAILED   {exc.kind}: {exc}", file=sys.stderr)
        finally:
            provider.close()
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emulator", default="http://127.0.0.1:8765", help="base URL of a running emulator")
    parser.add_argument("--start-emulator", action="store_true", help="start an emulator in this process instead")
    parser.add_argument("--latency", type=float, default=1.0, help="job time for --start-emulator (seconds)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where to save the images")
    parser.add_argument("--provider", action="append", choices=list(PROVIDERS), help="only these (repeatable)")
    args = parser.parse_args(argv)
    names = args.provider or list(PROVIDERS)
    if args.start_emulator:
        from emulator import Emulator

        with Emulator(port=0, latency=args.latency) as emu:
            return run(emu.base_url, args.out, names)
    base = args.emulator.rstrip("/")
    try:
        httpx.get(f"{base}/_admin/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        print(
            f"No emulator answers at {base} ({exc}). Start one with: python -m providers.emulator --port 8765",
            file=sys.stderr,
        )
        return 2
    return run(base, args.out, names)


if __name__ == "__main__":
    raise SystemExit(main())
