"""Image files by content hash: atomic writes, one copy per content, one thumbnail made once."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest
from core_fakes import png_bytes
from PIL import Image

from core.history import files
from core.history.files import FileStore, atomic_write


def test_put_lays_out_by_hash_and_reads_the_real_format(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    img = Image.new("RGB", (300, 200), (10, 200, 30))
    out = io.BytesIO()
    img.save(out, format="JPEG")
    data = out.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    info = store.put(data, claimed_format="png")  # the bytes win over what was claimed
    assert info.sha256 == sha and info.format == "jpeg" and (info.width, info.height) == (300, 200)
    assert info.path == f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert (tmp_path / info.path).read_bytes() == data and info.bytes == len(data)
    assert store.find(sha) == tmp_path / info.path and store.read(sha) == data


def test_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    data = png_bytes("dedup")
    first = store.put(data)
    path = tmp_path / first.path
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    threads = [threading.Thread(target=store.put, args=(data,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.put(data) == first
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # never rewritten
    assert len(list((tmp_path / "images").rglob("*.*"))) == 1
    assert len(list((tmp_path / "thumbs").rglob("*.*"))) == 1


def test_thumbnail_is_webp_384_long_side_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)
    calls = []
    real = files.make_thumbnail

    def counting(data: bytes, long_side: int = files.THUMB_LONG_SIDE) -> bytes:
        calls.append(1)
        return real(data, long_side)

    monkeypatch.setattr(files, "make_thumbnail", counting)
    wide = png_bytes("wide", (1536, 1024))
    info = store.put(wide)
    assert info.thumb_path == f"thumbs/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}.webp"
    with Image.open(tmp_path / info.thumb_path) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (384, 256)
    store.put(wide)
    assert store.thumbnail(info.sha256) == info.thumb_path
    assert len(calls) == 1

    tall = Image.new("RGBA", (512, 1024), (0, 0, 0, 0))
    out = io.BytesIO()
    tall.save(out, format="PNG")
    info = store.put(out.getvalue())
    with Image.open(tmp_path / info.thumb_path) as thumb:
        assert thumb.size == (192, 384) and thumb.mode == "RGBA"  # transparency kept

    small = store.put(png_bytes("small", (100, 50)))
    with Image.open(tmp_path / small.thumb_path) as thumb:
        assert thumb.size == (100, 50)  # never enlarged


def test_thumbnail_remade_from_the_stored_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    info = store.put(png_bytes("later"), thumbnail=False)
    assert info.thumb_path is None and not (tmp_path / "thumbs").exists()
    assert store.thumbnail(info.sha256) is not None
    assert store.thumbnail("0" * 64) is None


def test_unreadable_bytes_are_kept_without_a_thumbnail(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    info = store.put(b"not an image at all", claimed_format="webp")
    assert (info.format, info.width, info.height, info.thumb_path) == ("webp", None, None, None)
    assert (tmp_path / info.path).read_bytes() == b"not an image at all"


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "images" / "ab" / "cd" / "x.png"

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"half")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_delete_removes_image_and_thumbnail(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    info = store.put(png_bytes("gone"))
    store.delete(info.sha256)
    assert store.find(info.sha256) is None and not (tmp_path / info.thumb_path).exists()
