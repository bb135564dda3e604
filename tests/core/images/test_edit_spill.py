"""How far a masked edit spilled (mask_report), on images built with known spills."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.images.mask import mask_report


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def scene() -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
    mask = np.full((200, 200, 4), 255, dtype=np.uint8)
    mask[:, :100, 3] = 0  # the left half is to be edited, the right half kept
    return image, png(mask)


def test_an_edit_that_stays_inside_the_mask_scores_zero(scene):
    image, mask = scene
    result = image.copy()
    result[:, :100] = 255 - result[:, :100]  # everything inside changes
    score = mask_report(png(image), png(result), mask)
    assert score.fraction == 0.0 and score.mean_change == 0.0 and score.changed_outside == 0
    assert score.total_outside == 200 * 100


def test_ten_percent_of_the_kept_area_changed_scores_ten_percent(scene):
    image, mask = scene
    result = image.copy()
    result[:, :100] = 0
    result[:20, 100:] = 255 - result[:20, 100:]  # 20 of 200 rows of the kept half: 10%
    score = mask_report(png(image), png(result), mask)
    assert score.fraction == pytest.approx(0.10, abs=0.005)
    assert 0 < score.mean_change < 0.1
    assert score.percent == 10.0


def test_jpeg_noise_is_not_counted_as_spill(scene):
    image, mask = scene
    smooth = np.zeros_like(image)
    smooth[..., 0] = np.linspace(0, 255, 200, dtype=np.uint8)[None, :]
    out = io.BytesIO()
    Image.fromarray(smooth).save(out, "JPEG", quality=90)
    assert mask_report(png(smooth), out.getvalue(), mask).fraction < 0.01


def test_a_result_of_another_size_is_compared_at_the_mask_size(scene):
    _, mask = scene
    smooth = np.zeros((200, 200, 3), dtype=np.uint8)
    smooth[..., 1] = np.linspace(0, 255, 200, dtype=np.uint8)[:, None]
    bigger = Image.fromarray(smooth).resize((400, 400), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    bigger.save(out, "PNG")
    assert mask_report(png(smooth), out.getvalue(), mask).fraction < 0.01
    painted = np.asarray(bigger).copy()
    painted[:80, 200:] = 255  # the top fifth of the kept half, at the result's own size
    out = io.BytesIO()
    Image.fromarray(painted).save(out, "PNG")
    report = mask_report(png(smooth), out.getvalue(), mask)
    assert report.resized and report.fraction == pytest.approx(0.20, abs=0.02)


def test_a_mask_that_keeps_nothing_has_nothing_to_spill_into(scene):
    image, _ = scene
    everything = np.zeros((200, 200, 4), dtype=np.uint8)  # fully transparent: edit it all
    report = mask_report(png(image), png(image), png(everything))
    assert report.total_outside == 0 and report.fraction == 0.0
