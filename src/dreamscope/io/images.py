"""Picture files in and out: reading, checking and writing pictures and the metadata they carry.

Inside dreamscope a picture is a float tensor NCHW, RGB, in [0, 1]; across the public API it is a PIL image
(`pictures` converts between them). Reading checks the declared size before decoding (decompression bombs) and
decodes fully up front, so a truncated file fails here with a clear message rather than deep inside a dream.
Writing goes through `files` (a temporary file renamed into place), so a failure (a full disk included) never
leaves a half-written output. Outputs can carry metadata, text pairs such as the record of what made them,
which read_metadata gives back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import struct
import warnings
from collections.abc import Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from xml.sax.saxutils import escape, unescape

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from ..errors import DreamscopeError
from ..imaging import centre_square, limit_size, limited_size, resize, to_pil, to_tensor  # noqa: F401 - their old home
from .files import check_folder, checked_file, reason, write_atomically, write_error  # noqa: F401 - their old home

# 100 megapixels: a 4K frame is 8.3, a large camera photo 50. Anything bigger is refused before decoding.
MAX_PIXELS = 100_000_000
# A pipe or a device (/dev/stdin, a FIFO) has no size to check up front: it is read into memory, up to this.
MAX_STREAM_BYTES = 512 * 2**20
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
# Formats whose extra frames are an animation. A multi-page TIFF or an MPO (a phone photo with its depth map
# or gain map as a second picture) is one picture, not an animation.
ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
# Info entries Pillow reads back as data; a PNG text chunk of the same name lands there too, as text.
_DATA_KEYS = ("transparency", "icc_profile", "exif", "xmp", "dpi", "gamma", "aspect", "srgb", "chromaticity")


def load_image(path: str | os.PathLike, what: str = "image") -> Image.Image:
    """Open, validate and fully decode a picture file into an RGB PIL image.

    An animated GIF, PNG or WebP gives its first frame, and `info["n_frames"]` says how many frames the file
    holds (1 for a still), so a front end can point to the video command. A pipe or a device (/dev/stdin, a
    FIFO) is read whole into memory first, as its size is unknown until it ends.
    """
    path = Path(path)
    with _reading(path, what) as img:
        frames = _frame_count(img)
        img.load()  # decode now: a truncated file fails here, not mid-dream
        for key in _DATA_KEYS:  # a text chunk named "exif" or "transparency" would pose as that data
            if isinstance(img.info.get(key), str):
                del img.info[key]
        try:
            img = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError, struct.error):
            pass  # EXIF too damaged to say the orientation: show the picture as stored
        rgb = _to_rgb(img, f"{what} {path}")
    rgb.info["n_frames"] = int(frames)
    return rgb


def picture_size(path: str | os.PathLike, what: str = "image") -> tuple[int, int]:
    """A picture's (width, height) as shown (EXIF orientation applied), read from its header without decoding it:
    a quick look before queueing work. Anything `load_image` would refuse up front is refused here too."""
    path = Path(path)
    with _reading(path, what) as img:
        width, height = img.size
        try:
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientations that swap the sides
        except Exception:
            turned = False
    return (height, width) if turned else (width, height)


def _frame_count(img: Image.Image) -> int:
    if img.format not in ANIMATED_FORMATS:
        return 1
    try:
        return int(img.n_frames)
    except Exception:
        count = 1
        with suppress(Exception):  # count the frames before the cut instead
            while True:
                img.seek(count)
                count += 1
        img.seek(0)
        return count


@contextmanager
def _reading(path: Path, what: str):
    """The opened picture with its declared size checked; any failure to read it becomes one DreamscopeError."""
    source = _source(path, what)
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata (corrupt EXIF, ...) on stderr; the picture either decodes or
            # fails below with one clear message. Its size warning is ignored too: MAX_PIXELS is checked here.
            warnings.simplefilter("ignore")
            with Image.open(source) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise DreamscopeError(
                        f"{what} {path} declares {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} "
                        "megapixel limit; resize it first"
                    )
                yield img
    except DreamscopeError:
        raise
    except PermissionError:
        raise DreamscopeError(f"cannot read {what} file {path} (permission denied); check its permissions") from None
    except UnidentifiedImageError:
        raise DreamscopeError(f"{what} file is not a picture dreamscope can read: {path} (give a PNG, JPEG or WebP)") from None
    except Image.DecompressionBombError:
        raise DreamscopeError(
            f"{what} {path} declares an enormous size, over the {MAX_PIXELS // 1_000_000} megapixel limit "
            "(a decompression bomb?); refusing to decode it: use a smaller picture"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise DreamscopeError(f"{what} file is damaged or truncated: {path} ({exc}); re-export or re-download it") from None


def _source(path: Path, what: str) -> Path | io.BytesIO:
    """What to decode: the file itself, or the bytes of a pipe or device, whose st_size says nothing (it is 0)."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DreamscopeError(f"{what} file not found: {path} (check the path)") from None
    except PermissionError:
        raise DreamscopeError(f"cannot read {what} file {path} (permission denied); check its permissions") from None
    except OSError as exc:  # a loop of symbolic links, a name too long, ...
        raise DreamscopeError(f"cannot read {what} file {path} ({reason(exc)}); check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise DreamscopeError(f"{what} path is a folder, not a picture file: {path} (give the path of a picture inside it)")
    if stat.S_ISREG(info.st_mode):
        if info.st_size == 0:
            raise DreamscopeError(f"{what} file is empty: {path} (give a PNG, JPEG or WebP picture)")
        return path
    chunks, size = [], 0
    try:
        with open(path, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > MAX_STREAM_BYTES:
                    raise DreamscopeError(
                        f"{what} {path} sends more than {MAX_STREAM_BYTES // 2**20} MiB; save the picture to a file and give that"
                    )
                chunks.append(chunk)
    except PermissionError:
        raise DreamscopeError(f"cannot read {what} file {path} (permission denied); check its permissions") from None
    except OSError as exc:
        raise DreamscopeError(f"cannot read {what} {path} ({reason(exc)})") from None
    if not size:
        raise DreamscopeError(f"{what} {path} is empty: nothing came through it (send a PNG, JPEG or WebP picture)")
    return io.BytesIO(b"".join(chunks))


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode == "F":  # 32-bit float (TIFF, FITS): no range is implied, so take the one the values show
        return _float_to_rgb(np.asarray(img, dtype=np.float64), name)
    if img.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey: scale the full range to 0-255, no stretching
        array = np.asarray(img, dtype=np.float64).clip(0, None)
        full = 65535.0 if img.mode.startswith("I;16") or array.max() <= 65535 else array.max()
        return Image.fromarray((array / full * 255.0 + 0.5).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent areas become white
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _float_to_rgb(array: np.ndarray, name: str) -> Image.Image:
    """Values within [0, 1] are scaled by 255, values within [0, 255] taken as they are; anything else has no
    one right reading (HDR, negative, NaN), so it is refused rather than guessed."""
    finite = np.isfinite(array)
    low, high = (float(array[finite].min()), float(array[finite].max())) if finite.any() else (0.0, 0.0)
    if not finite.all() or low < 0 or high > 255:
        found = f"floating-point values from {low:g} to {high:g}" if finite.any() else "only NaN or infinite values"
        found += " and NaN or infinite ones" if finite.any() and not finite.all() else ""
        raise DreamscopeError(f"{name} holds {found}, outside 0-1 and 0-255; convert it to 8 or 16 bits first")
    scale = 255.0 if high <= 1.0 else 1.0
    return Image.fromarray((array * scale + 0.5).astype(np.uint8)).convert("RGB")


# -- writing ----------------------------------------------------------------------------------------------------


def check_output_path(path: str | os.PathLike, formats=OUTPUT_FORMATS) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    if os.path.isdir(path):
        raise DreamscopeError(f"output path is a folder: {path} (give a file name such as {path / 'dream.png'})")
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise DreamscopeError(
            f"cannot write '{suffix or path.name}' files; name the output with one of {', '.join(sorted(formats))}"
        )
    check_folder(path.parent if str(path.parent) else Path("."))
    return path


def save_image(img: Image.Image, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write atomically: a temporary file beside the target, renamed over it once complete.

    `metadata` (text pairs) goes where each format keeps text: PNG as one iTXt chunk per pair, JPEG, WebP and
    TIFF as XMP holding a JSON object of all pairs, BMP nowhere. The same picture and metadata always give the
    same bytes (no time stamps). read_metadata gives the pairs back; see check_metadata for what is kept.
    """
    path = check_output_path(path)
    pairs = check_metadata(metadata)
    try:
        return write_image(img, path, pairs)
    except OSError as exc:
        raise write_error(path, exc) from None


def write_image(img: Image.Image, path: Path, pairs: Mapping[str, str] | None = None) -> Path:
    """save_image without the checks, for callers that word failures themselves (a video's frames are named
    by the video): an OSError comes out as it is, and the temporary file is removed."""
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    options.update(_metadata_options(fmt, pairs or {}))
    return write_atomically(path, lambda handle: img.save(handle, format=fmt, **options))


def set_png_text(path: Path, pairs: Mapping[str, str] | None) -> Path:
    """Give a PNG file new text chunks (as save_image writes them), keeping every other chunk byte for byte:
    new metadata without decoding and encoding the picture again. An OSError comes out as it is."""
    data = path.read_bytes()
    text = io.BytesIO()
    for kind, body, _ in _metadata_options("PNG", pairs or {}).get("pnginfo", PngImagePlugin.PngInfo()).chunks:
        PngImagePlugin.putchunk(text, kind, body)
    parts, at = [data[:8]], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT" and text is not None:
            parts.append(text.getvalue())  # where Pillow puts them: before the pixels
            text = None
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            parts.append(data[at : at + 12 + length])
        at += 12 + length
        if kind == b"IEND":
            break
    return write_atomically(path, lambda handle: handle.write(b"".join(parts)))


# -- metadata ---------------------------------------------------------------------------------------------------

# PNG's rule for keywords, used for every format so that metadata fits them all: 1-79 printable Latin-1
# characters, no space at either end and no two in a row.
_KEYWORD = re.compile(r"(?! )(?!.*  )[\x20-\x7e\xa1-\xff]{1,79}(?<! )")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
XMP_NAMESPACE = "http://ns.dreamscope.invalid/1.0/"
_XMP_PROPERTY = re.compile(rb'dreamscope:metadata="([^"]*)"')
_XMP_MAIN = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"
_JPEG_SEGMENT = 65533  # bytes after a JPEG marker's length field, at most
_PNG_ZIP_FROM, _PNG_ZIP_UP_TO = 1024, PngImagePlugin.MAX_TEXT_CHUNK  # Pillow refuses to inflate a larger chunk


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The pairs as they will be written, sorted by key, or a DreamscopeError before any work.

    Keys follow PNG's keyword rule in every format. Values are any text, as long as wanted: a lone surrogate
    (what Python makes of a file name's bytes that are not UTF-8, "\\udce9") can't be encoded in any format,
    so it is written, and read back, as U+FFFD.
    """
    pairs = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not _KEYWORD.fullmatch(key):
            raise DreamscopeError(
                f"metadata key {key!r} cannot be written: use 1 to 79 Latin-1 letters, digits, "
                "punctuation or single spaces inside"
            )
        if not isinstance(value, str):
            raise DreamscopeError(f"metadata value of {key!r} must be text, not {type(value).__name__}")
        pairs[key] = _LONE_SURROGATE.sub("\ufffd", value)
    return dict(sorted(pairs.items()))


def metadata_json(pairs: Mapping[str, str]) -> str:
    """All pairs as one JSON object, ASCII only (anything else as \\u escapes), so any container holds it."""
    return json.dumps(dict(pairs), ensure_ascii=True, sort_keys=True, separators=(",", ":"))


def metadata_from_json(text: str | bytes | None) -> dict[str, str]:
    """The pairs of metadata_json's text; {} for anything else (another program's comment, damage)."""
    try:
        pairs = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(pairs, dict) or not all(isinstance(value, str) for value in pairs.values()):
        return {}
    return pairs


def _metadata_options(fmt: str, pairs: Mapping[str, str]) -> dict:
    if not pairs or fmt == "BMP":  # BMP has nowhere to put text
        return {}
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        for key, value in pairs.items():
            size = len(value.encode("utf-8"))
            text.add_itxt(key, value, zip=_PNG_ZIP_FROM < size <= _PNG_ZIP_UP_TO)
        return {"pnginfo": text}
    properties = {"dreamscope:metadata": metadata_json(pairs)}
    if fmt == "JPEG":
        return {"extra": _jpeg_xmp(properties)}
    if fmt == "WEBP":
        return {"xmp": _xmp(properties)}
    return {"tiffinfo": {700: _xmp(properties)}}  # TIFF's XMP tag


def _xmp(properties: Mapping[str, str], wrapped: bool = True) -> bytes:
    """An XMP packet with the given properties as attributes (their values escaped for XML)."""
    attributes = "".join(f' {name}="{escape(value, {chr(34): "&quot;"})}"' for name, value in properties.items())
    body = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:dreamscope="{XMP_NAMESPACE}" '
        f'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"{attributes}/></rdf:RDF></x:xmpmeta>'
    )
    if wrapped:
        body = f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>{body}<?xpacket end="r"?>'
    return body.encode("utf-8")


def _jpeg_xmp(properties: Mapping[str, str]) -> bytes:
    """JPEG APP1 segments holding an XMP packet. A JPEG segment holds 64 KB, so a larger packet is written as
    the XMP standard's Extended XMP: a short main packet naming the MD5 of the full one, which follows in pieces."""
    segment = lambda payload: b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    packet = _xmp(properties)
    if len(_XMP_MAIN) + len(packet) <= _JPEG_SEGMENT:
        return segment(_XMP_MAIN + packet)
    full = _xmp(properties, wrapped=False)  # the standard writes the extension without the packet wrapper
    guid = hashlib.md5(full).hexdigest().upper()
    segments = [segment(_XMP_MAIN + _xmp({"xmpNote:HasExtendedXMP": guid}))]
    piece = _JPEG_SEGMENT - len(_XMP_EXTENSION) - 40  # after the GUID (32) and the full size and offset (4 + 4)
    for offset in range(0, len(full), piece):
        header = _XMP_EXTENSION + guid.encode() + struct.pack(">II", len(full), offset)
        segments.append(segment(header + full[offset : offset + piece]))
    return b"".join(segments)


def _jpeg_xmp_packets(applist) -> list[bytes]:
    """The XMP packets of a JPEG: the main one, then each Extended XMP whose pieces join up to its MD5."""
    main, pieces = [], {}
    for marker, data in applist:
        if marker == "APP1" and data.startswith(_XMP_MAIN):
            main.append(data[len(_XMP_MAIN) :])
        elif marker == "APP1" and data.startswith(_XMP_EXTENSION) and len(data) >= len(_XMP_EXTENSION) + 40:
            at = len(_XMP_EXTENSION)
            offset = struct.unpack(">I", data[at + 36 : at + 40])[0]
            pieces.setdefault(data[at : at + 32], {})[offset] = data[at + 40 :]
    for guid, parts in pieces.items():
        joined = b"".join(parts[offset] for offset in sorted(parts))
        if hashlib.md5(joined).hexdigest().upper().encode() == guid:  # whole, in order, and undamaged
            main.append(joined)
    return main


def _pairs_from_xmp(packets) -> dict[str, str]:
    for packet in packets:
        if isinstance(packet, str):
            packet = packet.encode("utf-8", "replace")
        if match := _XMP_PROPERTY.search(packet or b""):
            return metadata_from_json(unescape(match.group(1).decode("utf-8", "replace"), {"&quot;": '"'}))
    return {}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The text pairs a picture carries, as save_image wrote them; {} when there are none.

    PNG gives all its text chunks (another program's too), JPEG, WebP and TIFF the pairs in their XMP, a GIF
    those in its comment (as videos.FrameWriter writes them). A lone surrogate written comes back as U+FFFD.
    """
    path = Path(path)
    with _reading(path, "image") as img:
        if img.format == "PNG":
            return {key: str(value) for key, value in img.text.items()}  # reads chunks after the pixels too
        if img.format == "GIF":
            return metadata_from_json(img.info.get("comment"))
        if img.format in ("JPEG", "MPO"):
            return _pairs_from_xmp(_jpeg_xmp_packets(img.applist))
        return _pairs_from_xmp([img.info.get("xmp")])


# Names that moved to another module of io/ when the package was split into layers (0.2).
_MOVED = {"picture_files": "folders", "PICTURE_SUFFIXES": "folders", "write_file": "files"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"dreamscope.io.images.{name} moved to dreamscope.io.{_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
