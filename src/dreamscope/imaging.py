"""Pictures in memory: PIL images across the public API, float tensors NCHW RGB in [0, 1] inside.

Conversions and sizes only; reading and writing files is `io.images`'.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


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
    size = limited_size(img.size, max_size)
    return img if size == img.size else img.resize(size, Image.LANCZOS)


def limited_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """The (width, height) `limit_size` gives a picture of `size` (width, height)."""
    if not max_size or max(size) <= max_size:
        return tuple(size)
    scale = max_size / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def centre_square(img: Image.Image, side: int) -> Image.Image:
    """The picture scaled so its shorter side is `side`, then the centre `side` x `side` square (the view
    ImageNet classifiers are evaluated on)."""
    width, height = img.size
    scale = side / min(width, height)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    img = img.resize(size, Image.BICUBIC, reducing_gap=3.0)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    return img.crop((left, top, left + side, top + side))
