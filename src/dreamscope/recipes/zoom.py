"""Endless zoom: dream a picture, zoom and turn it a little about its centre, dream the result, and so on.

Each frame is a short dream on top of the last one, so the deep structure accumulates. Left alone such a
loop drifts: colours burn out at the bounds, brightness creeps and zoom resampling softens the picture. Three
things hold it steady: the ascent steps in logit space (`soft_bounds`), every frame's colour distribution is
matched to the first frame's, channel by channel, and the dream itself keeps restoring fine detail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .. import images
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, load_model
from . import dream as dream_recipe

FRAMES = 120
ZOOM = 1.04
ROTATE = 0.0
FPS = 24
OCTAVES = 2  # a frame starts from an already dreamed picture: two octaves and a few steps suffice
STEPS = 5


@dataclass
class Frame:
    """One finished frame: `index` counts from 0 over the whole run (a resumed run starts past 0)."""

    index: int
    frames: int
    tensor: torch.Tensor
    layer: str

    @property
    def image(self) -> Image.Image:
        return images.to_pil(self.tensor)


def zoom_rotate(x: torch.Tensor, zoom: float, rotate: float) -> torch.Tensor:
    """Magnify NCHW `x` by `zoom` and turn it by `rotate` degrees about its centre, keeping its size.

    Bicubic sampling at sub-pixel positions, so a zoom of 1.01 is a real 1% zoom, not a rounded crop;
    corners uncovered by a rotation mirror the picture instead of turning black.
    """
    angle = math.radians(rotate)
    height, width = x.shape[-2:]
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    # affine_grid works in [-1, 1] per axis, so a rotation on a non-square picture needs the aspect ratio.
    theta = torch.tensor([[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.unsqueeze(0).expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection", align_corners=False).clamp_(0.0, 1.0)


def colour_distribution(x: torch.Tensor) -> torch.Tensor:
    """Each colour channel's values, sorted: the whole distribution, shape (3, pixels)."""
    return x[0].flatten(1).sort(dim=1).values


