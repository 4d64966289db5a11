"""Uploads: a file received as it streams (counted against the limit as it arrives), identified by its content
alone (Pillow for pictures, PyAV for videos; never the client's name or content type), checked the way the
command line checks its inputs (decompression bombs, damaged or truncated files, every frame of a video), and
stored under a name the server makes up.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DreamscopeError
from ..fields import excerpt
from ..io import files, images, videos
from .store import UploadRow

MB = 1_000_000
GB = 1_000_000_000
# Pillow formats taken as pictures, and the suffix they are stored with. Others (EPS, which runs Ghostscript;
# ICO, PSD, ...) are refused before any decoding.
PICTURE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
# FFmpeg demuxers taken as videos (a narrow set: FFmpeg reads many formats nobody uploads on purpose).
VIDEO_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2": ".mp4", "matroska,webm": ".mkv", "avi": ".avi", "gif": ".gif", "apng": ".png"}
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
}
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
MULTIPART_SLACK = 64 * 1024  # bytes of a multipart body that are not the file: boundaries, headers, other fields
TEMP_PREFIX = ".upload-"


@dataclass(frozen=True)
class Limits:
    """The largest upload, in bytes, of each kind."""

    picture: int = 50 * MB
    video: int = 500 * MB
    pixels: int = 50_000_000  # a picture's size, told by its header before it is decoded (a 50 MP photo is ~150 MB decoded)

    @classmethod
    def from_mb(cls, mb: float | None) -> Limits:
        """`--max-upload-mb N`: N for pictures and videos alike; None: the defaults."""
        return cls() if mb is None else cls(int(mb * MB), int(mb * MB))

    @property
    def largest(self) -> int:
        return max(self.picture, self.video)

    def to_json(self) -> dict[str, int]:
        return {"picture_bytes": self.picture, "video_bytes": self.video, "picture_pixels": self.pixels}


# Uploads decoded at once to check them (pictures, videos, animations): each may take a few hundred MB while it
# is, so uploads arriving together wait their turn rather than multiply the server's memory.
DECODING = threading.BoundedSemaphore(2)


class UploadTooLarge(DreamscopeError):
    """Answered with 413."""


class UploadRefused(DreamscopeError):
    """Not a picture or video dreamscope can use: answered with 422 naming the field `file`."""


class StorageFailed(DreamscopeError):
    """The server could not store an upload (a full disk): answered with 507."""


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the file is larger than the {_mb(limit)} limit; send a smaller one (dreamscope studio --max-upload-mb raises the limit)"
    )


def _mb(size: int) -> str:
    return f"{size / MB:g} MB"


def shown_name(name: str | None) -> str:
    """The client's file name, for display only: its last path part, printable, at most 120 characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:120] or "upload"


# -- receiving ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: Path  # the temporary file, in the uploads folder
    name: str  # the client's name, shown
    size: int


async def receive(body: AsyncIterator[bytes], content_type: str | None, folder: Path, limit: int) -> Received:
    """Stream a multipart/form-data body's field `file` into a temporary file in `folder`, refusing it as soon
    as it passes `limit` bytes. Writes go through a thread, so the event loop never waits on the disk."""
    from anyio import to_thread
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused("send the file as multipart/form-data, in a field named file")
    if len(boundary) > 70:  # RFC 2046's limit; the parser itself fails (a 500) on more than 256
        raise UploadRefused("the multipart boundary is longer than 70 characters; send a standard multipart/form-data body")

    state = {"headers": {}, "field": b"", "value": b"", "writing": False, "done": False, "name": None, "size": 0}
    pending = bytearray()
    path = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}.part"
    handle = None

    def on_part_begin():
        state.update(headers={}, field=b"", value=b"")

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].strip().lower()] = state["value"].strip()
        state.update(field=b"", value=b"")

    def on_headers_finished():
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["writing"] = disposition.get(b"name") == b"file" and not state["done"]
        if state["writing"]:
            state["name"] = disposition.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(data, start, end):
        if state["writing"]:
            state["size"] += end - start
            if state["size"] > limit:
                raise too_large(limit)
            pending.extend(data[start:end])

    def on_part_end():
        if state["writing"]:
            state.update(writing=False, done=True)

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    total = 0
    try:
        handle = await to_thread.run_sync(lambda: open(path, "xb"))  # noqa: SIM115 - closed in the finally below, across awaits
        async for chunk in body:
            total += len(chunk)
            if total > limit + MULTIPART_SLACK:
                raise too_large(limit)
            try:
                parser.write(chunk)
            except DreamscopeError:
                raise
            except Exception as exc:
                raise UploadRefused(f"the multipart body is malformed ({exc}); send the file in a field named file") from None
            if pending:
                data = bytes(pending)
                pending.clear()
                await to_thread.run_sync(handle.write, data)
        try:
            parser.finalize()
        except Exception:
            pass
        await to_thread.run_sync(handle.close)
        if not state["done"]:
            raise UploadRefused("no file came: send it in a multipart/form-data field named file")
        if state["size"] == 0:
            raise UploadRefused("the file is empty; send a picture (PNG, JPEG, WebP) or a video (MP4, MOV, MKV, WebM, GIF)")
    except BaseException as exc:
        if handle is not None:
            handle.close()
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageFailed(f"cannot store the upload ({files.reason(exc)}); free some disk space") from None
        raise
    return Received(path, shown_name(state["name"]), state["size"])


