"""DeepDream a photo: amplify what chosen layers see, octave by octave, carrying only the added detail upward."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from PIL import Image

from .. import imaging
from ..errors import SettingsError
from ..events import Event, Run, Stage, finish
from ..fields import ChannelRanking, parse_channels, parse_layer_weights
from ..io import provenance
from ..models import LayerInfo, LoadedModel, precision
from ..optvis import objectives, render
from ..settings import DreamSettings
from . import base

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


def layer_weights(model: LoadedModel, spec: str | None, field: str = "layer") -> list[tuple[LayerInfo, float]]:
    """The feature maps a layer setting names ("a" or "a=1,b=0.5"; default: the model's default layer), each with its
    weight; an unknown name or a layer without positions is refused as the mistake of setting `field`."""
    found = []
    for name, weight in parse_layer_weights(spec or model.spec.default_layer):
        info = base.known_layer(model, field, name)
        if info.stride is None:
            raise SettingsError(field, f"{info.name} is not a feature map (it has no positions to dream on); pick a layer")
        found.append((info, weight))
    return found


def check_plan(
    model: LoadedModel, specs: Iterable[tuple[str | None, str]], settings, size: tuple[int, int] | None = None
) -> None:
    """What a dream asks of the model, for each (layer spec, its setting's name) in `specs` (a zoom cycles through
    several): known feature maps, channels they have, octaves the picture of `size` (width, height, as dreamed) is
    large enough for, and tiles that can be exact."""
    chosen = parse_channels(settings.channels)
    for spec, field in specs:
        weighted = layer_weights(model, spec, field)
        if isinstance(chosen, list):
            for info, _ in weighted:
                base.known_channels(model, "channels", info.name, chosen)
        if size is not None:
            check_octaves(model, [info.name for info, _ in weighted], (size[1], size[0]), settings.octaves, settings.octave_scale)
    if isinstance(getattr(settings, "tile", None), int):
        render.check_tiling(model)


def check(settings: DreamSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do, for inputs of `sizes` (role ->
    (width, height), those known): the dream's layers, channels, octaves and tiles."""
    size = (sizes or {}).get("input")
    check_plan(model, [(settings.layer, "layer")], settings, size and imaging.limited_size(size, settings.max_size))


def build_objective(
    model: LoadedModel,
    photo: torch.Tensor,
    layer: str | None,
    channels: str | None,
    guide: Image.Image | None,
    field: str = "layer",
) -> objectives.Objective:
    """Weighted L2 (or guided) objective over the chosen layers (the setting `field`); names and channels checked
    against the model."""
    weighted = layer_weights(model, layer, field)
    infos = [info for info, _ in weighted]
    channel_spec = parse_channels(channels)
    selected: dict[str, list[int] | None] = {}
    if isinstance(channel_spec, ChannelRanking):
        with torch.no_grad():
            acts = render.activations(model, [i.name for i in infos], imaging.resize(photo, _fit(photo, GUIDE_SIZE)))
        for info in infos:
            selected[info.name] = objectives.rank_channels(acts[info.name], channel_spec)
    else:
        selected = {info.name: channel_spec for info in infos}
    guide_acts = None
    if guide is not None:
        guide_x = imaging.to_tensor(guide.convert("RGB"), model.device)
        with torch.no_grad():
            guide_acts = render.activations(model, [i.name for i in infos], imaging.resize(guide_x, _fit(guide_x, GUIDE_SIZE)))
    terms = []
    for info, weight in weighted:
        name = info.name
        if guide_acts is not None:
            term = objectives.guided(name, guide_acts[name], selected[name])
        else:
            term = objectives.layer_l2(name, selected[name])
        terms.append(weight * term)
    objective = sum(terms)
    objective.check(model)  # channels out of range fail here
    return objective


def _fit(x: torch.Tensor, longest: int) -> tuple[int, int]:
    height, width = x.shape[-2:]
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_octaves(model: LoadedModel, layers: Iterable[str], size: tuple[int, int], octaves: int, octave_scale: float) -> None:
    """Refuse octaves whose smallest is too small for the deepest of `layers` on a picture of `size` (h, w), the
    size it is dreamed at. `plan_octaves` calls it; a front end that knows the size calls it before queueing."""
    sizes = octave_sizes(size[0], size[1], octaves, octave_scale)
    deepest = max((model.layer(name) for name in layers), key=lambda info: info.stride or 0)
    min_side = max(32, 2 * (deepest.stride or 1))
    if min(sizes[0]) < min_side:
        raise SettingsError(
            "octaves",
            f"is too many for this {size[1]}x{size[0]} px picture: the smallest octave would be "
            f"{sizes[0][1]}x{sizes[0][0]} px, too small for layer {deepest.name} (needs "
            f"{min_side} px per side); use fewer {{octaves}}, a smaller {{octave_scale}} or a larger picture",
        )


@dataclass(frozen=True)
class Octave:
    size: tuple[int, int]  # (height, width)
    tile: int | None  # tile size for this octave, or None for untiled


def plan_octaves(model: LoadedModel, objective: objectives.Objective, size, settings) -> list[Octave]:
    """The octaves for a picture of `size` (h, w), smallest first, each with its tiling.

    Refuses a smallest octave too small for the deepest layer, and an explicit tile size that could not be
    exact; "auto" tiles octaves over a megapixel where tiling is exact and runs the rest untiled.
    """
    sizes = octave_sizes(size[0], size[1], settings.octaves, settings.octave_scale)
    check_octaves(model, objective.layers, size, settings.octaves, settings.octave_scale)
    if isinstance(settings.tile, int):
        render.check_tiling(model, objective)
        return [Octave(s, settings.tile) for s in sizes]
    auto = settings.tile == "auto" and render.can_tile(model, objective)
    return [Octave(s, AUTO_TILE_SIZE if auto and s[0] * s[1] > AUTO_TILE_ABOVE else None) for s in sizes]


def octave_dream(
    model: LoadedModel,
    objective: objectives.Objective,
    photo: torch.Tensor,
    plan: list[Octave],
    *,
    steps: int,
    step_size: float,
    jitter: int,
    generator: torch.Generator,
    soft_bounds: bool = False,
    weights: torch.Tensor | None = None,
) -> Iterator[Event]:
    """The octave loop on a picture tensor (NCHW RGB in [0, 1]); the last event's result is the dreamed tensor.

    `weights` (1, 1, H, W) scales each pixel's step (`render.ascend`), resized to every octave.

    The fraction done counts pixel-steps, so it tracks time: the last octave is the largest and slowest.
    """
    work = [octave.size[0] * octave.size[1] for octave in plan]
    total, done = sum(work), 0
    detail = torch.zeros_like(imaging.resize(photo, plan[0].size))
    x, loss = photo, None
    for number, octave in enumerate(plan, start=1):
        base_x = imaging.resize(photo, octave.size)
        x = (base_x + imaging.resize(detail, octave.size)).clamp_(0.0, 1.0)
        stage = Stage("octave", number, len(plan))
        for event in render.ascend(
            model,
            objective,
            x,
            steps=steps,
            step_size=step_size,
            jitter=jitter,
            generator=generator,
            tile=octave.tile,
            soft_bounds=soft_bounds,
            weights=None if weights is None else imaging.resize(weights, octave.size),
        ):
            x, loss = event.picture, event.loss
            yield event.nested(stage, done / total, work[number - 1] / total)
        done += work[number - 1]
        detail = x - base_x  # only what the dream added travels to the next, larger octave
    yield finish(x, picture=x, loss=loss)


def dream_iter(
    image: Image.Image,
    settings: DreamSettings | None = None,
    *,
    guide: Image.Image | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Dream `image` (a PIL image): a Run of events, the last with `done=True` and the dreamed PIL image.

    `settings` (a DreamSettings) and/or its fields as keywords: `layer` is a name or "a=1,b=0.5"; `channels` is
    "3,17", "strongest:10" or "weakest:10"; `tile` "auto" tiles octaves over a megapixel in 384 px tiles, a
    number tiles any picture larger than that, None never tiles. `guide` pulls the dream toward a guide
    picture's features. Everything is checked now, before the first step; the steps run as events are consumed.
    """
    settings, net = base.prepare(DreamSettings, settings, fields, model, device)
    check(settings, net, {"input": image.size})
    photo = imaging.limit_size(image.convert("RGB"), settings.max_size)
    x = imaging.to_tensor(photo, net.device)
    objective = build_objective(net, x, settings.layer, settings.channels, guide)
    plan = plan_octaves(net, objective, x.shape[-2:], settings)
    dreamer = precision.at(net, settings.precision)
    record = provenance.make(settings, net, {"input": image, "guide": guide}, precision=precision.name_of(dreamer))
    events = octave_dream(
        dreamer,
        objective,
        x,
        plan,
        steps=settings.steps,
        step_size=settings.step_size,
        jitter=settings.jitter,
        generator=base.generator(settings.seed),
    )
    return Run(_dreamed(events, record), settings, record, net)


def _dreamed(events: Iterator[Event], record: provenance.Record) -> Iterator[Event]:
    for event in events:
        if not event.done:
            yield event
            continue
        picture = imaging.to_pil(event.tensor)
        picture.info[provenance.KEY] = record.to_text()  # dreamscope.save and the CLI write it into the file
        yield finish(picture, picture=event.tensor, loss=event.loss)


def dream(image: Image.Image, settings: DreamSettings | None = None, **options) -> Image.Image:
    """Dream `image` and return the result as a PIL image; takes what `dream_iter` takes."""
    return dream_iter(image, settings, **options).result()
