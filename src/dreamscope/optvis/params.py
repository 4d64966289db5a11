"""Image parameterizations: learnable tensors that render to RGB pictures in [0, 1].

`FourierImage` is the natural-image prior of feature visualization: the picture is stored as a spectrum
scaled like natural images' 1/f amplitude, with its colour in a decorrelated space (the square root of the
colour covariance of ImageNet photos), squashed by a sigmoid. Gradient steps on it change all frequencies
evenly, so low frequencies (shapes) emerge instead of the high-frequency noise that plain pixels produce.
`MacoImage` (MaCo: Fel et al., NeurIPS 2023) goes further: the magnitude of every frequency is fixed to that of
natural photos (measured by docs/make_spectrum.py, shipped as package data) and only the phases are learned, so the
picture keeps a photograph's contrast at every scale and in every colour channel, which is what makes it look
natural. `PixelImage` is the plain-pixel parameterization, kept for comparison.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Square root of the RGB covariance of ImageNet photos (its SVD's U * sqrt(S)), a widely used constant.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
SPECTRUM_DAMPING = 4.0  # keeps the initial picture's contrast moderate after the sigmoid
SPECTRUM_SIDE = 224  # the natural spectrum is measured on photos' centre squares of this side
# Adam's default step per parameterization. For fft, 150 steps at 0.1 name as many classes as 300 at 0.05 did, in
# half the time (docs/benchmarks.md, "Fewer steps"); MaCo's phases (radians) move well at 0.1 too.
LEARNING_RATES = {"fft": 0.1, "maco": 0.1, "pixels": 0.05}


class ImageParam(nn.Module):
    """Renders a batch of pictures, shape (batch, 3, height, width), values in [0, 1]."""

    def forward(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def _logit(x: torch.Tensor, margin: float = 1e-3) -> torch.Tensor:
    x = x.clamp(margin, 1 - margin)
    return torch.log(x / (1 - x))


def colour(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Decorrelated colour to RGB (or back, `inverse`): the photos' colour covariance, applied per pixel."""
    matrix = torch.linalg.inv(COLOR_MATRIX) if inverse else COLOR_MATRIX
    return torch.einsum("bchw,dc->bdhw", x, matrix.to(x))


