"""The request, capability and job types shared by every provider.

These are the boundary of the provider layer: pages and the job runner build an
``ImageRequest``, providers answer with ``JobStatus`` and ``OutputImage``.
Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

import clock

__all__ = [
    "JOB_STATES",
    "QUALITY_ORDER",
    "QUALITY_WORDS",
    "TERMINAL_STATES",
    "ImageRequest",
    "InputImage",
    "JobState",
    "JobStatus",
    "ModelCaps",
    "OutputImage",
    "PartialImage",
    "PreviewSink",
    "Submission",
]

JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "canceled")
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
# Every quality any model takes, in the order people read them (a model offers a subset).
QUALITY_ORDER: tuple[str, ...] = ("low", "medium", "high", "xhigh", "max", "auto")
# How every page, export and report spells a quality.
QUALITY_WORDS: dict[str, str] = {
    "low": "Low", "medium": "Medium", "high": "High", "xhigh": "Extra high", "max": "Max", "auto": "Auto",
}

MIME_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


@dataclass(frozen=True)
class InputImage:
    """An image given to an edit: local bytes (``data`` + ``mime``) or a ``url``."""

    data: bytes | None = None
    mime: str | None = None
    url: str | None = None
    name: str = "image.png"

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("InputImage needs exactly one of data or url")

    @property
    def is_local(self) -> bool:
        return self.data is not None

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None

    def __repr__(self) -> str:  # never dump megabytes into logs
        if self.data is not None:
            return f"InputImage({self.name!r}, {self.mime}, {len(self.data)} bytes)"
        return f"InputImage(url={self.url!r})"


@dataclass(frozen=True)
class ImageRequest:
    """What a person asked for, independent of any provider.

    ``size`` is an aspect ratio (``"3:2"``), pixels (``"1536x1024"``) or ``"auto"``;
    each provider's ``ModelCaps`` says which it accepts. ``n`` is images per prompt:
    where a provider makes one image per call, the job runner makes ``n`` calls.
    """

    prompt: str
    model: str
    size: str = "1:1"
    quality: str = "auto"
    background: str = "auto"
    output_format: str = "png"
    output_compression: int | None = None
    moderation: str = "auto"
    n: int = 1
    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    input_fidelity: str | None = None
    resolution: str | None = None  # EvoLink gpt-image-2 ratio mode: 1K / 2K / 4K
    # Streamed previews asked of a model that streams (OpenAI, 0-3); 0 = no stream, one answer.
    partial_images: int = 0
    # Where the provider calls back when the job ends (set by the job driver for one job, with its
    # secret token): never part of params(), so never stored, exported or shown as code.
    callback_url: str | None = field(default=None, repr=False, compare=False)
    # A stable, hashed id of the person asking (OpenAI's safety_identifier, for abuse monitoring): set
    # for one call, never part of params().
    safety_identifier: str | None = field(default=None, repr=False, compare=False)

    def with_(self, **changes: Any) -> ImageRequest:
        return replace(self, **changes)

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    def params(self) -> dict[str, Any]:
        """The parameters as plain JSON-able values (no image bytes, no secrets)."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "background": self.background,
            "output_format": self.output_format,
            "output_compression": self.output_compression,
            "moderation": self.moderation,
            "n": self.n,
            "input_fidelity": self.input_fidelity,
            "resolution": self.resolution,
            "partial_images": self.partial_images,
            "images": [
                {"sha256": i.sha256, "mime": i.mime, "name": i.name} if i.is_local else {"url": i.url}
                for i in self.images
            ],
            "mask": None if self.mask is None else {"sha256": self.mask.sha256},
        }


