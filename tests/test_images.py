"""images.py: reading any common picture as RGB, refusing unusable files clearly, atomic writes, tensors."""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from dreamscope import images
from dreamscope.errors import DreamscopeError


def rgb_array(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


# --- reading -------------------------------------------------------------------------------------------------


def test_load_photo(photo_path):
    img = images.load_image(photo_path)
    assert img.mode == "RGB" and img.size == (160, 120)


def test_rgba_becomes_rgb_on_white(tmp_path):
    array = np.zeros((20, 30, 4), np.uint8)
    array[..., 0] = 200  # red everywhere, opaque on the left half, transparent on the right
    array[:, :15, 3] = 255
    Image.fromarray(array, "RGBA").save(tmp_path / "a.png")
    out = rgb_array(images.load_image(tmp_path / "a.png"))
    assert out.shape == (20, 30, 3)
    assert (out[:, :15] == [200, 0, 0]).all()
    assert (out[:, 15:] == 255).all()


def test_grayscale_becomes_rgb(tmp_path):
    array = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    Image.fromarray(array, "L").save(tmp_path / "g.png")
    out = rgb_array(images.load_image(tmp_path / "g.png"))
    assert out.shape == (8, 25, 3)
    assert (out == array[..., None]).all()


@pytest.mark.parametrize("value", [0, 1000, 32768, 65535])
def test_16_bit_grayscale_keeps_its_tones(tmp_path, value):
    """Scaled from the 16-bit range, not stretched to its own maximum: mid-grey stays mid-grey."""
    array = np.full((12, 16), value, np.uint16)
    array[0, 0] = 0
    Image.fromarray(array).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode.startswith("I")  # really read as 16-bit
    out = rgb_array(images.load_image(tmp_path / "g16.png"))
    assert out.shape == (12, 16, 3)
    assert out[5, 5].tolist() == [round(value / 65535 * 255)] * 3
    assert out[0, 0].tolist() == [0, 0, 0]


def test_16_bit_grayscale_gradient(tmp_path):
    array = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (4, 1))
    Image.fromarray(array).save(tmp_path / "ramp.png")
    out = rgb_array(images.load_image(tmp_path / "ramp.png"))[..., 0]
    assert out[0, 0] == 0 and out[0, -1] == 255 and (np.diff(out[0]) >= 0).all()


def test_palette_png_becomes_rgb(tmp_path):
    img = Image.new("P", (10, 6))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (5, 0, 10, 6))
    img.save(tmp_path / "p.png")
    out = rgb_array(images.load_image(tmp_path / "p.png"))
    assert out.shape == (6, 10, 3)
    assert (out[:, :5] == [255, 0, 0]).all() and (out[:, 5:] == [0, 0, 255]).all()


def test_palette_png_with_transparency_becomes_white(tmp_path):
    img = Image.new("P", (10, 6))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (5, 0, 10, 6))
    img.save(tmp_path / "pt.png", transparency=1)
    out = rgb_array(images.load_image(tmp_path / "pt.png"))
    assert (out[:, :5] == [255, 0, 0]).all() and (out[:, 5:] == 255).all()


def jpeg_with_orientation(path, orientation: int, exif_extra: bytes = b""):
    """A 64x32 JPEG, red on the left half and blue on the right, with an EXIF Orientation tag."""
    array = np.zeros((32, 64, 3), np.uint8)
    array[:, :32] = [255, 0, 0]
    array[:, 32:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, exif=exif_extra or exif.tobytes(), quality=95)


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    jpeg_with_orientation(tmp_path / "r.jpg", 6)  # 6: turn 90 degrees clockwise to display
    with Image.open(tmp_path / "r.jpg") as raw:
        assert raw.size == (64, 32)
    img = images.load_image(tmp_path / "r.jpg")
    assert img.size == (32, 64)
    out = rgb_array(img)
    assert out[8, 16, 0] > 200 and out[8, 16, 2] < 50  # the left (red) half is now on top
    assert out[56, 16, 2] > 200 and out[56, 16, 0] < 50


def test_corrupt_exif_is_no_warning_on_stderr(tmp_path):
    """Pillow warns about damaged metadata; that must not reach the user's terminal as stray lines."""
    entries = struct.pack(">HHII", 0x010E, 2, 100, 0x1000) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 2) + entries + b"\x00\x00\x00\x00"
    jpeg_with_orientation(tmp_path / "bad_exif.jpg", 6, exif_extra=b"Exif\x00\x00" + tiff)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = images.load_image(tmp_path / "bad_exif.jpg")
    assert img.size == (32, 64)  # the readable orientation tag is still honoured


