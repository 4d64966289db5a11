"""Probe a photo layer by layer: what the network sees at each depth, from strokes to eyes to objects.

For every chosen layer, shallow to deep: the photo dreamed at that layer (identical settings and seed for all,
so the pictures compare), the channels that respond most strongly to the photo, each with a feature
visualization (what the channel looks for) and a heat map (where in the photo it fires); plus the network's
top classes. `pages/probe.py` turns the result into an HTML page and a contact sheet.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from PIL import Image

from .. import imaging
from ..events import Event, Run, Stage, finish, nest
from ..io import folders, provenance
from ..models import LayerInfo, LoadedModel, precision
from ..models.custom import block_chain, is_block
from ..optvis import objectives, render
from ..settings import DreamSettings, ProbeSettings
from . import base
from . import dream as dream_recipe
from . import exemplars as exemplars_recipe
from . import visualize as visualize_recipe
from .classify import Prediction, classify

# The defaults (ProbeSettings): the visualization settings are reduced from visualize's (224 px, 300 steps) so a
# default report of a 512 px photo takes under a minute on 2 CPU cores; at 128 px and 128 steps the pictures
# still show each channel's pattern (see README).
LAYER_COUNT = 6
TOP_CLASSES = 5
HEATMAP_SIZE = 256  # longest side: the page shows heat maps small, the dreams large
# The folder pass's share of the progress bar: a default probe layer (a dream and its channels' pictures) takes
# about as long as reading and evaluating 300 pictures at 224 px on 2 CPU cores.
PICTURES_PER_LAYER = 300

# Heat map colours from cold to hot (an "inferno"-like ramp): dark where the channel is silent.
HEAT_COLOURS = torch.tensor([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]) / 255.0


@dataclass(frozen=True)
class ChannelProbe:
    index: int
    strength: float  # mean squared activation on the photo (the ranking score), relative to the layer's average channel
    heatmap: Image.Image  # the photo, greyed, with the channel's activation overlaid
    visualization: Image.Image | None  # a picture grown from noise that maximizes the channel
    exemplars: tuple[exemplars_recipe.Exemplar, ...] = ()  # the patches of the exemplar folder that excite it most


@dataclass(frozen=True)
class LayerProbe:
    name: str
    channels: int
    stride: int
    dream: Image.Image
    top: list[ChannelProbe]


@dataclass(frozen=True)
class ProbeResult:
    photo: Image.Image  # as probed (after max_size)
    model: str
    predictions: list[Prediction]
    layers: list[LayerProbe]
    settings: ProbeSettings
    record: provenance.Record
    exemplars: exemplars_recipe.ExemplarsResult | None = None  # with an exemplar folder: what was read and skipped

    @property
    def facts(self) -> dict:
        """Every setting, the layers as probed and what ran them: the report's table. The exemplar settings only
        with an exemplar folder: without one, the table is as it was before exemplars existed."""
        unused = ("recipe",) + (("exemplar_folder", "exemplar_count") if self.settings.exemplar_folder is None else ())
        return {
            **{k: v for k, v in self.settings.to_json().items() if k not in unused},
            "layers": [layer.name for layer in self.layers],
            "photo_size": list(self.photo.size),
            "device": self.record.device,
            "threads": self.record.threads,
            "dreamscope": self.record.dreamscope,
            "torch": self.record.torch,
            # what ran, not the setting ("auto" chooses by CPU)
            **({"precision": self.record.precision} if self.record.precision else {}),
        }


def default_layers(model: LoadedModel, count: int = LAYER_COUNT) -> list[str]:
    """Layers that show the progression: the last layer of each stage (the name up to its first '.' or '/').

    Consecutive layers of one stage dream nearly alike; stage ends differ (for EfficientNet-Lite: fine
    texture, stripes, swirls, patterns, eyes, fur and object parts). The first stage (the stem: colour noise)
    is skipped, and so are the stages after the first one at the deepest stride, which dream alike. Of more
    than `count` stages, `count` are spread evenly from shallow to deep.
    """
    chain = block_chain(model.layers)  # a transformer: every block has one stride; spread over its blocks
    if chain:
        return [chain[round(i * (len(chain) - 1) / max(1, count - 1))] for i in range(min(count, len(chain)))]
    last: dict[str, LayerInfo] = {}
    for name, info in model.layers.items():  # shallow to deep
        last[_stage(name)] = info
    modules = dict(model.net.named_modules())
    blocks = [info for stage, info in last.items() if stage in modules and is_block(modules[stage])]
    if len(blocks) >= 3:  # a network of stages (a ResNet's layer1-4): not its stem's conv, norm and pool
        stages = blocks
    else:
        stages = list(last.values())[1:] or list(last.values())
    deepest = max(info.stride for info in stages)
    stages = stages[: next(i for i, info in enumerate(stages) if info.stride == deepest) + 1]
    if len(stages) > count:
        stages = [stages[round(i * (len(stages) - 1) / max(1, count - 1))] for i in range(count)]
    return [info.name for info in stages]


def _stage(name: str) -> str:
    """The stage a layer is in: its name up to the first '.' or '/' ("stage4.2" -> "stage4", "layer3.5.conv1" ->
    "layer3"), or up to the number after it where the stages are numbered children ("stages.2.blocks.1" ->
    "stages.2", "features.5.1" -> "features.5")."""
    parts = re.split(r"[./]", name)
    if len(parts) > 1 and parts[1].isdigit() and not parts[0][-1:].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def parse_layers(model: LoadedModel, layers: str | None) -> list[str]:
    """'a,b,c' -> known layer names, shallow to deep, without repeats; unknown names fail here."""
    if layers is None:
        return default_layers(model)
    names = [name.strip() for name in layers.split(",") if name.strip()]
    for name in names:
        base.known_layer(model, "layers", name)  # with the closest names
    order = list(model.layers)
    return sorted(dict.fromkeys(names), key=order.index)


def check(settings: ProbeSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do: every layer, dreamed on its own (its
    octaves checked for the input's size, a deep layer needing a larger picture than a shallow one)."""
    size = (sizes or {}).get("input")
    dream_recipe.check_plan(
        model,
        [(name, "layers") for name in parse_layers(model, settings.layers)],
        _dream_settings(settings),
        size and imaging.limited_size(size, settings.max_size),
    )