# -- identifying and checking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sniffed:
    kind: str  # picture or video
    suffix: str
    width: int
    height: int
    frames: int
    still: bool  # readable as one picture (an animated GIF is a video and a picture)


def inspect(path: Path, name: str, limits: Limits) -> Sniffed:
    """What the file at `path` is, from its bytes; fully decoded once, so a damaged file is refused now. Errors
    name the file by `name` (the client's), never by its temporary path. Slow for a long video: call it from a
    thread."""
    try:
        return _inspect(path, limits)
    except DreamscopeError as exc:
        text = str(exc).replace(str(path), name)
        raise type(exc)(text) if isinstance(exc, (UploadTooLarge, UploadRefused)) else UploadRefused(text) from None


def _inspect(path: Path, limits: Limits) -> Sniffed:
    from PIL import Image

    size = path.stat().st_size
    picture_format, bomb = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:  # reads the header only
                picture_format, (width, height) = img.format, img.size
    except Image.DecompressionBombError:
        bomb = True
    except Exception:
        pass
    if bomb or picture_format is not None:
        if not bomb and picture_format not in PICTURE_FORMATS:
            raise UploadRefused(f"{path} is a {picture_format} picture, which dreamscope does not take; send a PNG, JPEG or WebP")
        if size > limits.picture:
            raise too_large(limits.picture)
        if not bomb and width * height > limits.pixels:  # said from the header: nothing decoded
            raise UploadRefused(
                f"{path} is {width}x{height} px ({width * height / 1e6:.0f} megapixels); the studio takes pictures up to "
                f"{limits.pixels / 1e6:.0f} megapixels: send a smaller one"
            )
        with DECODING:  # released before an animation's frames are decoded below (`_video` takes its turn)
            picture = images.load_image(path, what="picture")  # bombs, truncated and damaged files: one clear error
        frames = picture.info.get("n_frames", 1)
        if frames > 1 and size <= limits.video:
            try:
                info = _video(path)
                return Sniffed("video", PICTURE_FORMATS[picture_format], info.width, info.height, info.frames, True)
            except DreamscopeError:
                pass  # an animation FFmpeg cannot read (an animated WebP): a picture, its first frame
        return Sniffed("picture", PICTURE_FORMATS[picture_format], picture.width, picture.height, 1, True)
    container = _container_format(path)
    if container not in VIDEO_FORMATS:
        raise UploadRefused(
            f"{path} is not a picture or video dreamscope can read; send a PNG, JPEG or WebP picture, "
            f"or an {videos.READABLE} video"
        )
    if size > limits.video:
        raise too_large(limits.video)
    info = _video(path)
    suffix = VIDEO_FORMATS[container]
    if suffix == ".mkv" and _webm(path):
        suffix = ".webm"
    return Sniffed("video", suffix, info.width, info.height, info.frames, False)


def _container_format(path: Path) -> str | None:
    import av

    try:
        with av.open(str(path)) as container:
            return container.format.name
    except Exception:
        return None


def _webm(path: Path) -> bool:
    """A Matroska file with only WebM codecs, which browsers play as video/webm."""
    import av

    try:
        with av.open(str(path)) as container:
            return all(s.codec_context.name in ("vp8", "vp9", "av1", "opus", "vorbis") for s in container.streams)
    except Exception:
        return False


def _video(path: Path) -> videos.VideoInfo:
    with DECODING:  # a video (or an animated picture) is decoded whole too: it waits its turn like a picture
        return videos.open_video(path)  # every frame decodes, at one size, with a frame rate


def store_file(received: Received, sniffed: Sniffed, folder: Path) -> UploadRow:
    """Rename the checked temporary file to its generated name; the row for the uploads table."""
    upload_id = secrets.token_hex(16)
    file = upload_id + sniffed.suffix
    try:
        os.replace(received.path, folder / file)
    except OSError as exc:
        raise StorageFailed(f"cannot store the upload ({files.reason(exc)}); free some disk space") from None
    return UploadRow(
        upload_id, sniffed.kind, received.name, file, sniffed.width, sniffed.height, sniffed.frames, sniffed.still, received.size
    )


def media_type(file: str) -> str:
    return MEDIA_TYPES.get(Path(file).suffix.lower(), "application/octet-stream")


# -- bundled samples ------------------------------------------------------------------------------------------------

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")  # scikit-image's photos, as `dreamscope sample` writes them


def samples_available() -> tuple[str, ...]:
    import importlib.util

    return SAMPLES if importlib.util.find_spec("skimage") is not None else ()


def make_sample(name: str, folder: Path) -> UploadRow:
    """One of scikit-image's photos as a new upload (PNG)."""
    from PIL import Image

    if name not in SAMPLES:
        raise UploadRefused(f"no sample named {excerpt(name)}; the samples are {', '.join(SAMPLES)}")
    try:
        from skimage import data
    except ImportError:
        raise UploadRefused("sample photos come from scikit-image; run: pip install scikit-image") from None
    picture = Image.fromarray(getattr(data, name)()).convert("RGB")
    upload_id = secrets.token_hex(16)
    file = f"{upload_id}.png"
    images.save_image(picture, folder / file)
    return UploadRow(
        upload_id, "picture", f"{name}.png", file, picture.width, picture.height, 1, True, (folder / file).stat().st_size
    )
