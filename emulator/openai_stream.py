"""OpenAI's streamed answer to a create (``stream=true``), as server-sent events.

As OpenAI documents it (API reference "Image streaming"; the openai package 3.57,
``image_gen_partial_image_event.py`` / ``image_gen_completed_event.py`` and the ``image_edit_*``
twins): ``partial_images`` events ``<prefix>.partial_image`` {b64_json, partial_image_index,
background, created_at, output_format, quality, size}, then one ``<prefix>.completed`` with the
same fields, ``usage`` and no index. Each frame is the final picture blurred less than the one
before, so the previews visibly sharpen. Faults act mid-stream: ``drop_after_create`` cuts the
connection after the first preview, ``slow`` pauses there for its delay.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from PIL import ImageFilter
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

import clock

from . import images
from .common import DropConnection

__all__ = ["blurred", "sse", "stream_response"]

MAX_BLUR = 48.0  # the first preview's blur radius at 1024 px; later ones are sharper


def sse(event: str, body: dict[str, Any]) -> bytes:
    """One event as OpenAI writes it: an ``event:`` line naming the type, the JSON on one ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def blurred(final: bytes, fmt: str, amount: float) -> bytes:
    """``final`` blurred by ``amount`` (1 = the most, 0 = none), encoded as ``fmt``."""
    img = images.decode(final)
    radius = MAX_BLUR * amount * max(img.size) / 1024
    frame = img.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else img
    out = io.BytesIO()
    if fmt == "jpeg":
        frame.convert("RGB").save(out, "JPEG", quality=70)
    elif fmt == "webp":
        frame.save(out, "WEBP", quality=70, method=0)
    else:
        frame.save(out, "PNG", compress_level=1)
    return out.getvalue()


def stream_response(
    *,
    edit: bool,
    partials: int,
    finals: list[bytes],
    shape: dict[str, Any],
    usage: Callable[[int], dict[str, Any]],
    job_time: float,
    started: float,
    fault: dict[str, Any] | None,
    finish: Callable[[], None],
) -> StreamingResponse:
    """The event stream for the finished pictures (previews of the first; with n > 1 one completed event
    each, an arrangement OpenAI does not document); ``shape`` holds background/output_format/quality/size,
    ``usage(previews_sent)`` the completed event's usage, ``finish`` marks the job done."""
    prefix = "image_edit" if edit else "image_generation"

    async def events() -> AsyncIterator[bytes]:
        for i in range(partials):
            await asyncio.sleep(max(0.0, started + job_time * (i + 1) / (partials + 1) - time.monotonic()))
            frame = await run_in_threadpool(blurred, finals[0], shape["output_format"], (partials - i) / (partials + 1))
            yield sse(f"{prefix}.partial_image", {
                "type": f"{prefix}.partial_image", "b64_json": base64.b64encode(frame).decode("ascii"),
                "partial_image_index": i, "created_at": int(clock.timestamp()), **shape,
            })
            if i == 0:
                await _mid_stream(fault)
        if partials == 0:
            await _mid_stream(fault)
        await asyncio.sleep(max(0.0, started + job_time - time.monotonic()))
        finish()
        for final in finals:
            yield sse(f"{prefix}.completed", {
                "type": f"{prefix}.completed", "b64_json": base64.b64encode(final).decode("ascii"),
                "created_at": int(clock.timestamp()), **shape, "usage": usage(partials),
            })

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _mid_stream(fault: dict[str, Any] | None) -> None:
    if fault is None:
        return
    if fault["kind"] == "drop_after_create":
        raise DropConnection("emulated stream cut after the first preview")
    if fault["kind"] == "slow":
        await asyncio.sleep(float(fault.get("delay") or 1.0))

