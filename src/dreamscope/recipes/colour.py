"""Colour statistics of pictures: do they look like photographs?

`colourfulness` is Hasler and Suesstrunk's metric (2003): on 0-255 RGB, with rg = R - G and yb = (R + G) / 2 - B,
M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2). It tracks people's ratings of
colourfulness (about 0 for grey, 15 "slightly", 33 "moderately", 45 "averagely", 59 "quite", 82+ "highly
colourful"). `saturation` is the mean HSV saturation, in [0, 1].
"""

from __future__ import annotations

import torch
from PIL import Image

from .. import imaging


def _tensor(picture: Image.Image | torch.Tensor) -> torch.Tensor:
    """NCHW RGB in [0, 1] (a PIL picture is converted; a tensor is taken as it is)."""
    return imaging.to_tensor(picture) if isinstance(picture, Image.Image) else picture


def colourfulness(picture: Image.Image | torch.Tensor) -> torch.Tensor | float:
    """Hasler and Suesstrunk's colourfulness, per picture of an NCHW batch (a float for a PIL picture)."""
    x = _tensor(picture).double() * 255.0
    red, green, blue = x[:, 0], x[:, 1], x[:, 2]
    rg = (red - green).flatten(1)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
    centre = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    value = (spread + 0.3 * centre).float()
    return float(value[0]) if isinstance(picture, Image.Image) else value


def saturation(picture: Image.Image | torch.Tensor) -> torch.Tensor | float:
    """Mean HSV saturation (max - min) / max, per picture of an NCHW batch (a float for a PIL picture)."""
    x = _tensor(picture)
    top, bottom = x.amax(dim=1), x.amin(dim=1)
    value = torch.where(top > 0, (top - bottom) / top.clamp(min=1e-12), torch.zeros_like(top)).flatten(1).mean(dim=1)
    return float(value[0]) if isinstance(picture, Image.Image) else value
