"""core.images.prepare: inspecting, preparing, masks, compositing, thumbnails (real images made with Pillow)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.images import prepare as ip
from providers.errors import InvalidRequest
from providers.types import ModelCaps

CAPS = ModelCaps(provider="openai", model="gpt-image-2", label="GPT Image 2", accepts_mask=True)


def caps(**changes) -> ModelCaps:
    base = {"provider": "openai", "model": "gpt-image-2", "label": "GPT Image 2", "accepts_mask": True}
    return ModelCaps(**{**base, **changes})


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt.upper(), **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def gradient(size=(300, 200), mode="RGB") -> Image.Image:
    w, h = size
    r = Image.linear_gradient("L").resize(size)
    g = Image.linear_gradient("L").rotate(90).resize(size)
    b = Image.new("L", size, 90)
    im = Image.merge("RGB", (r, g, b))
    if mode == "RGBA":
        im.putalpha(Image.new("L", size, 200))
    return im


def noise(size, mode="RGB") -> Image.Image:
    """Incompressible pixels, to make files that are big for their size."""
    rng = np.random.default_rng(7)
    channels = len(mode)
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(arr, mode)


def marked(size=(300, 200)) -> Image.Image:
    """Upright picture with a red block top-left, to check orientation handling."""
    im = Image.new("RGB", size, (0, 0, 255))
    ImageDraw.Draw(im).rectangle((0, 0, 40, 40), fill=(255, 0, 0))
    return im


def jpeg_with_orientation(upright: Image.Image, orientation: int) -> bytes:
    # Orientation 6 means "turn 90° clockwise to display", so the stored pixels are turned the other way.
    stored = upright.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "jpeg", quality=92, exif=exif.tobytes())


# --------------------------------------------------------------------------- inspect


def test_inspect_png_jpeg_webp():
    png = ip.inspect(encode(gradient(mode="RGBA"), "png"), "a.png")
    assert (png.format, png.width, png.height, png.has_alpha, png.mode) == ("png", 300, 200, True, "RGBA")
    jpg_bytes = encode(gradient(), "jpeg")
    jpg = ip.inspect(jpg_bytes, "b.jpg")
    assert (jpg.format, jpg.size, jpg.has_alpha, jpg.bytes, jpg.mime) == (
        "jpeg",
        (300, 200),
        False,
        len(jpg_bytes),
        "image/jpeg",
    )
    webp = ip.inspect(encode(gradient(mode="RGBA"), "webp"), "c.webp")
    assert (webp.format, webp.size, webp.has_alpha) == ("webp", (300, 200), True)


def test_inspect_goes_by_content_not_extension():
    info = ip.inspect(encode(gradient(), "jpeg"), "really-a-jpeg.png")
    assert info.format == "jpeg"


def test_inspect_reports_exif_orientation_and_display_size():
    info = ip.inspect(jpeg_with_orientation(marked((300, 200)), 6), "phone.jpg")
    assert info.orientation == 6
    assert info.size == (200, 300)
    assert info.display_size == (300, 200)


def test_text_file_named_png_is_refused_with_the_fix():
    with pytest.raises(InvalidRequest) as err:
        ip.inspect(b"Dear team,\nplease find the photo attached.\n" * 20, "photo.png")
    e = err.value
    assert e.field == "images" and e.value == "photo.png"
    assert "photo.png is not an image" in str(e)
    assert "looks like text" in str(e)
    assert "PNG, JPEG or WEBP" in str(e)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_truncated_images_are_refused(fmt):
    data = encode(noise((200, 150)), fmt)
    with pytest.raises(InvalidRequest) as err:
        ip.inspect(data[: len(data) * 2 // 3], f"cut.{fmt}")
    assert "cut off or damaged" in str(err.value)
    assert err.value.field == "images"


def test_empty_file_is_refused():
    with pytest.raises(InvalidRequest, match="empty"):
        ip.inspect(b"", "nothing.png")


def test_jpeg_with_trailing_data_is_not_mistaken_for_truncated():
    # Motion photos append a video after the JPEG's end marker.
    data = encode(gradient(), "jpeg") + b"ftypmp42" + os.urandom(2000)
    assert ip.inspect(data, "motion.jpg").format == "jpeg"


# --------------------------------------------------------------------------- prepare


def test_prepare_passes_acceptable_files_through_untouched():
    data = encode(gradient(), "jpeg")
    prepared = ip.prepare([("a.jpg", data)], CAPS)
    assert prepared.images[0].data is data  # not even re-read into a new buffer
    assert prepared.images[0].mime == "image/jpeg"
    assert prepared.notices == []
    assert prepared.infos[0].size == (300, 200)


def test_prepare_webp_and_png_keep_format_and_alpha():
    webp = encode(gradient(mode="RGBA"), "webp")
    png = encode(gradient(mode="RGBA"), "png")
    prepared = ip.prepare([("a.webp", webp), ("b.png", png)], CAPS)
    assert [i.mime for i in prepared.images] == ["image/webp", "image/png"]
    assert all(info.has_alpha for info in prepared.infos)


def test_prepare_turns_exif_rotated_jpeg_upright():
    upright = marked((300, 200))
    prepared = ip.prepare([("phone.jpg", jpeg_with_orientation(upright, 6))], CAPS)
    out = decode(prepared.images[0].data)
    assert out.size == (300, 200)
    assert prepared.infos[0].size == (300, 200) and prepared.infos[0].orientation == 1
    r, g, b = out.getpixel((10, 10))
    assert r > 200 and b < 60  # the red block is back in the top-left corner
    assert out.getexif().get(0x0112, 1) == 1  # no tag left to rotate it a second time
    assert any("upright" in n for n in prepared.notices)


def test_prepare_renames_a_mislabelled_file():
    prepared = ip.prepare([("photo.png", encode(gradient(), "jpeg"))], CAPS)
    assert prepared.images[0].name == "photo.jpg"
    assert prepared.images[0].mime == "image/jpeg"
    assert any("really a JPEG" in n for n in prepared.notices)


def test_prepare_refuses_formats_the_provider_does_not_take():
    png_only = caps(provider="coretoday", input_formats=("png",))
    with pytest.raises(InvalidRequest) as err:
        ip.prepare([("a.jpg", encode(gradient(), "jpeg"))], png_only)
    assert "core.today takes PNG" in str(err.value)
    assert err.value.allowed == ("png",)

    gif = encode(gradient().convert("P"), "gif")
    with pytest.raises(InvalidRequest, match="is a GIF image"):
        ip.prepare([("anim.gif", gif)], CAPS)


def test_prepare_refuses_too_many_files_naming_the_limit():
    coretoday = caps(provider="coretoday", max_input_images=16)
    data = encode(gradient((32, 32)), "png")
    with pytest.raises(InvalidRequest) as err:
        ip.prepare([(f"{i}.png", data) for i in range(17)], coretoday)
    assert "core.today takes at most 16 input images" in str(err.value)
    assert "you gave 17" in str(err.value)
    assert err.value.field == "images" and err.value.value == 17


def test_prepare_downscales_an_oversize_png_keeping_alpha():
    data = encode(noise((1500, 1000), "RGBA"), "png")  # about 6 MB of incompressible pixels
    limit = 1024 * 1024
    prepared = ip.prepare([("big.png", data)], caps(provider="evolink", max_input_bytes=limit))
    out = prepared.images[0].data
    assert len(out) <= limit
    info = ip.inspect(out, "big.png")
    assert info.format == "png" and info.has_alpha
    assert ip.MIN_USEFUL_LONG_SIDE <= info.long_side < 1500
    assert abs(info.width / info.height - 1.5) < 0.01
    assert prepared.infos[0].size == info.size
    notice = " ".join(prepared.notices)
    assert "EvoLink's 1 MB limit" in notice and "scaled down from 1500 px" in notice


def test_prepare_oversize_jpeg_tries_quality_before_size():
    data = encode(noise((800, 600)), "jpeg", quality=95)
    limit = int(len(data) * 0.85)
    prepared = ip.prepare([("a.jpg", data)], caps(max_input_bytes=limit))
    out = prepared.images[0].data
    assert len(out) <= limit
    assert decode(out).size == (800, 600)
    assert "quality" in prepared.notices[0]


def test_prepare_oversize_jpeg_scales_down_through_draft():
    data = encode(noise((2400, 1600)), "jpeg", quality=95)
    limit = len(data) // 6
    prepared = ip.prepare([("a.jpg", data)], caps(max_input_bytes=limit))
    assert len(prepared.images[0].data) <= limit
    assert ip.MIN_USEFUL_LONG_SIDE <= prepared.infos[0].long_side < 2400


@pytest.mark.parametrize(("fmt", "size"), [("png", (560, 400)), ("jpeg", (560, 400)), ("png", (400, 300))])
def test_prepare_stops_at_the_useful_minimum(fmt, size):
    data = encode(noise(size, "RGB"), fmt, **({"quality": 95} if fmt == "jpeg" else {}))
    with pytest.raises(InvalidRequest, match="takes at most 10 KB per image"):
        ip.prepare([(f"small.{fmt}", data)], caps(max_input_bytes=10 * 1024))


def test_prepare_refuses_when_only_a_useless_size_would_fit():
    data = encode(noise((1200, 800), "RGBA"), "png")
    limit = 100 * 1024
    with pytest.raises(InvalidRequest) as err:
        ip.prepare([("huge.png", data)], caps(provider="evolink", max_input_bytes=limit))
    msg = str(err.value)
    assert "huge.png" in msg and "100 KB" in msg and "EvoLink" in msg
    assert err.value.field == "images"


# --------------------------------------------------------------------------- masks


def mask_png(size, hole, *, mode="RGBA") -> bytes:
    """Opaque mask with a transparent rectangle ``hole`` (the area to edit)."""
    alpha = Image.new("L", size, 255)
    ImageDraw.Draw(alpha).rectangle(hole, fill=0)
    im = Image.new("RGB", size, (0, 0, 0))
    im.putalpha(alpha)
    return encode(im if mode == "RGBA" else im.convert(mode), "png")


def test_prepare_mask_accepts_a_valid_mask_unchanged():
    image = ip.inspect(encode(gradient(), "png"), "a.png")
    mask = mask_png((300, 200), (50, 50, 149, 149))
    out = ip.prepare_mask(mask, image, CAPS)
    assert out.data == mask and out.mime == "image/png"


def test_prepare_mask_resizes_when_only_the_size_differs():
    notices: list[str] = []
    out = ip.prepare_mask(mask_png((150, 100), (25, 25, 74, 74)), encode(gradient(), "png"), CAPS, notices=notices)
    im = decode(out.data)
    assert im.size == (300, 200) and "A" in im.getbands()
    assert im.getchannel("A").getpixel((100, 100)) == 0 and im.getchannel("A").getpixel((5, 5)) == 255
    assert any("resized to 300×200" in n for n in notices)


def test_prepare_mask_refuses_other_proportions():
    with pytest.raises(InvalidRequest, match="proportions differ"):
        ip.prepare_mask(mask_png((100, 100), (10, 10, 50, 50)), encode(gradient(), "png"), CAPS)


def test_prepare_mask_reads_black_and_white_masks_white_as_edit():
    bw = Image.new("L", (300, 200), 0)
    ImageDraw.Draw(bw).rectangle((0, 0, 99, 99), fill=255)
    notices: list[str] = []
    out = decode(ip.prepare_mask(encode(bw, "png"), encode(gradient(), "png"), CAPS, notices=notices).data)
    alpha = out.getchannel("A")
    assert alpha.getpixel((10, 10)) == 0 and alpha.getpixel((200, 150)) == 255
    assert notices and "white areas" in notices[0]


def test_prepare_mask_refuses_masks_that_edit_nothing_or_are_too_big_or_unwanted():
    image = encode(gradient(), "png")
    opaque = encode(Image.new("RGBA", (300, 200), (0, 0, 0, 255)), "png")
    with pytest.raises(InvalidRequest, match="no transparent area"):
        ip.prepare_mask(opaque, image, CAPS)
    speckled = noise((300, 200), "RGBA")
    with pytest.raises(InvalidRequest, match="takes masks up to"):
        ip.prepare_mask(encode(speckled, "png"), image, caps(mask_max_bytes=200))
    with pytest.raises(InvalidRequest, match="does not take a mask"):
        ip.prepare_mask(mask_png((300, 200), (0, 0, 9, 9)), image, caps(provider="apiframe", accepts_mask=False))


def test_mask_from_strokes_turns_painted_pixels_transparent():
    canvas = np.zeros((100, 150, 4), dtype=np.uint8)  # what a drawing canvas returns: H x W x RGBA
    canvas[20:40, 30:60] = (255, 0, 0, 255)
    data = ip.mask_from_strokes(canvas, (300, 200))
    alpha = decode(data).getchannel("A")
    assert alpha.size == (300, 200)
    assert alpha.getpixel((90, 60)) == 0  # painted (scaled x2)
    assert alpha.getpixel((250, 150)) == 255  # untouched
    assert ip.prepare_mask(data, encode(gradient(), "png"), CAPS).data == data


def test_mask_from_strokes_accepts_images_and_refuses_empty_drawings():
    drawing = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(drawing).ellipse((100, 50, 200, 150), fill=(255, 255, 255, 255))
    alpha = decode(ip.mask_from_strokes(drawing, (300, 200))).getchannel("A")
    assert alpha.getpixel((150, 100)) == 0 and alpha.getpixel((5, 5)) == 255
    with pytest.raises(InvalidRequest, match="Nothing is painted"):
        ip.mask_from_strokes(np.zeros((10, 10, 4), dtype=np.uint8), (300, 200))


def _ink(css: str) -> tuple[int, int, int, int]:
    r, g, b, a = css.removeprefix("rgba(").removesuffix(")").split(",")
    return int(r), int(g), int(b), round(float(a) * 255)


def test_an_eraser_stroke_on_top_unpaints_and_paint_over_it_paints_again():
    from core.images.mask import ERASE_COLOR, PAINT_COLOR

    drawing = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    paint = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(paint).rectangle((0, 0, 199, 199), fill=_ink(PAINT_COLOR))  # paint the left two thirds
    drawing = Image.alpha_composite(drawing, paint)
    erase = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(erase).rectangle((100, 0, 299, 199), fill=_ink(ERASE_COLOR))  # then erase the right two thirds
    drawing = Image.alpha_composite(drawing, erase)
    again = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(again).rectangle((150, 0, 174, 199), fill=_ink(PAINT_COLOR))  # and paint a strip over the eraser
    drawing = Image.alpha_composite(drawing, again)
    alpha = decode(ip.mask_from_strokes(np.asarray(drawing), (300, 200))).getchannel("A")
    assert alpha.getpixel((50, 100)) == 0  # painted only
    assert alpha.getpixel((120, 100)) == 255  # painted, then erased
    assert alpha.getpixel((160, 100)) == 0  # erased, then painted again
    assert alpha.getpixel((250, 100)) == 255  # erased where nothing was painted
    eraser_only = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(eraser_only).rectangle((0, 0, 299, 199), fill=_ink(ERASE_COLOR))
    with pytest.raises(InvalidRequest, match="Nothing is painted"):
        ip.mask_from_strokes(np.asarray(eraser_only), (300, 200))


# --------------------------------------------------------------------------- compositing


HOLE = (100, 50, 199, 149)  # 100 x 100 edit area in a 300 x 200 image


def test_composite_restores_everything_outside_the_mask():
    original = encode(gradient(), "png")
    edited_im = Image.eval(gradient(), lambda v: 255 - v)  # the model changed every pixel
    mask = mask_png((300, 200), HOLE)
    out, report = ip.composite_outside_mask(original, encode(edited_im, "png"), mask, "png")
    outside = 300 * 200 - 100 * 100
    assert report.total_outside == outside
    assert report.changed_outside == outside and report.fraction == 1.0 and not report.resized
    after = ip.mask_report(original, out, mask)
    assert after.changed_outside == 0 and after.total_outside == outside
    result = decode(out)
    assert result.getpixel((150, 100)) == edited_im.getpixel((150, 100))  # the edit itself is kept
    assert result.getpixel((5, 5)) == gradient().getpixel((5, 5))


def test_mask_report_counts_only_real_changes_outside():
    original = gradient()
    edited = original.copy()
    ImageDraw.Draw(edited).rectangle((0, 0, 9, 9), fill=(0, 255, 0))  # 100 px changed outside
    ImageDraw.Draw(edited).rectangle(HOLE, fill=(0, 0, 0))  # changes inside do not count
    slightly = Image.eval(edited, lambda v: min(255, v + 5))  # below the noise threshold everywhere
    report = ip.mask_report(encode(original, "png"), encode(slightly, "png"), mask_png((300, 200), HOLE))
    assert report.changed_outside == 100
    assert report.fraction == pytest.approx(100 / (300 * 200 - 100 * 100))


def test_composite_handles_an_edited_image_of_another_size_and_lossy_output():
    original = encode(gradient(), "png")
    edited = encode(Image.eval(gradient((600, 400)), lambda v: 255 - v), "png")
    mask = mask_png((300, 200), HOLE)
    out, report = ip.composite_outside_mask(original, edited, mask, "jpeg")
    assert report.resized and report.fraction > 0.9
    assert ip.inspect(out, "out.jpg").format == "jpeg"
    assert decode(out).size == (300, 200)
    assert ip.mask_report(original, out, mask).changed_outside == 0  # JPEG noise stays under the threshold


def test_composite_keeps_alpha_for_webp():
    original = encode(gradient(mode="RGBA"), "png")
    edited = encode(Image.eval(gradient(mode="RGBA"), lambda v: 255 - v), "png")
    out, _ = ip.composite_outside_mask(original, edited, mask_png((300, 200), HOLE), "webp")
    assert ip.inspect(out, "out.webp").has_alpha


# --------------------------------------------------------------------------- thumbnails


def test_thumbnail_is_a_small_upright_webp():
    thumb = ip.thumbnail(jpeg_with_orientation(marked((1200, 800)), 6))
    info = ip.inspect(thumb, "t.webp")
    assert info.format == "webp" and info.size == (384, 256)
    r, g, b = decode(thumb).getpixel((5, 5))
    assert r > 200 and b < 60


def test_thumbnail_never_upscales_and_keeps_alpha():
    thumb = ip.thumbnail(encode(gradient((100, 50), "RGBA"), "png"), long_side=384)
    info = ip.inspect(thumb, "t.webp")
    assert info.size == (100, 50) and info.has_alpha


def test_thumbnail_refuses_non_images():
    with pytest.raises(InvalidRequest):
        ip.thumbnail(b"not an image at all")
