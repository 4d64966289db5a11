"""images.py: reading any common picture as RGB, refusing unusable files clearly, atomic writes, tensors."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import threading
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, PngImagePlugin

from conftest import chelsea
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from write_limits import run_jobs, small_disk_problem


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


@pytest.mark.parametrize(
    "kind, says",
    [
        ("empty", "empty"),
        ("text", "not a picture"),
        ("truncated", "damaged or truncated"),
        ("bomb", "decompression bomb"),
    ],
)
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


# --- pipes, float pictures, every mode, animations -------------------------------------------------------------


def feed(path, data: bytes) -> threading.Thread:
    """Write `data` into a FIFO or pipe from another thread (opening a FIFO blocks until its reader opens it)."""

    def send():
        with open(path, "wb") as pipe:
            pipe.write(data)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_read_whole(tmp_path, photo):
    """A FIFO's (or /dev/stdin's) st_size is 0: it used to be called empty."""
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    fifo = tmp_path / "picture.fifo"
    os.mkfifo(fifo)
    feed(fifo, buffer.getvalue())
    img = images.load_image(fifo)
    assert img.size == photo.size and (rgb_array(img) == np.asarray(photo)).all()


def test_a_pipe_is_read_whole_and_an_empty_one_is_empty(tmp_path, photo):
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    read_end, write_end = os.pipe()  # as a shell pipe into /dev/stdin is, read through /dev/fd/N
    try:
        feed(write_end, buffer.getvalue()).join()
        assert images.load_image(f"/dev/fd/{read_end}").size == photo.size
    finally:
        os.close(read_end)
    fifo = tmp_path / "empty.fifo"
    os.mkfifo(fifo)
    feed(fifo, b"")
    with pytest.raises(DreamscopeError, match="empty.fifo is empty: nothing came through it"):
        images.load_image(fifo)


def test_a_pipe_sending_too_much_is_refused(tmp_path, photo, monkeypatch):
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    monkeypatch.setattr(images, "MAX_STREAM_BYTES", 1000)  # the cap itself (512 MiB) is too large to feed a test
    fifo = tmp_path / "big.fifo"
    os.mkfifo(fifo)
    feed(fifo, buffer.getvalue()[:5000])  # fits a pipe's buffer, so the writer never blocks on the refusal
    with pytest.raises(DreamscopeError, match="sends more than 0 MiB; save the picture to a file"):
        images.load_image(fifo)


def float_tiff(path, array) -> None:
    Image.fromarray(np.asarray(array, np.float32), "F").save(path)
    with Image.open(path) as raw:
        assert raw.mode == "F"  # really a 32-bit float TIFF


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_tiff_in_0_1_or_0_255_keeps_its_tones(tmp_path, scale):
    """A float picture in [0, 1] used to come out black."""
    ramp = np.tile(np.linspace(0.0, 1.0, 64), (8, 1))
    float_tiff(tmp_path / "f.tif", ramp * scale)
    out = rgb_array(images.load_image(tmp_path / "f.tif"))[..., 0]
    assert np.abs(out - ramp * 255).max() <= 0.5 + 1e-6


@pytest.mark.parametrize(
    "values, says",
    [
        ([-0.5, 0.5], "floating-point values from -0.5 to 0.5"),
        ([0.0, 300.0], "floating-point values from 0 to 300"),
        ([0.2, np.nan], "floating-point values from 0.2 to 0.2 and NaN or infinite ones"),
        ([np.inf, np.nan], "only NaN or infinite values"),
    ],
)
def test_float_tiff_out_of_range_is_refused(tmp_path, values, says):
    float_tiff(tmp_path / "hdr.tif", np.tile(np.array(values), (4, 2)))
    with pytest.raises(
        DreamscopeError, match=f"hdr.tif holds {re.escape(says)}, outside 0-1 and 0-255; convert it to 8 or 16 bits"
    ):
        images.load_image(tmp_path / "hdr.tif")


RED_BLUE = np.concatenate([np.full((8, 16, 3), (255, 0, 0), np.uint8), np.full((8, 16, 3), (0, 0, 255), np.uint8)], axis=1)


def save_mode(path, mode: str) -> None:
    """The red and blue halves (or a grey ramp for grey modes) saved in `mode`, as Pillow writes it."""
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (8, 1))
    if mode in ("I;16", "I;16B"):
        Image.frombytes(mode, (32, 8), ramp.astype("<u2" if mode == "I;16" else ">u2").tobytes()).save(path)
    elif mode == "1":
        Image.fromarray((ramp > 32767).astype(np.uint8) * 255).convert("1").save(path)
    elif mode == "LA":
        grey = np.stack([(ramp >> 8).astype(np.uint8), np.full((8, 32), 255, np.uint8)], axis=-1)
        grey[:, :16, 1] = 0  # the left half transparent
        Image.fromarray(grey, "LA").save(path)
    else:
        Image.fromarray(RED_BLUE).convert(mode).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))


@pytest.mark.parametrize(
    "name, mode",
    [
        ("i16.tif", "I;16"),
        ("i16b.tif", "I;16B"),
        ("bits.png", "1"),
        ("bits.tif", "1"),
        ("grey_alpha.png", "LA"),
        ("cmyk.jpg", "CMYK"),
        ("cmyk.tif", "CMYK"),
        ("ycbcr.jpg", "YCbCr"),
        ("ycbcr.tif", "YCbCr"),
        ("lab.tif", "LAB"),
    ],
)
def test_every_mode_reads_with_its_tones(tmp_path, name, mode):
    save_mode(tmp_path / name, mode)
    with Image.open(tmp_path / name) as raw:
        stored = raw.mode
    out = rgb_array(images.load_image(tmp_path / name))
    assert out.shape == (8, 32, 3)
    if mode in ("I;16", "I;16B"):
        assert stored == mode and out[0, 0].tolist() == [0] * 3 and out[0, -1].tolist() == [255] * 3
        assert abs(out[0, 16, 0] - 16 / 31 * 255) <= 1  # scaled from 16 bits, not clipped at 255
    elif mode == "1":
        assert (out[:, :16] == 0).all() and (out[:, 16:] == 255).all()
    elif mode == "LA":
        assert (out[:, :16] == 255).all() and abs(out[0, 20, 0] - 20 / 31 * 255) <= 1  # transparent: white
    else:
        tolerance = 24 if mode == "LAB" else 12  # Pillow's own conversions to and from Lab are approximate
        assert np.abs(out[:, :12] - [255, 0, 0]).max() <= tolerance and np.abs(out[:, 20:] - [0, 0, 255]).max() <= tolerance, (
            stored
        )


def test_png_text_named_like_pillow_data_still_loads(tmp_path):
    """Pillow files text chunks beside its own data: one named "transparency" or "exif" used to break loading."""
    text = PngImagePlugin.PngInfo()
    for key in ("transparency", "icc_profile", "exif", "xmp", "dpi"):
        text.add_text(key, "not what Pillow expects")
    for mode in ("RGB", "P", "L"):
        Image.new(mode, (8, 6)).save(tmp_path / "t.png", pnginfo=text)
        img = images.load_image(tmp_path / "t.png")
        images.save_image(img, tmp_path / "again.png")
        assert img.size == (8, 6) and images.load_image(tmp_path / "again.png").size == (8, 6)


def animation(path, frames: int = 5, **options) -> None:
    pictures = [Image.fromarray(np.full((12, 20, 3), (40 * i, 200 - 40 * i, 90), np.uint8)) for i in range(frames)]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0, **options)


@pytest.mark.parametrize("name", ["anim.gif", "anim.webp", "anim.png"])
def test_animations_give_their_first_frame_and_count(tmp_path, name):
    animation(tmp_path / name)
    img = images.load_image(tmp_path / name)
    assert img.info["n_frames"] == 5 and img.size == (20, 12)
    assert np.abs(rgb_array(img)[5, 5] - [0, 200, 90]).max() <= 3


def test_stills_and_multi_picture_files_count_one_frame(tmp_path, photo_path):
    assert images.load_image(photo_path).info["n_frames"] == 1
    animation(tmp_path / "one.gif", frames=1)
    assert images.load_image(tmp_path / "one.gif").info["n_frames"] == 1
    # a phone's MPO (a photo with its depth or gain map) and a multi-page TIFF are not animations
    Image.fromarray(RED_BLUE).save(tmp_path / "photo.mpo", format="MPO", save_all=True, append_images=[Image.new("RGB", (32, 8))])
    Image.fromarray(RED_BLUE).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.new("RGB", (32, 8))])
    for name in ("photo.mpo", "pages.tif"):
        with Image.open(tmp_path / name) as raw:
            assert raw.n_frames == 2
        assert images.load_image(tmp_path / name).info["n_frames"] == 1


def test_a_cut_animation_still_gives_its_first_frame(tmp_path):
    """Pillow raises IndexError counting the frames of a GIF cut short; the first frame is whole."""
    animation(tmp_path / "anim.gif")
    data = (tmp_path / "anim.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 2 // 3])
    img = images.load_image(tmp_path / "cut.gif")
    assert 1 <= img.info["n_frames"] < 5 and np.abs(rgb_array(img)[5, 5] - [0, 200, 90]).max() <= 3


ODD_NAMES = [b"caf\xe9.png", b"-leading dash.png", b"with  spaces .png", b"12:30 colon.png"]


@pytest.mark.parametrize("raw_name", ODD_NAMES)
def test_odd_file_names(tmp_path, photo, raw_name):
    path = tmp_path / os.fsdecode(raw_name)  # a name that is not UTF-8 holds a lone surrogate ("\udce9")
    images.save_image(photo, path, metadata={"source": str(path)})
    assert os.fsencode(tmp_path) + b"/" + raw_name in [os.fsencode(p) for p in tmp_path.iterdir()]
    assert images.load_image(path).size == photo.size
    assert images.read_metadata(path) == {"source": str(path).replace("\udce9", "\ufffd")}


# --- writing -------------------------------------------------------------------------------------------------


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize(
    "name, fmt",
    [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.jpeg", "JPEG"), ("a.webp", "WEBP"), ("a.bmp", "BMP"), ("a.tif", "TIFF")],
)
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


def failing_save(monkeypatch, error=OSError("disk full")):  # noqa: B008 - one error, raised each time: the same object is fine
    """Make PIL write some bytes and then fail, as a full disk would."""

    def save(self, fp, format=None, **params):
        fp.write(b"\x89PNG partial data")
        raise error

    monkeypatch.setattr(Image.Image, "save", save)


def test_failed_save_leaves_nothing(tmp_path, photo, monkeypatch):
    failing_save(monkeypatch)  # an error without an errno; the real ones are in test_write_errors_are_one_line
    with pytest.raises(DreamscopeError, match="cannot write .*out.png: disk full; check the disk, or write elsewhere"):
        images.save_image(photo, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


WRITTEN = ["a.png", "a.jpg", "a.webp", "a.tif", "a.bmp", "kept.png"]


@pytest.fixture(scope="module")
def write_failures(tmp_path_factory):
    """Real failures, run in one child process: each picture of WRITTEN in a folder where files may not grow past
    4 KB (EFBIG, as on a full disk) and, where this machine allows it, onto a 64 KB RAM disk (ENOSPC)."""
    folder = tmp_path_factory.mktemp("failures")
    source = folder / "photo.png"
    chelsea((400, 300)).save(source)  # a 200 KB PNG: too much for either
    out = folder / "out"
    out.mkdir()
    (out / "kept.png").write_bytes(b"the previous result")
    jobs = {name: (4096, ["save", str(out / name), str(source), {"k": "v" * 100}]) for name in WRITTEN}
    disk = folder / "disk"
    problem = small_disk_problem(disk)
    if problem is None:
        jobs["full"] = (None, ["save", str(disk / "a.png"), str(source)])
    return run_jobs(jobs, small_disk=None if problem else (disk, 65536)), out, disk, problem


def test_write_errors_are_one_line_and_leave_nothing(write_failures):
    """Pillow's encoders used to take the short last write for success, leaving a cut file (a JPEG or BMP) that
    looked complete."""
    results, out, _, _ = write_failures
    for name in WRITTEN:
        error, message, left = results[name]
        assert (
            error == "DreamscopeError"
            and message == f"cannot write {out / name}: file too large; write elsewhere, or raise the file size limit (ulimit -f)"
        ), (name, message)
        assert left == ["kept.png"]
    assert (out / "kept.png").read_bytes() == b"the previous result"


def test_a_full_disk_is_one_line_and_leaves_nothing(write_failures):
    results, _, disk, problem = write_failures
    if problem:
        pytest.skip(problem)
    error, message, left = results["full"]
    assert error == "DreamscopeError"
    assert message == f"cannot write {disk / 'a.png'}: no space left on device; free some space or write elsewhere"
    assert left == []


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


@pytest.mark.parametrize(
    "name, says",
    [
        ("out.xyz", "cannot write '.xyz'"),
        ("noext", "cannot write 'noext'"),
        ("missing/out.png", "output folder does not exist"),
        ("file.txt/out.png", "not a folder"),
        ("file.txt/sub/out.png", "file.txt/sub is not a folder: .*file.txt is a file"),
        ("adir", "output path is a folder"),
        ("adir.png", "output path is a folder"),
    ],
)
def test_check_output_path_refuses(tmp_path, name, says):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.png").mkdir()
    with pytest.raises(DreamscopeError, match=says):
        images.check_output_path(tmp_path / name)


def test_check_output_path_accepts_a_bare_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert images.check_output_path("out.png") == images.Path("out.png")


# --- metadata ------------------------------------------------------------------------------------------------

RECORD = json.dumps({"settings": {"layer": "stage5.2", "notes": "x" * 30_000}, "input": "caf\udce9.png"})
METADATA = {"dreamscope": RECORD, "Comment": "é, 日本, 🌀, a NUL \x00 and a lone \udcff", "frame": "7"}


@pytest.mark.parametrize("name", ["m.png", "m.jpg", "m.webp", "m.tif"])
def test_metadata_round_trips_and_is_deterministic(tmp_path, photo, name):
    first = images.save_image(photo, tmp_path / name, metadata=METADATA)
    data = first.read_bytes()
    reordered = dict(reversed(list(METADATA.items())))
    assert images.save_image(photo, tmp_path / f"again_{name}", metadata=reordered).read_bytes() == data  # no time stamps
    back = images.read_metadata(first)
    assert back == {**METADATA, "Comment": "é, 日本, 🌀, a NUL \x00 and a lone \ufffd"}
    assert json.loads(back["dreamscope"])["input"] == "caf\udce9.png"  # escaped in JSON, it survives exactly
    assert images.load_image(first).size == photo.size


def test_png_metadata_is_one_itxt_chunk_per_pair(tmp_path, photo):
    out = images.save_image(photo, tmp_path / "m.png", metadata=METADATA)
    chunks, data, at = [], out.read_bytes(), 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunks.append((kind, data[at + 8 : at + 8 + length]))
        at += 12 + length
    texts = {body.split(b"\0", 1)[0]: body.split(b"\0", 1)[1][0] for kind, body in chunks if kind == b"iTXt"}
    assert texts == {b"Comment": 0, b"dreamscope": 1, b"frame": 0}  # compressed when long
    assert not any(kind in (b"tEXt", b"zTXt", b"tIME") for kind, _ in chunks)


def test_jpeg_metadata_over_64_kb_goes_to_extended_xmp(tmp_path, photo):
    """A JPEG segment holds 64 KB; more is split as the XMP standard says, and a damaged piece gives {}."""
    big = {"dreamscope": json.dumps({"notes": "日本" * 40_000})}  # 480 KB as ASCII JSON
    out = images.save_image(photo, tmp_path / "big.jpg", metadata=big)
    assert out.read_bytes().count(b"http://ns.adobe.com/xmp/extension/\0") > 7
    assert images.read_metadata(out) == big
    data = bytearray(out.read_bytes())
    data[data.rindex(b"\\u65e5")] ^= 1  # one bit in the last piece
    (tmp_path / "damaged.jpg").write_bytes(data)
    assert images.read_metadata(tmp_path / "damaged.jpg") == {}


def test_no_metadata(tmp_path, photo):
    assert (
        images.save_image(photo, tmp_path / "m.bmp", metadata=METADATA).read_bytes()
        == images.save_image(photo, tmp_path / "plain.bmp").read_bytes()
    )  # BMP has nowhere to put it
    assert images.read_metadata(tmp_path / "m.bmp") == {}
    for name in ("plain.png", "plain.jpg", "plain.webp", "plain.tif"):
        assert images.read_metadata(images.save_image(photo, tmp_path / name)) == {}
    Image.new("RGB", (8, 8)).save(tmp_path / "theirs.jpg", comment=b"not ours")
    assert images.read_metadata(tmp_path / "theirs.jpg") == {}


@pytest.mark.parametrize(
    "metadata, says",
    [
        ({"": "v"}, "metadata key '' cannot be written"),
        ({" lead": "v"}, "metadata key ' lead'"),
        ({"two  spaces": "v"}, "metadata key 'two  spaces'"),
        ({"k" * 80: "v"}, "use 1 to 79 Latin-1"),
        ({"日本": "v"}, "metadata key '日本'"),
        ({"k": 3}, "metadata value of 'k' must be text, not int"),
    ],
)
def test_metadata_that_no_format_can_hold_is_refused_up_front(tmp_path, photo, metadata, says):
    with pytest.raises(DreamscopeError, match=re.escape(says)):
        images.save_image(photo, tmp_path / "m.png", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


# --- tensors and sizes ---------------------------------------------------------------------------------------


def test_tensor_round_trip_is_exact():
    array = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    x = images.to_tensor(Image.fromarray(array))
    assert x.shape == (1, 3, 17, 23) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert (np.asarray(images.to_pil(x)) == array).all()


def test_to_pil_clamps_out_of_range():
    x = torch.tensor([-0.5, 0.5, 1.5]).view(1, 3, 1, 1)
    assert np.asarray(images.to_pil(x)).tolist() == [[[0, 128, 255]]]


@pytest.mark.parametrize(
    "size, max_size, expected",
    [
        ((160, 120), 80, (80, 60)),
        ((120, 160), 80, (60, 80)),
        ((1000, 3), 100, (100, 1)),  # never a zero-pixel side
        ((160, 120), 160, (160, 120)),
        ((160, 120), 1000, (160, 120)),  # never upscales
        ((160, 120), None, (160, 120)),
    ],
)
def test_limit_size(size, max_size, expected):
    img = Image.new("RGB", size)
    out = images.limit_size(img, max_size)
    assert out.size == expected
    if expected == size:
        assert out is img
