"""The ascent loop: gradient of an objective with respect to the picture, normalized steps, progress events.

Never prints: it yields `Progress` events that the CLI turns into progress bars and notebooks or the web
studio into previews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from . import images, taps, transforms
from .models import LoadedModel
from .objectives import Objective


@dataclass
class Progress:
    """One step of a render. `image` is the picture so far (at the current octave's size)."""

    octave: int  # 1-based
    octaves: int
    step: int  # 1-based within the octave; 0 for the final event
    steps: int
    loss: float
    tensor: torch.Tensor
    done: bool = False

    @property
    def image(self):
        return images.to_pil(self.tensor)

    @property
    def fraction(self) -> float:
        return 1.0 if self.done else ((self.octave - 1) * self.steps + self.step) / (self.octaves * self.steps)


def activations(model: LoadedModel, layers, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activations of readable layers for pictures x (RGB in [0, 1]); the forward pass stops at the deepest."""
    infos = [model.layer(name) for name in layers]
    outputs = taps.capture(model.net, [info.module for info in infos], model.to_input(x))
    return {info.name: outputs[info.module] for info in infos}


def _tile_spans(length: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(crop start, crop end, core start, core end) along one axis."""
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        spans.append((max(0, core_start - halo), min(length, core_end + halo), core_start, core_end))
    return spans


def objective_gradient(
    model: LoadedModel, objective: Objective, x: torch.Tensor, tile_size: int | None = None, halo: int = 64
) -> tuple[float, torch.Tensor]:
    """The objective's value and its gradient with respect to x.

    With `tile_size`, a picture larger than one tile is processed tile by tile so memory stays bounded. Each
    tile is run with `halo` pixels of surrounding context and only its core's gradient is kept; tile origins
    fall on the network's coarsest stride grid, so the convolutions see the same pixel grid as the whole
    picture would and the tiled gradient closely matches the untiled one (no seams).
    """
    height, width = x.shape[-2:]
    if not tile_size or (height <= tile_size and width <= tile_size):
        x = x.detach().requires_grad_(True)
        loss = objective(activations(model, objective.layers, x))
        (grad,) = torch.autograd.grad(loss, x)
        return float(loss.detach()), grad
    grad = torch.zeros_like(x)
    total = 0.0
    area = float(height * width)
    for y0, y1, cy0, cy1 in _tile_spans(height, tile_size, halo):
        for x0, x1, cx0, cx1 in _tile_spans(width, tile_size, halo):
            crop = x[..., y0:y1, x0:x1].detach().requires_grad_(True)
            # Objectives are means; weighting by the crop's share of the picture makes the tiles add up.
            loss = objective(activations(model, objective.layers, crop)) * ((y1 - y0) * (x1 - x0) / area)
            (tile_grad,) = torch.autograd.grad(loss, crop)
            grad[..., cy0:cy1, cx0:cx1] = tile_grad[..., cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            total += float(loss.detach())
    return total, grad


def ascend(
    model: LoadedModel,
    objective: Objective,
    x: torch.Tensor,
    steps: int,
    step_size: float,
    jitter: int,
    generator: torch.Generator,
    tile_size: int | None = None,
) -> Iterator[tuple[int, float, torch.Tensor]]:
    """Normalized gradient ascent on pixels: yields (step, loss, picture) after each step."""
    x = x.detach()
    for step in range(1, steps + 1):
        shift = transforms.random_shift(generator, jitter)
        loss, grad = objective_gradient(model, objective, transforms.roll(x, shift), tile_size)
        grad = transforms.roll(grad, (-shift[0], -shift[1]))
        # Dividing by the mean absolute gradient makes step_size a fraction of the [0, 1] range per step,
        # whatever the layer's scale.
        x = (x + step_size * grad / (grad.abs().mean() + 1e-8)).clamp_(0.0, 1.0)  # a new tensor: yielded ones stay valid
        yield step, loss, x