@pytest.mark.parametrize("kind, says", [
    ("empty", "empty"), ("text", "not a picture"), ("truncated", "damaged or truncated"), ("bomb", "decompression bomb"),
])
def test_unusable_pictures_are_refused(bad_pictures, kind, says):
    with pytest.raises(DreamscopeError, match=says) as info:
        images.load_image(bad_pictures[kind])
    assert "\n" not in str(info.value)


def test_missing_and_folder_inputs_are_refused(tmp_path):
    with pytest.raises(DreamscopeError, match="guide image file not found"):
        images.load_image(tmp_path / "nope.png", what="guide image")
    with pytest.raises(DreamscopeError, match="is a folder"):
        images.load_image(tmp_path)


def test_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("RGB", (100, 50)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 4999)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded a picture over the limit"))
    with pytest.raises(DreamscopeError, match="100x50 pixels"):
        images.load_image(tmp_path / "big.png")


def test_pixel_limit_is_the_one_enforced(tmp_path, monkeypatch):
    """Pillow's own warning threshold (about 89 MP) must not refuse pictures under MAX_PIXELS."""
    Image.new("RGB", (100, 50)).save(tmp_path / "ok.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # warns above 4000, errors above 8000
    assert images.load_image(tmp_path / "ok.png").size == (100, 50)


def test_unreadable_file_says_permission(tmp_path, monkeypatch, photo_path):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(DreamscopeError, match="permission denied"):
        images.load_image(photo_path)


# --- writing -------------------------------------------------------------------------------------------------


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("name, fmt", [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.jpeg", "JPEG"), ("a.webp", "WEBP"), ("a.bmp", "BMP"), ("a.tif", "TIFF")])
def test_save_image_format_follows_extension(tmp_path, photo, name, fmt):
    out = images.save_image(photo, tmp_path / name)
    with Image.open(out) as img:
        assert img.format == fmt and img.size == photo.size
    assert leftovers(tmp_path) == []


def test_save_image_is_readable_like_any_new_file(tmp_path, photo):
    umask = os.umask(0o022)
    try:
        out = images.save_image(photo, tmp_path / "a.png")
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644  # not the 0600 of a bare temporary file


def failing_save(monkeypatch, error=OSError("disk full")):
    """Make PIL write some bytes and then fail, as a full disk would."""

    def save(self, fp, format=None, **params):
        fp.write(b"\x89PNG partial data")
        raise error

    monkeypatch.setattr(Image.Image, "save", save)


def test_failed_save_leaves_nothing(tmp_path, photo, monkeypatch):
    failing_save(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        images.save_image(photo, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_existing_file(tmp_path, photo, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"the previous result")
    failing_save(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        images.save_image(photo, target)
    assert target.read_bytes() == b"the previous result"
    assert leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_replaces_an_existing_file(tmp_path, photo):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    images.save_image(photo, target)
    assert images.load_image(target).size == photo.size


@pytest.mark.parametrize("name, says", [
    ("out.xyz", "cannot write '.xyz'"),
    ("noext", "cannot write 'noext'"),
    ("missing/out.png", "output folder does not exist"),
    ("file.txt/out.png", "not a folder"),
    ("adir", "output path is a folder"),
    ("adir.png", "output path is a folder"),
])
def test_check_output_path_refuses(tmp_path, name, says):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.png").mkdir()
    with pytest.raises(DreamscopeError, match=says):
        images.check_output_path(tmp_path / name)


def test_check_output_path_accepts_a_bare_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert images.check_output_path("out.png") == images.Path("out.png")


# --- tensors and sizes ---------------------------------------------------------------------------------------


def test_tensor_round_trip_is_exact():
    array = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    x = images.to_tensor(Image.fromarray(array))
    assert x.shape == (1, 3, 17, 23) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert (np.asarray(images.to_pil(x)) == array).all()


def test_to_pil_clamps_out_of_range():
    x = torch.tensor([-0.5, 0.5, 1.5]).view(1, 3, 1, 1)
    assert np.asarray(images.to_pil(x)).tolist() == [[[0, 128, 255]]]


@pytest.mark.parametrize("size, max_size, expected", [
    ((160, 120), 80, (80, 60)),
    ((120, 160), 80, (60, 80)),
    ((1000, 3), 100, (100, 1)),  # never a zero-pixel side
    ((160, 120), 160, (160, 120)),
    ((160, 120), 1000, (160, 120)),  # never upscales
    ((160, 120), None, (160, 120)),
])
def test_limit_size(size, max_size, expected):
    img = Image.new("RGB", size)
    out = images.limit_size(img, max_size)
    assert out.size == expected
    if expected == size:
        assert out is img
