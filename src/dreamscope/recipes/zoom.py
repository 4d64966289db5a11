"""Endless zoom: dream a picture, zoom and turn it a little about its centre, dream the result, and so on.

Each frame is a short dream on top of the last one, so the deep structure accumulates. Left alone such a
loop drifts: colours burn out at the bounds, brightness creeps and zoom resampling softens the picture. Three
things hold it steady: the ascent steps in logit space (`soft_bounds`), every frame's colour distribution is
matched to the first frame's, channel by channel, and the dream itself keeps restoring fine detail.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
import torch.nn.functional as F
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish, nest
from ..io import provenance
from ..models import LoadedModel, precision
from ..settings import ZoomSettings
from . import base
from . import dream as dream_recipe


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


def layer_specs(settings: ZoomSettings) -> list[tuple[str | None, str]]:
    """The layer specs a zoom cycles through, each with the setting that names it."""
    return [(spec, "layers") for spec in settings.layers.split(",")] if settings.layers else [(settings.layer, "layer")]


def dreamed_size(size: tuple[int, int], settings: ZoomSettings) -> tuple[int, int]:
    """The (width, height) a picture of `size` is zoomed at: limited to max_size, then its sides made even."""
    width, height = imaging.limited_size(size, settings.max_size)
    return width // 2 * 2, height // 2 * 2  # video encoders want even sides; one pixel less is invisible


def check(settings: ZoomSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do: every layer of the cycle (checked now,
    not when its turn comes hours later), channels, octaves for the input's size, tiles."""
    size = (sizes or {}).get("input")
    dream_recipe.check_plan(model, layer_specs(settings), settings, size and dreamed_size(size, settings))


def zoom_iter(
    image: Image.Image,
    settings: ZoomSettings | None = None,
    *,
    guide: Image.Image | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    start: int = 0,
    first: Image.Image | None = None,
    **fields,
) -> Run:
    """Zoom frames from `image`: each dreamed, matched to the first frame's colours, then zoomed for the next.

    A Run of events: the steps of each frame's dream, then an event with `frame` set (its index from 0) and the
    finished frame as its picture. `layers` cycles through several layers (or "a=1,b=0.5" mixes), switching
    every `every` frames (default: an equal share of the run each). To continue an earlier run, pass its last
    frame as `image`, the number of frames it has as `start` and its first frame as `first`: frame `start` is
    then that picture zoomed and dreamed, as the uninterrupted run would have continued (up to the file's
    compression). Use `work.redo.resume_zoom` to continue a video file.
    """
    settings, net = base.prepare(ZoomSettings, settings, fields, model, device)
    if not isinstance(start, int) or not 0 <= start < settings.frames:
        raise SettingsError("frames", f"must be more than the {start} frames the zoom already has")
    check(settings, net, {"input": image.size})
    photo = imaging.limit_size(image.convert("RGB"), settings.max_size)
    width, height = dreamed_size(photo.size, settings)
    x = imaging.to_tensor(photo, net.device)[..., :height, :width]
    plans = []
    for spec, field in layer_specs(settings):
        objective = dream_recipe.build_objective(net, x, spec, settings.channels, guide, field)
        plans.append((objective, dream_recipe.plan_octaves(net, objective, x.shape[-2:], settings), ",".join(objective.layers)))
    reference = None
    if first is not None:
        first_x = imaging.to_tensor(first.convert("RGB"), net.device)
        if first_x.shape != x.shape:
            raise DreamscopeError(
                f"the first frame is {first.width}x{first.height} but the last is {x.shape[-1]}x{x.shape[-2]}; "
                "they are not from the same zoom"
            )
        reference = colour_distribution(first_x)
    dreamer = precision.at(net, settings.precision)
    record = provenance.make(settings, net, {"input": image, "guide": guide}, precision=precision.name_of(dreamer))
    return Run(_frames(dreamer, x, plans, settings, start, reference), settings, record, net)


def _frames(net, x, plans, settings: ZoomSettings, start: int, reference) -> Iterator[Event]:
    frames = settings.frames
    every = settings.every or max(1, -(-frames // len(plans)))
    for index in range(start, frames):
        if index > 0:
            x = zoom_rotate(x, settings.zoom, settings.rotate)
        objective, plan, name = plans[(index // every) % len(plans)]
        stage = Stage("frame", index + 1, frames, name)
        # A generator per frame: a resumed run draws the same jitter as the uninterrupted one did.
        dreamed = dream_recipe.octave_dream(
            net,
            objective,
            x,
            plan,
            steps=settings.steps,
            step_size=settings.step_size,
            jitter=settings.jitter,
            generator=base.generator(settings.seed + index),
            soft_bounds=True,
        )
        x = yield from nest(dreamed, stage, index / frames, 1 / frames)
        if reference is None:
            reference = colour_distribution(x)
        else:
            x = match_distribution(x, reference)
        yield Event((stage,), (index + 1) / frames, None, x, frame=index)
    yield finish(frames - start)