def _dream_settings(settings: ProbeSettings) -> DreamSettings:
    """The dream each layer gets: the probe's own dream settings."""
    return DreamSettings.build(
        None,
        {
            k: getattr(settings, k)
            for k in ("model", "weights", "seed", "octaves", "octave_scale", "steps", "step_size", "jitter")
        },
    )


def probe_iter(
    image: Image.Image,
    settings: ProbeSettings | None = None,
    *,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Probe `image` at `layers` (default: `default_layers`): a Run of events; the last has the ProbeResult.

    `channels` is how many of each layer's strongest channels to show (0: dreams and classes only, which is
    all a contact sheet needs). The dream settings are as for `dream_iter`; `vis_size` and `vis_steps` set the
    channels' feature visualizations. With `exemplar_folder`, one pass over its pictures finds each shown
    channel's `exemplar_count` natural exemplars (see `exemplars.py`). Every setting is checked, for every
    layer, before any work starts.
    """
    settings, net = base.prepare(ProbeSettings, settings, fields, model, device)
    check(settings, net, {"input": image.size})
    names = parse_layers(net, settings.layers)
    photo = imaging.limit_size(image.convert("RGB"), settings.max_size)
    photo_x = imaging.to_tensor(photo, net.device)
    dream = _dream_settings(settings)
    plans = []
    for name in names:  # a deep layer that needs a larger picture fails now, not after the shallow ones ran
        objective = dream_recipe.build_objective(net, photo_x, name, None, None)
        plans.append((objective, dream_recipe.plan_octaves(net, objective, photo_x.shape[-2:], dream)))
    dreamer = precision.at(net, settings.precision)
    record = provenance.make(settings, net, {"input": image}, precision=precision.name_of(dreamer))
    scan = None
    if settings.exemplar_folder is not None:
        scan = folders.scan(settings.exemplar_folder, net.spec.resolution)  # a missing or empty folder fails now
    return Run(_probe(net, dreamer, photo, photo_x, names, plans, settings, record, scan), settings, record, net)


def _probe(net, dreamer, photo, photo_x, names, plans, settings: ProbeSettings, record, scan) -> Iterator[Event]:
    per_dream = settings.octaves * settings.steps
    per_layer = per_dream + (settings.vis_steps if settings.channels else 0)
    share = len(scan.files) / (len(scan.files) + PICTURES_PER_LAYER * len(names)) if scan is not None else 0.0
    width = (1.0 - share) / len(names)  # of the progress bar, per layer
    predictions = classify(photo, model=net, top=TOP_CLASSES)
    probes = []
    for number, (name, (objective, plan)) in enumerate(zip(names, plans), start=1):
        stage = Stage("layer", number, len(names), name)
        at = (number - 1) * width
        dreamed = dream_recipe.octave_dream(
            dreamer,
            objective,
            photo_x,
            plan,
            steps=settings.steps,
            step_size=settings.step_size,
            jitter=settings.jitter,
            generator=base.generator(settings.seed),
        )
        dream_x = yield from nest(dreamed, stage, at, per_dream / per_layer * width)
        top = []
        if settings.channels:
            top = yield from _channels(
                net, photo_x, name, settings, stage, at + per_dream / per_layer * width, settings.vis_steps / per_layer * width
            )
        info = net.layer(name)
        probes.append(LayerProbe(name, info.channels, info.stride, imaging.to_pil(dream_x), top))
    found = None
    if scan is not None:
        probes, found = yield from _exemplars(net, scan, probes, settings, 1.0 - share, share)
    yield finish(ProbeResult(photo, net.name, predictions, probes, settings, record, found))


def _exemplars(net, scan: folders.Scan, probes: list[LayerProbe], settings: ProbeSettings, at: float, span: float):
    """One pass over the exemplar folder for every shown channel of every layer at once; the layers with each
    channel's exemplars, and what was found (read, skipped)."""
    units = [(layer.name, channel.index) for layer in probes for channel in layer.top]
    searched = exemplars_recipe.search(net, scan, units, settings.exemplar_count)
    found = yield from nest(searched, Stage("exemplars", 1, 1, scan.root.name), at, span)
    for note in exemplars_recipe.skipped_notes(found.skipped):
        yield Event(fraction=at + span, note=note)  # where the bar is: a note must not move it back
    probes = [
        dataclasses.replace(
            layer,
            top=[
                dataclasses.replace(channel, exemplars=tuple(found.units[(layer.name, channel.index)])) for channel in layer.top
            ],
        )
        for layer in probes
    ]
    return probes, found