@dataclass(frozen=True)
class ModelCaps:
    """What one provider accepts for one model, as data (the UI renders from it).

    An empty tuple for an optional parameter means the provider does not take it
    (the adapter must not send it).
    """

    provider: str
    model: str  # id as sent on the wire
    label: str
    provider_label: str = ""  # the provider's name for people (its class label), for messages
    qualities: tuple[str, ...] = ("low", "medium", "high", "auto")
    default_quality: str = "auto"
    sizes: tuple[str, ...] = ("1:1", "3:2", "2:3")  # offered values, first is default
    free_size: bool = False  # any WxH under the gpt-image-2 rules (multiples of 16, <=3:1, pixel range)
    ratio_pixels: tuple[tuple[str, str], ...] = (("1:1", "1024x1024"), ("3:2", "1536x1024"), ("2:3", "1024x1536"))
    resolutions: tuple[str, ...] = ()
    backgrounds: tuple[str, ...] = ("auto", "opaque")
    output_formats: tuple[str, ...] = ("webp", "png", "jpeg")
    default_output_format: str = "webp"
    compression: bool = True
    moderations: tuple[str, ...] = ("auto", "low")
    moderation_on_edits: bool = True
    input_fidelities: tuple[str, ...] = ()
    max_images_per_call: int = 1
    max_n: int = 10
    max_input_images: int = 16
    max_input_bytes: int = 50 * 1024 * 1024
    input_formats: tuple[str, ...] = ("png", "jpeg", "webp")
    accepts_local_files: bool = True
    accepts_mask: bool = False
    mask_max_bytes: int = 4 * 1024 * 1024
    prompt_limit: int = 32000
    prompt_limit_unit: Literal["chars", "tokens"] = "chars"
    can_cancel: bool = False
    max_partial_images: int = 0  # streamed previews the model can send before its image (0: it does not stream)
    takes_safety_identifier: bool = False  # the create carries ImageRequest.safety_identifier
    expected_seconds: float | None = None
    shutdown: date | None = None
    replacement: str | None = None  # the priced model this app switches to after the shutdown
    recommended: str | None = None  # what OpenAI's deprecations page names as the successor
    caution: str = ""  # shown before any paid call: what about this route is not confirmed
    notes: str = ""

    def retired(self, today: date | None = None) -> bool:
        """Past its shutdown date on ``today`` (the one clock's day when not given)."""
        return self.shutdown is not None and (today or clock.today()) >= self.shutdown

    def successor_text(self) -> str:
        """What to use instead, in OpenAI's words first, then the priced model this app picks."""
        said = f"OpenAI recommends {self.recommended}" if self.recommended else ""
        if not self.replacement or self.replacement == self.recommended:
            return f"{said}." if said else ""
        if not said:
            return f"Use {self.replacement}."
        return f"{said}; this app switches to {self.replacement}, whose price is confirmed."

    def retirement_text(self) -> str:
        """"GPT Image 1.5 was shut down on 2026-12-01. OpenAI recommends ...", or "" if it has no date."""
        if self.shutdown is None:
            return ""
        successor = self.successor_text()
        return f"{self.label} was shut down on {self.shutdown:%Y-%m-%d}." + (f" {successor}" if successor else "")

    def pixels_for(self, size: str) -> str | None:
        """WxH for a size value: pixels as given, a ratio via ``ratio_pixels``, else None."""
        if "x" in size:
            return size
        return dict(self.ratio_pixels).get(size)


@dataclass(frozen=True)
class OutputImage:
    data: bytes
    format: str  # png / jpeg / webp
    source_url: str | None = None

    def __repr__(self) -> str:
        return f"OutputImage({self.format}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class PartialImage:
    """One streamed preview of an image being made: shown while it forms, never kept as a result."""

    index: int  # 0-based, in the order the provider sent them
    data: bytes
    format: str

    def __repr__(self) -> str:
        return f"PartialImage({self.index}, {self.format}, {len(self.data)} bytes)"


# Where an adapter hands each preview as it arrives (the job driver keeps them in memory).
PreviewSink = Callable[[PartialImage], None]


@dataclass
class JobStatus:
    """A provider's answer about one job, normalised.

    Synchronous providers (OpenAI) answer a submit with a finished status whose
    ``images`` are inline; asynchronous ones give ``job_id`` and later
    ``result_urls``. ``billed`` holds what the provider reported for billing
    (OpenAI ``usage`` tokens, EvoLink credits, Apiframe ``creditCost``...), raw,
    for the catalogue to price.
    """

    job_id: str | None
    state: JobState
    progress: float | None = None  # 0-100
    estimated_seconds: float | None = None
    result_urls: tuple[str, ...] = ()
    images: tuple[OutputImage, ...] = ()
    billed: dict[str, Any] | None = None
    error: Exception | None = None
    can_cancel: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


# A submit answers with the first status (its job_id is what must be persisted at once).
Submission = JobStatus
