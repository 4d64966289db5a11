"""The ascent loop: gradient of an objective with respect to the picture, normalized steps, progress events.

Never prints: it yields `Progress` events that the CLI turns into progress bars and notebooks or the web
studio into previews.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Iterator

import torch

from . import images, taps, transforms
from .models import LoadedModel
from .objectives import IMAGE, Objective


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


def _tile_spans(length: int, tile: int, halo: int, align: int) -> list[tuple[int, int, int, int]]:
    """(crop start, crop end, core start, core end) along one axis.

    Starts fall on multiples of `align` and every crop's length is congruent to the whole length modulo
    `align`: TensorFlow "SAME" padding pads a stride-2 convolution on the left only for odd lengths, so this
    keeps each crop's sampling grid identical to the whole picture's at every stride up to `align`.
    """
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        start = max(0, core_start - halo)
        end = min(length, core_end + halo)
        end = min(length, end + (length - (end - start)) % align)
        spans.append((start, end, core_start, core_end))
    return spans


def _cells(pixels: int, stride: int) -> int:
    return -(-pixels // stride)


def objective_gradient(
    model: LoadedModel, objective: Objective, x: torch.Tensor, tile_size: int | None = None, halo: int | None = None
) -> tuple[float, torch.Tensor]:
    """The objective's value and its gradient with respect to x.

    With `tile_size`, a picture larger than one tile is processed tile by tile so memory stays bounded. The
    activations are partitioned: each tile evaluates the objective on the activations of its own core only,
    computed from the core plus `halo` pixels of context (default: 8 strides of the deepest layer, at most
    192 px: under 0.2% gradient error at stride 16), and its gradient is added over the whole crop. So
    every activation counts once, the tile losses add up to the whole picture's, and the gradient differs
    from the untiled one only where the network's zero padding at a crop edge reaches a core activation.
    Crop origins fall on the coarsest stride grid, so convolutions see the same pixel grid as untiled.
    Models whose spec is not `tileable` always run untiled (the recipes refuse an explicit tile size for them).
    """
    height, width = x.shape[-2:]
    if not tile_size or not model.spec.tileable or (height <= tile_size and width <= tile_size):
        x = x.detach().requires_grad_(True)
        loss = objective(activations(model, objective.layers, x))
        (grad,) = torch.autograd.grad(loss, x)
        return float(loss.detach()), grad
    align = max(info.stride for info in model.layers.values())
    tile = max(align, tile_size // align * align)
    strides = {name: model.layer(name).stride for name in objective.layers}
    s = max(strides.values())
    if halo is None:
        halo = min(192, 8 * s)
    halo = -(-halo // align) * align
    grad = torch.zeros_like(x)
    total = 0.0
    for y0, y1, cy0, cy1 in _tile_spans(height, tile, halo, align):
        for x0, x1, cx0, cx1 in _tile_spans(width, tile, halo, align):
            crop = x[..., y0:y1, x0:x1].detach().requires_grad_(True)
            acts = activations(model, objective.layers, crop)
            core = {
                name: a[..., (cy0 - y0) // k : _cells(cy1 - y0, k), (cx0 - x0) // k : _cells(cx1 - x0, k)]
                for name, a, k in ((name, a, strides[name]) for name, a in acts.items())
            }
            # Objectives are means over positions: weight each core by its share of the deepest layer's
            # positions (exact for one layer; for mixed strides the ragged last tiles are off by a rounding).
            share = (_cells(cy1, s) - _cells(cy0, s)) * (_cells(cx1, s) - _cells(cx0, s)) / (_cells(height, s) * _cells(width, s))
            loss = objective(core) * share
            (tile_grad,) = torch.autograd.grad(loss, crop)
            grad[..., y0:y1, x0:x1] += tile_grad
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
    soft_bounds: bool = False,
) -> Iterator[tuple[int, float, torch.Tensor]]:
    """Normalized gradient ascent on pixels: yields (step, loss, picture) after each step.

    `soft_bounds` steps in logit space instead of clamping: a pixel's move shrinks as it nears 0 or 1. A
    single dream clamps about 9% of pixels in some channel; dreams fed back into themselves (zoom, video)
    would pile up at the bounds and burn out, while logit steps keep them within the photo's own 1%.
    """
    x = x.detach()
    for step in range(1, steps + 1):
        shift = transforms.random_shift(generator, jitter)
        loss, grad = objective_gradient(model, objective, transforms.roll(x, shift), tile_size)
        grad = transforms.roll(grad, (-shift[0], -shift[1]))
        if soft_bounds:
            x = x.clamp(_SOFT_EPS, 1.0 - _SOFT_EPS)
            grad.mul_(x * (1.0 - x))  # d(sigmoid)/dz: the gradient with respect to the logit
            # 4 x step_size in logit space moves a mid-grey pixel by step_size, as in the clamped rule.
            grad.mul_(4.0 * step_size / (float(grad.norm(p=1)) / grad.numel() + 1e-12))
            x = torch.sigmoid(torch.logit(x).add_(grad))
        else:
            # Dividing by the mean absolute gradient makes step_size a fraction of the [0, 1] range per step,
            # whatever the layer's scale. In place, since at 4K every full-frame copy is 95 MiB.
            grad.mul_(step_size / (float(grad.norm(p=1)) / grad.numel() + 1e-8))
            x = x.add(grad).clamp_(0.0, 1.0)  # new: yielded ones stay valid
        del grad
        _release_freed_memory()
        yield step, loss, x


_SOFT_EPS = 1e-4  # keeps logits finite for pixels that arrive exactly at 0 or 1


def _release_freed_memory() -> None:
    """Hand memory freed by the last step back to the OS (glibc keeps it otherwise: ~250 MiB at 4K)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only; musl and others have no such function
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


def optimize(
    model: LoadedModel,
    objective: Objective,
    param: torch.nn.Module,
    steps: int,
    learning_rate: float,
    generator: torch.Generator,
    transform=None,
) -> Iterator[Progress]:
    """Adam on an image parameterization to maximize `objective`; yields Progress after every step.

    `transform(x, generator)` is applied to the rendered picture before the network sees it (transformation
    robustness); the untransformed picture is available to objectives as activations["image"].
    """
    optimizer = torch.optim.Adam(param.parameters(), lr=learning_rate)
    layers = [name for name in objective.layers if name != IMAGE]
    for step in range(1, steps + 1):
        picture = param()
        seen = transform(picture, generator) if transform is not None else picture
        acts = activations(model, layers, seen)
        acts[IMAGE] = picture
        loss = objective(acts)
        optimizer.zero_grad(set_to_none=True)
        (-loss).backward()
        optimizer.step()
        yield Progress(1, 1, step, steps, float(loss.detach()), picture.detach())
