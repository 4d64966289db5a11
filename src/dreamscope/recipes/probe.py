"""Probe a photo layer by layer: what the network sees at each depth, from strokes to eyes to objects.

For every chosen layer, shallow to deep: the photo dreamed at that layer (identical settings and seed for all,
so the pictures compare), the channels that respond most strongly to the photo, each with a feature
visualization (what the channel looks for) and a heat map (where in the photo it fires); plus the network's
top classes. `report.py` turns the result into an HTML page and a contact sheet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from PIL import Image

from .. import images, objectives, render
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LayerInfo, LoadedModel, load_model
from . import dream as dream_recipe
from . import visualize as visualize_recipe
from .classify import Prediction, classify

# Defaults shared by the Python API and the CLI. The visualization settings are reduced from visualize's
# (224 px, 300 steps) so a default report of a 512 px photo takes under 3 minutes on 2 CPU cores; at 128 px
# and 128 steps the pictures still show each channel's pattern (see README).
LAYER_COUNT = 6
CHANNELS = 4
MAX_SIZE = 512
VIS_SIZE = 128
VIS_STEPS = 128
TOP_CLASSES = 5
HEATMAP_SIZE = 256  # longest side: the page shows heat maps small, the dreams large

# Heat map colours from cold to hot (an "inferno"-like ramp): dark where the channel is silent.
HEAT_COLOURS = torch.tensor([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]) / 255.0


@dataclass(frozen=True)
class ChannelProbe:
    index: int
    strength: float  # mean squared activation on the photo (the ranking score), relative to the layer's average channel
    heatmap: Image.Image  # the photo, greyed, with the channel's activation overlaid
    visualization: Image.Image | None  # a picture grown from noise that maximizes the channel


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
    settings: dict  # every setting that shapes the result, so the report can say how to reproduce it


@dataclass
class ProbeProgress:
    """One step of the probe. `done` counts dream and visualization steps out of `total` across all layers."""

    layer: str
    layer_number: int  # 1-based
    layers: int
    stage: str  # "dreaming" or "visualizing"; "done" for the last event
    done: int
    total: int
    result: ProbeResult | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def default_layers(model: LoadedModel, count: int = LAYER_COUNT) -> list[str]:
    """Layers that show the progression: the last layer of each stage (the name up to its first '.' or '/').

    Consecutive layers of one stage dream nearly alike; stage ends differ (for EfficientNet-Lite: fine
    texture, stripes, swirls, patterns, eyes, fur and object parts). The first stage (the stem: colour noise)
    is skipped, and so are the stages after the first one at the deepest stride, which dream alike. Of more
    than `count` stages, `count` are spread evenly from shallow to deep.
    """
    last: dict[str, LayerInfo] = {}
    for name, info in model.layers.items():  # shallow to deep
        last[re.split(r"[./]", name, maxsplit=1)[0]] = info
    stages = list(last.values())[1:] or list(last.values())
    deepest = max(info.stride for info in stages)
    stages = stages[: next(i for i, info in enumerate(stages) if info.stride == deepest) + 1]
    if len(stages) > count:
        stages = [stages[round(i * (len(stages) - 1) / max(1, count - 1))] for i in range(count)]
    return [info.name for info in stages]


def parse_layers(model: LoadedModel, layers: str | Sequence[str] | None) -> list[str]:
    """'a,b,c' or a list -> known layer names, shallow to deep, without repeats; unknown names fail here."""
    if layers is None:
        return default_layers(model)
    names = layers.split(",") if isinstance(layers, str) else list(layers)
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise DreamscopeError("no layers given; name them like stage2.1,stage4.2 (list them with: dreamscope layers)")
    for name in names:
        model.layer(name)  # raises with the closest names
    order = list(model.layers)
    return sorted(dict.fromkeys(names), key=order.index)


def probe_iter(
    image: Image.Image,
    *,
    model: str | LoadedModel = DEFAULT_MODEL,
    layers: str | Sequence[str] | None = None,
    channels: int = CHANNELS,
    octaves: int = dream_recipe.OCTAVES,
    octave_scale: float = dream_recipe.OCTAVE_SCALE,
    steps: int = dream_recipe.STEPS,
    step_size: float = dream_recipe.STEP_SIZE,
    jitter: int = dream_recipe.JITTER,
    max_size: int | None = MAX_SIZE,
    vis_size: int = VIS_SIZE,
    vis_steps: int = VIS_STEPS,
    seed: int = dream_recipe.SEED,
    device: str | None = None,
) -> Iterator[ProbeProgress]:
    """Probe `image` at `layers` (default: `default_layers`), yielding progress; the last event has the result.

    `channels` is how many of each layer's strongest channels to show (0: dreams and classes only, which is
    all a contact sheet needs). The dream settings are `dream_iter`'s; `vis_size` and `vis_steps` set the
    channels' feature visualizations. Every setting is checked, for every layer, before any work starts.
    """
    from .. import __version__  # here, not at import: the package imports its recipes before defining it

    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    names = parse_layers(net, layers)
    if not isinstance(channels, int) or not 0 <= channels <= 64:
        raise DreamscopeError(f"channels must be a whole number from 0 to 64, got {channels}")
    if channels:
        if not isinstance(vis_size, int) or not 64 <= vis_size <= 2048:
            raise DreamscopeError(f"the channels' pictures (--vis-size) must be from 64 to 2048 px, got {vis_size}")
        visualize_recipe.check(vis_size, channels, vis_steps, visualize_recipe.LEARNING_RATE, 0.0, "fft")
    photo = images.limit_size(image.convert("RGB"), max_size)
    dream_settings = dict(octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size,
                          jitter=jitter, seed=seed)
    # dream_iter checks its settings against each layer now (too small a picture for a deep layer, ...) and
    # only dreams when consumed, so a mistake surfaces before the first layer's work.
    dreams = [dream_recipe.dream_iter(photo, model=net, layer=name, **dream_settings) for name in names]
    settings = {
        "model": net.name, "layers": names, "channels": channels, "octaves": octaves, "octave_scale": octave_scale,
        "steps": steps, "step_size": step_size, "jitter": jitter, "max_size": max_size, "vis_size": vis_size,
        "vis_steps": vis_steps, "seed": seed, "device": str(net.device), "photo_size": list(photo.size),
        "dreamscope": __version__, "torch": torch.__version__,
    }
    return _probe(net, photo, names, dreams, channels, vis_size, vis_steps, seed, settings)


def _probe(net, photo, names, dreams, channels, vis_size, vis_steps, seed, settings) -> Iterator[ProbeProgress]:
    per_dream = settings["octaves"] * settings["steps"]
    total = len(names) * (per_dream + (vis_steps if channels else 0))
    done = 0
    predictions = classify(photo, model=net, top=TOP_CLASSES)
    photo_x = images.to_tensor(photo, net.device)
    probes = []
    for number, (name, dream_events) in enumerate(zip(names, dreams), start=1):
        for event in dream_events:
            if event.done:
                dreamed = event.image
            else:
                done += 1
                yield ProbeProgress(name, number, len(names), "dreaming", done, total)
        top = []
        if channels:
            with torch.no_grad():
                activation = render.activations(net, [name], photo_x)[name]
            ranked = objectives.rank_channels(activation, objectives.ChannelRanking(True, channels))
            strengths = activation.pow(2).mean(dim=(0, 2, 3))  # rank_channels' score
            strengths = strengths / strengths.mean().clamp(min=1e-12)
            pictures = None
            for event in visualize_recipe.visualize_iter(
                visualize_recipe.channel_sheet(net, name, ranked), model=net, size=vis_size, samples=len(ranked), steps=vis_steps, seed=seed
            ):
                done += 1
                pictures = event.tensor
                yield ProbeProgress(name, number, len(names), "visualizing", done, total)
            top = [
                ChannelProbe(index, float(strengths[index]), heatmap(photo_x, activation[:, index]), images.to_pil(pictures[i : i + 1]))
                for i, index in enumerate(ranked)
            ]
        info = net.layer(name)
        probes.append(LayerProbe(name, info.channels, info.stride, dreamed, top))
    result = ProbeResult(photo, net.name, predictions, probes, settings)
    yield ProbeProgress(names[-1], len(names), len(names), "done", total, total, result)


def probe(image: Image.Image, **settings) -> ProbeResult:
    """Like `probe_iter`, but returns the finished `ProbeResult`."""
    last = None
    for last in probe_iter(image, **settings):
        pass
    return last.result


def heatmap(photo: torch.Tensor, activation: torch.Tensor, longest: int = HEATMAP_SIZE) -> Image.Image:
    """Where a channel fires: its activation (1, h, w), scaled to its peak, coloured over the greyed photo."""
    height, width = photo.shape[-2:]
    scale = min(1.0, longest / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    base = images.resize(photo, size).cpu()
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
    return images.to_pil(mixed)


def _colourize(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] (h, w) -> RGB (1, 3, h, w) along HEAT_COLOURS, linearly between its stops."""
    stops = HEAT_COLOURS.shape[0] - 1
    position = values.clamp(0, 1) * stops
    lower = position.floor().long().clamp(max=stops - 1)
    weight = (position - lower).unsqueeze(-1)
    rgb = HEAT_COLOURS[lower] * (1 - weight) + HEAT_COLOURS[lower + 1] * weight
    return rgb.permute(2, 0, 1).unsqueeze(0)