def signal_of(picture: torch.Tensor, margin: float = 1e-3) -> torch.Tensor:
    """The decorrelated signal that renders to `picture` through `sigmoid(colour(signal))`."""
    return colour(_logit(picture, margin), inverse=True)


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
    def __init__(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
        decay: float = 1.0,
        decorrelate: bool = True,
    ):
        super().__init__()
        self.size = (height, width)
        self.decorrelate = decorrelate
        freqs = (torch.fft.fftfreq(height)[:, None] ** 2 + torch.fft.rfftfreq(width)[None, :] ** 2).sqrt()
        # 1/f scaling, floored at the lowest frequency; sqrt(h*w) makes the inverse FFT orthonormal.
        floored = freqs.clamp(min=1.0 / max(height, width))
        scale = floored**-decay * math.sqrt(height * width)
        if decay != 1.0:  # the same total contrast as 1/f: a steeper spectrum moves it to larger shapes, not more of it
            scale *= float(floored.reciprocal().square().mean().sqrt() / (floored**-decay).square().mean().sqrt())
        self.register_buffer("scale", scale)
        spectrum = torch.randn(batch, 3, height, width // 2 + 1, 2, generator=generator) * 0.01
        if init is not None:
            spectrum = spectrum + self._spectrum_of(init.expand(batch, -1, -1, -1))
        self.spectrum = nn.Parameter(spectrum)

    def _colour(self, x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        return colour(x, inverse) if self.decorrelate else x

    def _spectrum_of(self, picture: torch.Tensor) -> torch.Tensor:
        """The spectrum that renders to `picture` (inverts sigmoid, colour and scaling): start from a photo."""
        signal = self._colour(_logit(picture), inverse=True) * SPECTRUM_DAMPING
        return torch.view_as_real(torch.fft.rfft2(signal) / self.scale)

    def forward(self) -> torch.Tensor:
        return self._render(self.spectrum)

    def _render(self, spectrum: torch.Tensor) -> torch.Tensor:
        signal = torch.fft.irfft2(torch.view_as_complex(spectrum) * self.scale, s=self.size) / SPECTRUM_DAMPING
        return torch.sigmoid(self._colour(signal))


class MixedFourierImage(FourierImage):
    """Shared pictures and pictures that mix them: the first `shared` pictures are Fourier images of their own; each
    of the others is its own Fourier image plus the shared ones weighted by its row of `mixing` (rows, shared), in the
    spectrum, which is the signal before the sigmoid. Neighbouring cells of an explanation's grid that belong to the
    same neuron groups then share those groups' pictures and stay coherent, as in Lucid's activation grids."""

    def __init__(self, mixing: torch.Tensor, height: int, width: int, generator: torch.Generator):
        rows, shared = mixing.shape
        super().__init__(shared + rows, height, width, generator)
        self.shared = shared
        self.register_buffer("mixing", mixing.float())

    def forward(self) -> torch.Tensor:
        shared, own = self.spectrum[: self.shared], self.spectrum[self.shared :]
        mixed = own + torch.einsum("rs,s...->r...", self.mixing, shared)
        return self._render(torch.cat([shared, mixed]))


@functools.lru_cache(maxsize=1)
def natural_spectrum() -> torch.Tensor:
    """The root-mean-square Fourier magnitude of natural photos in the decorrelated signal space, shape
    (3, SPECTRUM_SIDE, SPECTRUM_SIDE // 2 + 1) (orthonormal FFT of a centre square; docs/make_spectrum.py)."""
    with resources.files("dreamscope").joinpath("data/spectrum.npy").open("rb") as file:
        return torch.from_numpy(np.load(file, allow_pickle=False)).float()


def spectrum_for(height: int, width: int) -> torch.Tensor:
    """The natural magnitude at each frequency of a height x width picture's rfft2, shape (3, height, width//2+1).

    The table is a density over frequency in cycles per pixel (orthonormal FFT), so other sizes read it at their
    own frequencies (bilinear); frequencies below the table's lowest take its lowest. A picture of any size then
    has, on average, the photos' per-pixel contrast.
    """
    table = natural_spectrum()
    side = table.shape[-2]
    if (height, width) == (side, side):
        return table.clone()
    # Rows of an FFT run 0, 1, ..., then the negative frequencies: shift them into order for interpolation.
    ordered = torch.fft.fftshift(table, dim=-2)[None]
    fy = torch.fft.fftfreq(height)[:, None].expand(height, width // 2 + 1)
    fx = torch.fft.rfftfreq(width)[None, :].expand(height, width // 2 + 1)
    # grid_sample's coordinates: -1 .. 1 across the table's cells (align_corners=True).
    row = (fy * side + side // 2) / (side - 1) * 2 - 1
    column = fx * side / (side // 2) * 2 - 1
    grid = torch.stack([column, row], dim=-1)[None].clamp(-1, 1)
    return F.grid_sample(ordered, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


class MacoImage(ImageParam):
    """MaCo: the natural magnitude spectrum fixed, the phase learned, colour decorrelated, squashed by a sigmoid.

    `init` starts from a photo: its own magnitude, fixed, and its phases, so the picture starts as the photo and
    keeps its contrast and colour statistics while its phases move. `attribution` accumulates
    the absolute gradient reaching the picture over the optimization, per pixel: where the objective looked, which
    MaCo shows as the picture's transparency (`transparency()`).
    """

    def __init__(self, batch: int, height: int, width: int, generator: torch.Generator, init: torch.Tensor | None = None):
        super().__init__()
        self.size = (height, width)
        if init is None:
            magnitude = spectrum_for(height, width)
            phase = (torch.rand(batch, 3, height, width // 2 + 1, generator=generator) * 2 - 1) * math.pi
        else:
            spectrum = torch.fft.rfft2(signal_of(init.expand(batch, -1, -1, -1)), norm="ortho")
            magnitude, phase = spectrum.abs(), spectrum.angle()
        self.register_buffer("magnitude", magnitude)
        self.phase = nn.Parameter(phase)
        self.register_buffer("attribution", torch.zeros(batch, 1, height, width))

    def _accumulate(self, grad: torch.Tensor) -> None:
        self.attribution += grad.detach().abs().sum(dim=1, keepdim=True)

    def forward(self) -> torch.Tensor:
        signal = torch.fft.irfft2(torch.polar(self.magnitude.expand_as(self.phase), self.phase), s=self.size, norm="ortho")
        picture = torch.sigmoid(colour(signal))
        if picture.requires_grad:
            picture.register_hook(self._accumulate)
        return picture

    def transparency(self, high: float = 0.9) -> torch.Tensor:
        """Opacity per pixel from the attribution, shape (batch, 1, H, W) in [0, 1]: the square root of the blurred
        attribution as a fraction of its `high` quantile's (opaque at and above it, transparent where no gradient
        arrived). The root keeps the long tail of a few strong pixels from fading everything else."""
        blurred = F.avg_pool2d(self.attribution, 9, stride=1, padding=4, count_include_pad=False)
        top = blurred.flatten(1).quantile(high, dim=1)[:, None, None, None]
        return (blurred / top.clamp(min=1e-12)).sqrt().clamp(0, 1)


def make_param(
    kind: str,
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    init: torch.Tensor | None = None,
    decay: float = 1.0,
) -> ImageParam:
    """'fft' (1/f^decay prior, all coefficients learned: the default), 'maco' (natural magnitude, learned phase) or
    'pixels' (plain, for comparison)."""
    if kind == "maco":
        return MacoImage(batch, height, width, generator, init)
    if kind == "fft":
        return FourierImage(batch, height, width, generator, init, decay=decay)
    if kind == "pixels":
        return PixelImage(batch, height, width, generator, init)
    raise ValueError(f"unknown parameterization {kind!r}")