def match_distribution(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Give each colour channel of `x` the reference's distribution of values, keeping the order of its pixels.

    Matching only the mean and standard deviation kept the brightness but not the tails: the dream's heavier
    tails were pushed past 0 and 1, and up to 3.7% of values clipped at some time over 240 frames (11% of
    pixels in some channel). With the whole distribution matched, each frame has exactly the first frame's
    brightness, contrast, colour balance and clipping, while the dream decides where each value goes.
    """
    flat = x[0].flatten(1)
    order = flat.argsort(dim=1)
    values = reference
    if reference.shape[1] != flat.shape[1]:  # another size: read the reference's quantiles at these ranks
        positions = torch.linspace(0, reference.shape[1] - 1, flat.shape[1], device=x.device)
        low = positions.floor().long()
        high = (low + 1).clamp_max(reference.shape[1] - 1)
        t = positions - low
        values = reference[:, low] * (1 - t) + reference[:, high] * t
    matched = torch.empty_like(flat).scatter_(1, order, values)
    return matched.view_as(x[0]).unsqueeze(0)


def parse_layer_cycle(layers: str | Sequence[str] | None) -> list[str]:
    if layers is None:
        return []
    names = [n.strip() for n in (layers.split(",") if isinstance(layers, str) else layers)]
    if not names or not all(names):
        raise DreamscopeError(f"layers must be a comma-separated list of layer names, got {layers!r}")
    return names


def zoom_iter(
    image: Image.Image,
    *,
    frames: int = FRAMES,
    zoom: float = ZOOM,
    rotate: float = ROTATE,
    model: str | LoadedModel = DEFAULT_MODEL,
    layer: str | Sequence[str] | None = None,
    layers: str | Sequence[str] | None = None,
    every: int | None = None,
    channels: str | Sequence[int] | None = None,
    octaves: int = OCTAVES,
    octave_scale: float = dream_recipe.OCTAVE_SCALE,
    steps: int = STEPS,
    step_size: float = dream_recipe.STEP_SIZE,
    jitter: int = dream_recipe.JITTER,
    guide: Image.Image | None = None,
    max_size: int | None = None,
    seed: int = dream_recipe.SEED,
    tile_size: int | str | None = dream_recipe.TILE,
    start: int = 0,
    first: Image.Image | None = None,
    device: str | None = None,
) -> Iterator[Frame]:
    """Yield `frames - start` zoom frames, each dreamed, matched to the first frame's colours, then zoomed.

    `layers` cycles through several layers (or "a=1,b=0.5" mixes), switching every `every` frames (default:
    an equal share of the run each). To continue an earlier run, pass its last frame as `image`, the number
    of frames it has as `start` and its first frame as `first`: frame `start` is then that picture zoomed and
    dreamed, exactly as the uninterrupted run would have continued (up to the file's compression).
    """
    dream_recipe.check_settings(octaves, octave_scale, steps, step_size, jitter, tile_size, max_size, seed)
    if not isinstance(frames, int) or frames < 1:
        raise DreamscopeError(f"frames must be a whole number of at least 1, got {frames}")
    if not (math.isfinite(zoom) and 0.5 <= zoom <= 2.0):
        raise DreamscopeError(f"zoom must be from 0.5 to 2.0 (1.04 zooms in 4% a frame; below 1 zooms out), got {zoom}")
    if not math.isfinite(rotate) or abs(rotate) > 45:
        raise DreamscopeError(f"rotate must be from -45 to 45 degrees a frame, got {rotate}")
    if not isinstance(start, int) or not 0 <= start < frames:
        raise DreamscopeError(f"the run already has {start} frames; ask for more than that with --frames")
    cycle = parse_layer_cycle(layers)
    if cycle and layer:
        raise DreamscopeError("give either layer or layers (a cycle), not both")
    if every is not None and (not isinstance(every, int) or every < 1):
        raise DreamscopeError(f"every must be a whole number of frames, at least 1, got {every}")
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    dream_recipe.check_tiling(net, tile_size)
    image = images.limit_size(image.convert("RGB"), max_size)
    x = images.to_tensor(image, net.device)
    if x.shape[-1] % 2 or x.shape[-2] % 2:  # video encoders want even sides; one pixel less is invisible
        x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    specs = cycle or [layer]
    plans = []
    for spec in specs:  # every layer is checked now, not when its turn comes hours later
        objective = dream_recipe.build_objective(net, x, spec, channels, guide)
        plans.append((objective, dream_recipe.plan_octaves(net, objective, x.shape[-2:], octaves, octave_scale)))
    names = [",".join(plan[0].layers) for plan in plans]
    every = every or max(1, -(-frames // len(plans)))
    reference = None
    if first is not None:
        first_x = images.to_tensor(first.convert("RGB"), net.device)
        if first_x.shape != x.shape:
            raise DreamscopeError(f"the first frame is {first.width}x{first.height} but the last is {x.shape[-1]}x{x.shape[-2]}; not the same run")
        reference = colour_distribution(first_x)
    settings = (steps, step_size, jitter)
    return _frames(net, x, plans, names, every, frames, start, zoom, rotate, settings, seed, tile_size, reference)


def _frames(net, x, plans, names, every, frames, start, zoom, rotate, settings, seed, tile_size, reference) -> Iterator[Frame]:
    steps, step_size, jitter = settings
    for index in range(start, frames):
        if index > 0:
            x = zoom_rotate(x, zoom, rotate)
        turn = (index // every) % len(plans)
        objective, sizes = plans[turn]
        generator = torch.Generator().manual_seed(seed + index)  # per frame: a resumed run draws the same jitter
        for event in dream_recipe.dream_tensor(net, objective, x, sizes, steps, step_size, jitter, generator, tile_size, soft_bounds=True):
            pass
        x = event.tensor
        if reference is None:
            reference = colour_distribution(x)
        else:
            x = match_distribution(x, reference)
        yield Frame(index, frames, x, names[turn])
