"""Random image transforms for robustness, composable (Lucent's `compose` and `standard_transforms`): each is a
small object, called as `transform(x, generator)` on an NCHW batch, that says what it is when printed.

All randomness comes from the torch.Generator passed in, one draw per call shared by the batch, in the order the
transforms are composed, so a seed reproduces a picture exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..fields import VIEWS, cropped


def random_shift(generator: torch.Generator, jitter: int) -> tuple[int, int]:
    """A (dy, dx) offset, each uniform in [-jitter, jitter]."""
    if jitter <= 0:
        return 0, 0
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return dy, dx


def roll(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Circular shift of an NCHW tensor; roll(roll(x, s), (-dy, -dx)) == x."""
    dy, dx = shift
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1)) if (dy or dx) else x


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator))


class Transform:
    """`transform(x, generator)` -> the transformed batch."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Pad(Transform):
    """A border of `width` px of one grey all round: room for the shifts and turns that follow."""

    width: int
    value: float = 0.5

    def __call__(self, x, generator):
        return F.pad(x, (self.width,) * 4, mode="constant", value=self.value) if self.width else x


@dataclass(frozen=True)
class Jitter(Transform):
    """A random circular shift of up to `pixels` px each way."""

    pixels: int

    def __call__(self, x, generator):
        return roll(x, random_shift(generator, self.pixels))


@dataclass(frozen=True)
class ScaleRotate(Transform):
    """A random zoom in `scale` (low, high) and turn of up to `degrees` either way about the centre, in one
    resampling (bilinear; corners mirrored, not black).

    `trim` px less on every side comes out: the same field of view, sampled onto fewer pixels. After a `Pad` of
    that width, the network sees views at the picture's own size, not the padded one's (0.82x the pixels at 224
    px), resampled once as before: a bfloat16 class picture took 0.90x the time (docs/benchmarks.md).

    `crop` below 1 shows a window about `crop` times the side, at the same scale, placed at random wherever it stays
    inside: the network sees parts of the picture the size of an object in a photo, so each part must read as the
    class on its own (faccent's crops; here 2 views of 0.6 named as many classes as 4 whole views and drew them
    nearer their photos, docs/benchmarks.md). The window's sides are the picture's less whole multiples of 8 px
    (136 of 224 at 0.6), so a side a network takes stays one it takes (a Swin transformer's 4 px patches). At 1
    nothing more is drawn from the generator: seeds repeat.
    """

    scale: tuple[float, float]
    degrees: float
    trim: int = 0
    crop: float = 1.0

    def __call__(self, x, generator):
        zoom = _uniform(generator, *self.scale)
        angle = math.radians(_uniform(generator, -self.degrees, self.degrees))
        height, width = cropped(x.shape[-2] - 2 * self.trim, self.crop), cropped(x.shape[-1] - 2 * self.trim, self.crop)
        across, down = width / (x.shape[-1] - 2 * self.trim), height / (x.shape[-2] - 2 * self.trim)
        shift_y = shift_x = 0.0
        if self.crop < 1:  # the window's half-side is across (or down) / zoom of the input's, in grid units
            shift_y = _uniform(generator, -max(0.0, 1 - down / zoom), max(0.0, 1 - down / zoom))
            shift_x = _uniform(generator, -max(0.0, 1 - across / zoom), max(0.0, 1 - across / zoom))
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = [[across * cos, -down * sin, shift_x], [across * sin, down * cos, shift_y]]
        theta = torch.tensor(theta, dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), [*x.shape[:2], height, width], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass(frozen=True)
class Compose(Transform):
    """Transforms applied one after another, each drawing from the same generator in turn."""

    steps: tuple[Transform, ...]

    def __call__(self, x, generator):
        for step in self.steps:
            x = step(x, generator)
        return x


@dataclass(frozen=True)
class Views(Transform):
    """`count` views of one picture, each a new draw of `transform`, stacked in the batch: an objective that averages
    over the batch then averages over the views, so each step follows a steadier gradient (faccent looks at 16 crops
    a step). Stacked like this for one picture; `render.optimize` runs a batch's views one pass each instead, since a
    batch's objectives pick their pictures by position."""

    transform: Transform
    count: int

    def __call__(self, x, generator):
        return torch.cat([self.transform(x, generator) for _ in range(self.count)])


def compose(*transforms: Transform) -> Compose:
    return Compose(tuple(transforms))


def standard_transforms(
    pad: int = 12,
    jitter: int = 8,
    scale: tuple[float, float] = (0.9, 1.6),
    rotate: float = 10.0,
    *,
    view: str = "padded",
    crop: float = 1.0,
) -> Compose:
    """Transformation robustness for feature visualization: pad with grey, shift, zoom and turn, shift again.

    A picture must keep exciting the target under all of these, so it cannot rely on fragile pixel patterns.
    Zooms above 1 crop into the picture, which keeps the target recognizable in its parts too: with zooms
    up to 1.35 only 83% of 24 class pictures survived a 75% centre crop, with up to 1.6 all those tried did. An
    icon or a small picture scales `pad` and `jitter` down with its side. `view` is the size the network sees:
    "padded" (the picture and its border) or "picture" (the same views resampled to the picture's own size);
    `crop` below 1 shows a random window of that fraction of the side instead (`ScaleRotate`).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    trim = pad if view == "picture" else 0
    if not 0 < crop <= 1:
        raise ValueError(f"crop must be above 0 and at most 1, got {crop!r}")
    return compose(Pad(pad), Jitter(jitter), ScaleRotate(scale, rotate, trim, crop), Jitter(max(jitter // 2, 0)))


robustness = standard_transforms()  # what morph and the microscope see through; visualize's follows its `view`
