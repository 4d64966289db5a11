"""Pictures in and out: the only module that reads or writes image files.

Inside dreamscope a picture is a float tensor NCHW, RGB, in [0, 1]; across the public API it is a PIL image.
Reading checks the declared size before decoding (decompression bombs) and decodes fully up front, so a
truncated file fails here with a clear message rather than deep inside a dream. Writing goes to a temporary
file in the destination folder and is renamed into place, so a failure never leaves a half-written output.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DreamscopeError

# 100 megapixels: a 4K frame is 8.3, a large camera photo 50. Anything bigger is refused before decoding.
MAX_PIXELS = 100_000_000
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def load_image(path: str | os.PathLike, what: str = "image") -> Image.Image:
    """Open, validate and fully decode a picture file into an RGB PIL image."""
    path = Path(path)
    if not path.exists():
        raise DreamscopeError(f"{what} file not found: {path} (check the path)")
    if path.is_dir():
        raise DreamscopeError(f"{what} path is a folder, not a picture file: {path} (give the path of a picture inside it)")
    if path.stat().st_size == 0:
        raise DreamscopeError(f"{what} file is empty: {path} (give a PNG, JPEG or WebP picture)")
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata (corrupt EXIF, ...) on stderr; the picture either decodes or
            # fails below with one clear message. Its size warning is ignored too: MAX_PIXELS is checked here.
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise DreamscopeError(
                        f"{what} {path} declares {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} "
                        "megapixel limit; resize it first"
                    )
                img.load()  # decode now: a truncated file fails here, not mid-dream
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
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
    except (OSError, SyntaxError, ValueError) as exc:
        raise DreamscopeError(f"{what} file is damaged or truncated: {path} ({exc}); re-export or re-download it") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey: scale the full range to 0-255, no stretching
        array = np.asarray(img, dtype=np.float64).clip(0, None)
        full = 65535.0 if img.mode.startswith("I;16") or array.max() <= 65535 else array.max()
        return Image.fromarray((array / full * 255.0 + 0.5).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent areas become white
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def check_output_path(path: str | os.PathLike, formats=OUTPUT_FORMATS) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise DreamscopeError(f"output path is a folder: {path} (give a file name such as {path / 'dream.png'})")
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise DreamscopeError(f"cannot write '{suffix or path.name}' files; name the output with one of {', '.join(sorted(formats))}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise DreamscopeError(f"output folder does not exist: {parent} (create it first)")
    if not parent.is_dir():
        raise DreamscopeError(f"output folder is not a folder: {parent}")
    if not os.access(parent, os.W_OK):
        raise DreamscopeError(f"cannot write into {parent} (permission denied)")
    return path


def save_image(img: Image.Image, path: str | os.PathLike) -> Path:
    """Write atomically: a temporary file beside the target, renamed over it once complete."""
    path = check_output_path(path)
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            img.save(handle, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, str]:
    """A new `.NAME.XXXX.part` file beside `path`. Unlike tempfile.mkstemp (always mode 0600), it is created
    with the permissions the umask gives any new file, so the renamed output is readable like any other."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise DreamscopeError(f"cannot create a temporary file beside {path}")


def to_tensor(img: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)


def to_pil(x: torch.Tensor) -> Image.Image:
    array = (x.detach()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an NCHW tensor to (height, width); antialiased when shrinking so octaves do not alias."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def limit_size(img: Image.Image, max_size: int | None) -> Image.Image:
    """Downscale so the longest side is at most max_size (never upscales)."""
    if not max_size or max(img.size) <= max_size:
        return img
    scale = max_size / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.LANCZOS)
