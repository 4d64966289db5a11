"""Visualize what a network has learned: pictures, grown from noise, that maximize a class, channel or neuron.

Natural-image priors make the result readable: a 1/f spectrum with decorrelated colour (`params.FourierImage`)
and transformation robustness (`transforms.robustness`). Without them (`param="pixels", robust=False`) the
optimization finds adversarial noise that excites the network but shows nothing (see `compare_priors`).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from PIL import Image

from .. import images, objectives, params, render, transforms
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, load_model
from ..render import Progress

SIZE = 224
STEPS = 300
LEARNING_RATE = 0.05
SEED = 0


def target_objective(target: str | int | objectives.Objective) -> objectives.Objective:
    """An Objective as is; otherwise a class name or index."""
    if isinstance(target, objectives.Objective):
        return target
    return objectives.class_logit(target)


def unit(model: LoadedModel, spec: str, kind: str = "channel") -> objectives.Objective:
    """'layer:index' -> channel or neuron objective, with the layer and index checked against the model."""
    layer, index = objectives.parse_unit(spec)
    info = model.layer(layer)
    if index >= info.channels:
        raise DreamscopeError(f"channel {index} is out of range for layer {layer}, which has channels 0-{info.channels - 1}")
    return objectives.neuron(layer, index) if kind == "neuron" else objectives.channel(layer, index)


def channel_sheet(model: LoadedModel, layer: str, channels: int | Sequence[int]) -> objectives.Objective:
    """One objective for a batch: picture i maximizes the i-th channel of `layer` in `channels` (a list of
    indices, or a count: the first that many)."""
    info = model.layer(layer)
    chosen = list(range(min(channels, info.channels))) if isinstance(channels, int) else list(channels)
    bad = [c for c in chosen if not 0 <= c < info.channels]
    if bad:
        raise DreamscopeError(f"channel {bad[0]} is out of range for layer {layer}, which has channels 0-{info.channels - 1}")
    return objectives.Objective(
        lambda a: torch.stack([a[layer][i, c].mean() for i, c in enumerate(chosen)]).sum(), [layer],
        f"channels({layer}:{','.join(map(str, chosen))})",
    )


def check(size, samples, steps, learning_rate, diversity, param) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if min(height, width) < 64 or max(height, width) > 2048:
        raise DreamscopeError(f"size must be from 64 to 2048 px, got {height}x{width}")
    if not isinstance(samples, int) or not 1 <= samples <= 64:
        raise DreamscopeError(f"samples must be a whole number from 1 to 64, got {samples}")
    if not isinstance(steps, int) or steps < 1:
        raise DreamscopeError(f"steps must be a whole number of at least 1, got {steps}")
    if not learning_rate > 0:
        raise DreamscopeError(f"learning rate must be positive, got {learning_rate}")
    if not diversity >= 0:
        raise DreamscopeError(f"diversity must be 0 or more, got {diversity}")
    if param not in ("fft", "pixels"):
        raise DreamscopeError(f"param must be 'fft' or 'pixels', got {param!r}")
    return height, width


def visualize_iter(
    target: str | int | objectives.Objective,
    *,
    model: str | LoadedModel = DEFAULT_MODEL,
    size: int | tuple[int, int] = SIZE,
    samples: int = 1,
    diversity: float = 0.0,
    diversity_layer: str | None = None,
    param: str = "fft",
    robust: bool = True,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    init: Image.Image | None = None,
    seed: int = SEED,
    device: str | None = None,
) -> Iterator[Progress]:
    """Grow `samples` pictures that maximize `target` (a class name or index, or any Objective).

    `diversity` > 0 rewards the samples for differing in style at `diversity_layer` (default: the model's
    dream layer). `init` starts from a photo instead of noise. Events as in `dream_iter`; `event.tensor` holds
    the whole batch.
    """
    height, width = check(size, samples, steps, learning_rate, diversity, param)
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    objective = target_objective(target)
    for name in objective.layers:
        if name != objectives.IMAGE:
            net.layer(name)  # unknown names fail here, before any work
    if diversity > 0:
        objective = objective + diversity * objectives.diversity(diversity_layer or net.spec.default_layer)
    generator = torch.Generator().manual_seed(seed)
    start = None
    if init is not None:
        start = images.to_tensor(init.convert("RGB").resize((width, height), Image.LANCZOS))
    picture = params.make_param(param, samples, height, width, generator, start).to(net.device)
    transform = transforms.robustness if robust else None
    return render.optimize(net, objective, picture, steps, learning_rate, generator, transform)


def visualize(target, **settings) -> list[Image.Image]:
    """Like `visualize_iter`, but returns the finished pictures (one per sample) as PIL images."""
    last = None
    for last in visualize_iter(target, **settings):
        pass
    return [images.to_pil(last.tensor[i : i + 1]) for i in range(last.tensor.shape[0])]


def contact_sheet(pictures: Sequence[Image.Image], columns: int | None = None, gap: int = 4) -> Image.Image:
    """Pictures in a grid, left to right, top to bottom."""
    columns = columns or max(1, round(len(pictures) ** 0.5))
    rows = -(-len(pictures) // columns)
    width, height = pictures[0].size
    sheet = Image.new("RGB", (columns * width + (columns - 1) * gap, rows * height + (rows - 1) * gap), "white")
    for i, picture in enumerate(pictures):
        sheet.paste(picture, ((i % columns) * (width + gap), (i // columns) * (height + gap)))
    return sheet
