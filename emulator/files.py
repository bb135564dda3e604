"""The files the emulator serves under ``/_files/`` (uploads, and job results rendered
on first request) and the input images it takes: its own files only, by the URL policy."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from PIL import UnidentifiedImageError
from PIL.Image import DecompressionBombError
from starlette.concurrency import run_in_threadpool

from providers import imagegate, urlpolicy
from providers.errors import InvalidRequest

from . import images
from .store import Job, Store

log = logging.getLogger(__name__)

__all__ = ["ALLOWED_INPUT_FORMATS", "FileService", "InputError", "new_token", "render_job", "sniff_format"]

ALLOWED_INPUT_FORMATS = ("png", "jpeg", "webp")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sniff_format(data: bytes) -> str | None:
    """png / jpeg / webp..., or None for what is not an image, or is one too large to open (the image gate)."""
    try:
        imagegate.check(data)
        fmt = (images.decode(data).format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError, InvalidRequest, DecompressionBombError):
        return None
    return "jpeg" if fmt in ("jpg", "mpo") else fmt  # Pillow calls some camera JPEGs MPO


def new_token(n: int = 8) -> str:
    return secrets.token_hex(n)


class InputError(Exception):
    """A request the emulator refuses (bad input image URL, unreadable file...)."""

    def __init__(self, message: str, *, field: str = "input_images", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class FileService:
    """Files served under ``/_files/``: uploads, and job results rendered on first request."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def job_for(self, name: str) -> tuple[Job, int] | None:
        stem, _, _ = name.rpartition(".")
        job_id, _, idx = stem.rpartition("-")
        job = self.store.get(job_id)
        if job is None or not idx.isdigit() or job.sync:
            return None
        index = int(idx) - 1
        if not 0 <= index < job.params["n"] or name != self.store.result_name(job, index):
            return None
        return job, index

    async def read(self, name: str) -> bytes | None:
        """The bytes of a file, or None when there is no such file (or it is not ready)."""
        if "/" in name.strip("/") and not name.startswith("uploads/"):
            return None
        if name.startswith("uploads/"):
            path = self.store.uploads_dir / name.removeprefix("uploads/")
            if "/" in name.removeprefix("uploads/") or not path.is_file():
                return None
            return await run_in_threadpool(path.read_bytes)
        found = self.job_for(name)
        if found is None:
            return None
        job, index = found
        state, _, _ = self.store.observe(job)
        if state != "succeeded":
            return None
        path = self.store.files_dir / name
        if path.is_file():
            return await run_in_threadpool(path.read_bytes)
        return await run_in_threadpool(self._render_to_disk, job, index, path)

    def prerender(self, job: Job) -> None:
        """Render a job's results now, so they exist when it completes (as a real provider's do).

        Opt-in (``Emulator(prerender=True)``): by default results are rendered on their
        first download, which puts the emulator's rendering after "succeeded".
        """
        for index in range(job.params["n"]):
            path = self.store.files_dir / self.store.result_name(job, index)
            if not path.is_file():
                try:
                    self._render_to_disk(job, index, path)
                except (OSError, ValueError) as err:  # the first download renders it again, and reports
                    log.warning("emulator: could not prerender %s: %s", path.name, err)
                    return

    def _render_to_disk(self, job: Job, index: int, path: Any) -> bytes:
        data = render_job(self.store, job, index)
        tmp = path.with_suffix(f".{new_token(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return data

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """An input image from one of the emulator's own links (read from disk, never over the network).

        A real provider fetches input links from the internet, so it can never reach this
        machine or a private network; the emulator, running inside the app, must not either.
        It fetches nothing at all: a link to its own ``/_files/`` is read from disk; a private,
        loopback or metadata address is refused with the URL policy's reason (the same
        answer for an open port and a closed one); any other link is refused because the
        emulator never goes to the internet.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"input image URL {url!r} is not an http(s) URL")
        try:
            port = parts.port
        except ValueError:
            raise InputError(f"input image URL {url!r} has an invalid port") from None
        if self._is_own(parts.hostname, port) and parts.path.startswith("/_files/"):
            data = await self._own_file(url, parts.path.removeprefix("/_files/"))
        else:
            try:
                urlpolicy.check_literal(url)
            except urlpolicy.UrlRefused as refused:
                raise InputError(f"input image URL {url} is refused: {refused.reason}.") from None
            raise InputError(
                f"input image URL {url} is not on this machine: the emulator never fetches from the "
                "internet. Upload the file first (POST /_admin/uploads, or Emulator.upload) and pass "
                "the 127.0.0.1 URL it returns."
            )
        if len(data) > max_bytes:
            raise InputError(f"input image {url} is {len(data):,} bytes; the limit is {max_bytes:,}")
        return data

    def _is_own(self, host: str, port: int | None) -> bool:
        own = urlsplit(self.store.base_url) if self.store.base_url else None
        return own is not None and own.port == port and is_loopback(host)

    async def _own_file(self, url: str, name: str) -> bytes:
        found = self.job_for(name)
        if found is not None and found[0].expired:
            raise InputError(f"input image URL {url} has expired")
        data = await self.read(name)
        if data is None:
            raise InputError(f"input image URL {url} answered 404")
        return data

    async def fetch_inputs(self, urls: list[Any], *, max_bytes: int, field: str = "input_images") -> list[str]:
        """Fetch, check and keep input images; returns their upload names."""
        names = []
        for url in urls:
            if not isinstance(url, str) or not url:
                raise InputError("input image URLs must be non-empty strings", field=field)
            try:
                data = await self.fetch(url, max_bytes=max_bytes)
            except InputError as e:
                e.field = field
                raise
            names.append(self.keep_image(data, label=url, field=field))
        return names

    def keep_image(self, data: bytes, *, label: str, field: str = "input_images") -> str:
        try:  # sized from its header before anything decodes it
            imagegate.check(data, f"input image {label}")
        except InvalidRequest as refused:
            raise InputError(str(refused), field=field) from None
        fmt = sniff_format(data)
        if fmt not in ALLOWED_INPUT_FORMATS:
            raise InputError(f"input image {label} is not a PNG, JPEG or WebP image", field=field)
        return self.store.store_upload(data, fmt)


def render_job(store: Store, job: Job, index: int) -> bytes:
    p = job.params
    inputs = [(store.uploads_dir / name).read_bytes() for name in job.inputs]
    return images.render(
        width=p["width"],
        height=p["height"],
        fmt=p["format"],
        prompt=p["prompt"],
        index=index,
        provider=job.provider,
        model=job.model,
        quality=p.get("quality", ""),
        compression=p.get("compression"),
        transparent=bool(p.get("transparent")),
        inputs=inputs,
    )