def _channels(net, photo_x, name, settings: ProbeSettings, stage: Stage, at: float, span: float):
    """The layer's strongest channels on the photo, each with its feature visualization and heat map."""
    with torch.no_grad():
        activation = render.activations(net, [name], photo_x)[name]
    ranked = objectives.rank_channels(activation, objectives.ChannelRanking(True, settings.channels))
    strengths = activation.pow(2).mean(dim=(0, 2, 3))  # rank_channels' score
    strengths = strengths / strengths.mean().clamp(min=1e-12)
    visualized = visualize_recipe.visualize_iter(
        objectives.channel_sheet(name, ranked),
        model=net,
        size=settings.vis_size,
        steps=settings.vis_steps,
        seed=settings.seed,
        samples=len(ranked),
        precision=settings.precision,
    )
    pictures = yield from nest(visualized, stage, at, span)
    return [
        ChannelProbe(index, float(strengths[index]), heatmap(photo_x, activation[:, index]), pictures[i])
        for i, index in enumerate(ranked)
    ]


def probe(image: Image.Image, settings: ProbeSettings | None = None, **options) -> ProbeResult:
    """Like `probe_iter`, but returns the finished `ProbeResult`."""
    return probe_iter(image, settings, **options).result()


def heatmap(photo: torch.Tensor, activation: torch.Tensor, longest: int = HEATMAP_SIZE) -> Image.Image:
    """Where a channel fires: its activation (1, h, w), scaled to its peak, coloured over the greyed photo."""
    height, width = photo.shape[-2:]
    scale = min(1.0, longest / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    base = imaging.resize(photo, size).cpu()
    heat = activation.detach().float().cpu().clamp(min=0).unsqueeze(0)  # negative responses mean "not here"
    heat = torch.nn.functional.interpolate(heat, size=size, mode="bilinear", align_corners=False)[0, 0]
    # Scaled to a high percentile, not the peak: at shallow layers a few extreme pixels would leave the rest
    # dark. Never below a fifth of the peak, so a channel that fires in one small spot does not flood the map.
    scale = torch.maximum(torch.quantile(heat.flatten(), 0.99), 0.2 * heat.max()).clamp(min=1e-8)
    heat = (heat / scale).clamp(max=1.0)
    colour = _colourize(heat)
    grey = base.mul(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    alpha = heat.sqrt()  # lifts the mid tones so moderate responses stay visible over the photo
    mixed = 0.55 * grey * (1 - alpha) + colour * alpha
    return imaging.to_pil(mixed)


def _colourize(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] (h, w) -> RGB (1, 3, h, w) along HEAT_COLOURS, linearly between its stops."""
    stops = HEAT_COLOURS.shape[0] - 1
    position = values.clamp(0, 1) * stops
    lower = position.floor().long().clamp(max=stops - 1)
    weight = (position - lower).unsqueeze(-1)
    rgb = HEAT_COLOURS[lower] * (1 - weight) + HEAT_COLOURS[lower + 1] * weight
    return rgb.permute(2, 0, 1).unsqueeze(0)
