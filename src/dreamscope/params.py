"""Image parameterizations: learnable tensors that render to RGB pictures in [0, 1].

`FourierImage` is the natural-image prior of feature visualization: the picture is stored as a spectrum
scaled like natural images' 1/f amplitude, with its colour in a decorrelated space (the square root of the
colour covariance of ImageNet photos), squashed by a sigmoid. Gradient steps on it change all frequencies
evenly, so low frequencies (shapes) emerge instead of the high-frequency noise that plain pixels produce.
`PixelImage` is the plain-pixel parameterization, kept for comparison.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Square root of the RGB covariance of ImageNet photos (its SVD's U * sqrt(S)), a widely used constant.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
SPECTRUM_DAMPING = 4.0  # keeps the initial picture's contrast moderate after the sigmoid


class ImageParam(nn.Module):
    """Renders a batch of pictures, shape (batch, 3, height, width), values in [0, 1]."""

    def forward(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def _logit(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(1e-3, 1 - 1e-3)
    return torch.log(x / (1 - x))


class PixelImage(ImageParam):
    def __init__(self, batch: int, height: int, width: int, generator: torch.Generator, init: torch.Tensor | None = None):
        super().__init__()
        start = torch.randn(batch, 3, height, width, generator=generator) * 0.01
        if init is not None:
            start = start + _logit(init.expand(batch, -1, -1, -1))
        self.pixels = nn.Parameter(start)

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.pixels)


class FourierImage(ImageParam):
    def __init__(self, batch: int, height: int, width: int, generator: torch.Generator,
                 init: torch.Tensor | None = None, decay: float = 1.0, decorrelate: bool = True):
        super().__init__()
        self.size = (height, width)
        self.decorrelate = decorrelate
        freqs = (torch.fft.fftfreq(height)[:, None] ** 2 + torch.fft.rfftfreq(width)[None, :] ** 2).sqrt()
        # 1/f scaling, floored at the lowest frequency; sqrt(h*w) makes the inverse FFT orthonormal.
        scale = freqs.clamp(min=1.0 / max(height, width)) ** -decay * math.sqrt(height * width)
        self.register_buffer("scale", scale)
        spectrum = torch.randn(batch, 3, height, width // 2 + 1, 2, generator=generator) * 0.01
        if init is not None:
            spectrum = spectrum + self._spectrum_of(init.expand(batch, -1, -1, -1))
        self.spectrum = nn.Parameter(spectrum)

    def _colour(self, x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        if not self.decorrelate:
            return x
        matrix = torch.linalg.inv(COLOR_MATRIX) if inverse else COLOR_MATRIX
        return torch.einsum("bchw,dc->bdhw", x, matrix.to(x))

    def _spectrum_of(self, picture: torch.Tensor) -> torch.Tensor:
        """The spectrum that renders to `picture` (inverts sigmoid, colour and scaling): start from a photo."""
        signal = self._colour(_logit(picture), inverse=True) * SPECTRUM_DAMPING
        return torch.view_as_real(torch.fft.rfft2(signal) / self.scale)

    def forward(self) -> torch.Tensor:
        signal = torch.fft.irfft2(torch.view_as_complex(self.spectrum) * self.scale, s=self.size) / SPECTRUM_DAMPING
        return torch.sigmoid(self._colour(signal))


def make_param(kind: str, batch: int, height: int, width: int, generator: torch.Generator,
               init: torch.Tensor | None = None) -> ImageParam:
    """'fft' (natural-image prior, the default) or 'pixels' (plain, for comparison)."""
    if kind == "fft":
        return FourierImage(batch, height, width, generator, init)
    if kind == "pixels":
        return PixelImage(batch, height, width, generator, init)
    raise ValueError(f"unknown parameterization {kind!r}")
