"""DeepDream a photo: amplify what chosen layers see, octave by octave, carrying only the added detail upward."""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from PIL import Image

from .. import images, objectives, render
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, load_model
from ..render import Progress

# Defaults shared by the Python API and the CLI (the CLI reads them from here).
OCTAVES = 4
OCTAVE_SCALE = 1.4
STEPS = 10
STEP_SIZE = 0.015
JITTER = 32
SEED = 0
TILE = "auto"  # tiles only when a picture is big enough for memory to matter
AUTO_TILE_SIZE = 384  # measured: the lowest 4K peak memory without losing speed (2.0 GiB, see docs/benchmarks.md)
AUTO_TILE_ABOVE = 1024 * 1024  # pixels; an untiled 1 MP step peaks under 2 GiB
GUIDE_SIZE = 448  # the guide is described by its features at about twice the networks' training size


def octave_sizes(height: int, width: int, octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """Sizes (h, w) from smallest to the full size; each is octave_scale times the one before."""
    sizes = []
    for k in reversed(range(octaves)):
        shrink = math.exp(-k * math.log(octave_scale))  # underflows to 0 for absurd settings instead of overflowing
        sizes.append((max(1, round(height * shrink)), max(1, round(width * shrink))))
    return sizes


def check_settings(octaves, octave_scale, steps, step_size, jitter, tile_size, max_size, seed=0) -> None:
    def need(ok: bool, message: str):
        if not ok:
            raise DreamscopeError(message)

    need(isinstance(octaves, int) and octaves >= 1, f"octaves must be a whole number of at least 1, got {octaves}")
    need(math.isfinite(octave_scale) and octave_scale >= 1.0, f"octave scale must be at least 1.0, got {octave_scale}")
    need(isinstance(steps, int) and steps >= 1, f"steps must be a whole number of at least 1, got {steps}")
    need(math.isfinite(step_size) and step_size > 0, f"step size must be a positive number, got {step_size}")
    need(isinstance(jitter, int) and jitter >= 0, f"jitter must be a whole number of pixels, 0 or more, got {jitter}")
    need(tile_size in (None, "auto") or (isinstance(tile_size, int) and tile_size >= 64),
         f"tile size must be 'auto', None (no tiling) or at least 64 px, got {tile_size}")
    need(max_size is None or (isinstance(max_size, int) and max_size >= 32), f"max size must be at least 32 px, got {max_size}")
    need(isinstance(seed, int) and 0 <= seed < 2**63, f"seed must be a whole number from 0 to 2**63-1, got {seed}")


def check_tiling(net: LoadedModel, tile_size) -> None:
    """An explicit tile size on a model that can't tile exactly is refused rather than silently ignored."""
    if isinstance(tile_size, int) and not net.spec.tileable:
        raise DreamscopeError(f"tiling is exact only for EfficientNet-Lite models; {net.name} dreams untiled (use --tile auto or off)")


def build_objective(
    model: LoadedModel,
    photo: torch.Tensor,
    layer: str | Sequence[str] | None,
    channels: str | Sequence[int] | None,
    guide: Image.Image | None,
) -> objectives.Objective:
    """Weighted L2 (or guided) objective over the chosen layers; channel names and indices checked up front."""
    weighted = objectives.parse_layer_weights(layer or model.spec.default_layer)
    infos = [model.layer(name) for name, _ in weighted]
    channel_spec = objectives.parse_channels(channels)
    selected: dict[str, list[int] | None] = {}
    if isinstance(channel_spec, objectives.ChannelRanking):
        with torch.no_grad():
            acts = render.activations(model, [i.name for i in infos], images.resize(photo, _fit(photo, GUIDE_SIZE)))
        for info in infos:
            selected[info.name] = objectives.rank_channels(acts[info.name], channel_spec)
    else:
        for info in infos:
            bad = [c for c in (channel_spec or []) if c >= info.channels]
            if bad:
                raise DreamscopeError(f"channel {bad[0]} is out of range for layer {info.name}, which has channels 0-{info.channels - 1}")
            selected[info.name] = channel_spec
    guide_acts = None
    if guide is not None:
        guide_x = images.to_tensor(guide, model.device)
        with torch.no_grad():
            guide_acts = render.activations(model, [i.name for i in infos], images.resize(guide_x, _fit(guide_x, GUIDE_SIZE)))
    terms = []
    for (name, weight), info in zip(weighted, infos):
        if guide_acts is not None:
            term = objectives.guided(name, guide_acts[name], selected[name])
        else:
            term = objectives.layer_l2(name, selected[name])
        terms.append(weight * term)
    return sum(terms)


def _fit(x: torch.Tensor, longest: int) -> tuple[int, int]:
    height, width = x.shape[-2:]
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def dream_iter(
    image: Image.Image,
    *,
    model: str | LoadedModel = DEFAULT_MODEL,
    layer: str | Sequence[str] | None = None,
    channels: str | Sequence[int] | None = None,
    octaves: int = OCTAVES,
    octave_scale: float = OCTAVE_SCALE,
    steps: int = STEPS,
    step_size: float = STEP_SIZE,
    jitter: int = JITTER,
    guide: Image.Image | None = None,
    max_size: int | None = None,
    seed: int = SEED,
    tile_size: int | str | None = TILE,
    device: str | None = None,
) -> Iterator[Progress]:
    """Dream `image`, yielding a Progress event after every step; the last event has done=True and the result.

    `layer` is a name, "a=1,b=0.5" or a list of such; `channels` is "3,17", "strongest:10", "weakest:10" or a
    list of indices; `guide` pulls the dream toward a guide picture's features. `tile_size`: "auto" tiles
    octaves over a megapixel in 384 px tiles, an int tiles any picture larger than that, None never tiles.
    """
    check_settings(octaves, octave_scale, steps, step_size, jitter, tile_size, max_size, seed)
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    check_tiling(net, tile_size)
    image = images.limit_size(image.convert("RGB"), max_size)
    photo = images.to_tensor(image, net.device)
    objective = build_objective(net, photo, layer, channels, guide)
    sizes = plan_octaves(net, objective, photo.shape[-2:], octaves, octave_scale)
    # Everything above runs now, so mistakes surface before the first step; the steps run as they are consumed.
    return dream_tensor(net, objective, photo, sizes, steps, step_size, jitter, torch.Generator().manual_seed(seed), tile_size)


def plan_octaves(net: LoadedModel, objective: objectives.Objective, size, octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """The octave sizes for a picture of `size` (h, w); refuses a smallest octave too small for the deepest layer."""
    sizes = octave_sizes(size[0], size[1], octaves, octave_scale)
    deepest = max((net.layer(name) for name in objective.layers), key=lambda info: info.stride)
    min_side = max(32, 2 * deepest.stride)
    if min(sizes[0]) < min_side:
        raise DreamscopeError(
            f"the smallest octave would be {sizes[0][1]}x{sizes[0][0]} px, too small for layer {deepest.name} "
            f"(needs {min_side} px per side); use fewer --octaves, a smaller --octave-scale or a larger picture"
        )
    return sizes


def dream_tensor(
    net, objective, photo, sizes, steps, step_size, jitter, generator, tile_size, soft_bounds: bool = False
) -> Iterator[Progress]:
    """The octave loop on a picture tensor (NCHW RGB in [0, 1]) with a prepared objective and octave sizes."""
    detail = torch.zeros_like(images.resize(photo, sizes[0]))
    result = photo
    loss = 0.0
    for octave, size in enumerate(sizes, start=1):
        base = images.resize(photo, size)
        x = (base + images.resize(detail, size)).clamp_(0.0, 1.0)
        tile = tile_size
        if tile == "auto":
            tile = AUTO_TILE_SIZE if size[0] * size[1] > AUTO_TILE_ABOVE else None
        for step, loss, x in render.ascend(net, objective, x, steps, step_size, jitter, generator, tile, soft_bounds):
            yield Progress(octave, len(sizes), step, steps, loss, x)
        detail = x - base  # only what the dream added travels to the next, larger octave
        result = x
    yield Progress(len(sizes), len(sizes), 0, steps, loss, result, done=True)


def dream(image: Image.Image, **settings) -> Image.Image:
    """Dream `image` (a PIL image) and return the result as a PIL image; same settings as `dream_iter`."""
    last = None
    for last in dream_iter(image, **settings):
        pass
    return last.image
