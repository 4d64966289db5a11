"""Objectives: scalars to maximize, computed from activations keyed by readable layer name.

Objectives compose like numbers (Lucid's algebra): `layer_l2("stage4.2") + 0.5 * layer_l2("stage6.0")`,
`a - b`, `-a`, `a / 2`. Each knows the layers it reads, so the forward pass can stop after the deepest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from .errors import DreamscopeError

Activations = Mapping[str, torch.Tensor]


class Objective:
    def __init__(self, fn: Callable[[Activations], torch.Tensor], layers: Sequence[str], description: str):
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.description = description

    def __call__(self, activations: Activations) -> torch.Tensor:
        return self.fn(activations)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    def __add__(self, other):
        if isinstance(other, (int, float)):
            if other == 0:  # lets sum() start from 0
                return self
            return Objective(lambda a: self(a) + other, self.layers, f"{self.description} + {other}")
        return Objective(lambda a: self(a) + other(a), self.layers + other.layers, f"{self.description} + {other.description}")

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), self.layers, f"-({self.description})")

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, factor: float):
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return Objective(lambda a: factor * self(a), self.layers, f"{factor} * {self.description}")

    __rmul__ = __mul__

    def __truediv__(self, divisor: float):
        return self * (1.0 / divisor)


def _select(activation: torch.Tensor, channels: Sequence[int] | None) -> torch.Tensor:
    return activation if channels is None else activation[:, list(channels)]


def layer_l2(layer: str, channels: Sequence[int] | None = None) -> Objective:
    """Mean squared activation of a layer (optionally only some channels): DeepDream's 'amplify what you see'."""
    label = layer if channels is None else f"{layer}[{','.join(map(str, channels))}]"
    return Objective(lambda a: _select(a[layer], channels).pow(2).mean(), [layer], f"l2({label})")


def guided(layer: str, guide_features: torch.Tensor, channels: Sequence[int] | None = None) -> Objective:
    """Pull each position's feature vector toward its best-matching feature of a guide image.

    As in the original notebook: for every position, find the guide feature with the largest dot product and
    maximize the dot product with it. `guide_features` is the guide's activation at `layer`, shape (1, C, h, w).
    """
    guide = _select(guide_features, channels).flatten(2)[0].detach()  # (C, M)

    def fn(a: Activations) -> torch.Tensor:
        x = _select(a[layer], channels).flatten(2)[0]  # (C, N)
        best = (x.detach().T @ guide).argmax(dim=1)  # (N,) index of the best guide feature per position
        return (x * guide[:, best]).sum(0).mean()

    return Objective(fn, [layer], f"guided({layer})")


@dataclass(frozen=True)
class ChannelRanking:
    """`strongest:K` / `weakest:K`: the K channels with the largest / smallest mean squared activation."""

    strongest: bool
    count: int


def parse_channels(spec: str | Sequence[int] | None) -> list[int] | ChannelRanking | None:
    """'3,17' -> [3, 17]; 'strongest:10' -> ChannelRanking(True, 10); None or '' -> None (all channels)."""
    if spec is None or spec == "":
        return None
    if not isinstance(spec, str):
        return [int(c) for c in spec]
    text = spec.strip().lower()
    if ":" in text:
        mode, _, count = text.partition(":")
        if mode not in ("strongest", "weakest") or not count.isdigit() or int(count) < 1:
            raise DreamscopeError(f"bad channel spec '{spec}'; use indices like 3,17 or strongest:10 or weakest:10")
        return ChannelRanking(mode == "strongest", int(count))
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DreamscopeError(f"bad channel spec '{spec}'; use indices like 3,17 or strongest:10 or weakest:10") from None
    if not channels or any(c < 0 for c in channels):
        raise DreamscopeError(f"bad channel spec '{spec}'; channel indices are whole numbers from 0")
    return list(dict.fromkeys(channels))


def rank_channels(activation: torch.Tensor, ranking: ChannelRanking) -> list[int]:
    strength = activation.detach().pow(2).mean(dim=(0, 2, 3))
    order = torch.argsort(strength, descending=ranking.strongest)
    return order[: ranking.count].tolist()


def parse_layer_weights(specs: str | Sequence[str]) -> list[tuple[str, float]]:
    """'stage4.2' or 'stage4.2=1,stage6.0=0.5' (or a list of such) -> [(layer, weight), ...]."""
    items = [specs] if isinstance(specs, str) else list(specs)
    parsed: list[tuple[str, float]] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            name, _, weight = part.partition("=")
            try:
                value = float(weight) if weight else 1.0
            except ValueError:
                raise DreamscopeError(f"bad layer weight in '{part}'; write NAME or NAME=WEIGHT, e.g. stage6.0=0.5") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise DreamscopeError(f"bad layer weight in '{part}'; it must be a finite number")
            parsed.append((name.strip(), value))
    if not parsed:
        raise DreamscopeError("no layer given; name one, e.g. --layer stage4.2 (see: dreamscope layers)")
    return parsed


# Feature-visualization objectives. "logits" is the network's class scores; "image" is the rendered picture
# itself (before transforms), supplied by the optimization loop for priors such as total variation.
LOGITS = "logits"
IMAGE = "image"


def class_logit(name_or_index: str | int) -> Objective:
    """The logit (pre-softmax score) of an ImageNet class, by name ("banana") or index."""
    from .models.classes import imagenet_labels, resolve_class

    index = resolve_class(name_or_index)
    return Objective(lambda a: a[LOGITS][:, index].mean(), [LOGITS], f"class({imagenet_labels()[index]})")


def channel(layer: str, index: int) -> Objective:
    """Mean activation of one channel over all positions."""
    return Objective(lambda a: a[layer][:, index].mean(), [layer], f"channel({layer}:{index})")


def neuron(layer: str, index: int) -> Objective:
    """Activation of one channel at the centre position only (a single unit)."""

    def fn(a: Activations) -> torch.Tensor:
        act = a[layer]
        return act[:, index, act.shape[-2] // 2, act.shape[-1] // 2].mean()

    return Objective(fn, [layer], f"neuron({layer}:{index})")


def direction(layer: str, vector: torch.Tensor | Sequence[float]) -> Objective:
    """Projection of each position's activation vector on a direction in the layer's channel space."""
    vector = torch.as_tensor(vector, dtype=torch.float32).flatten()
    vector = vector / vector.norm().clamp(min=1e-8)

    def fn(a: Activations) -> torch.Tensor:
        act = a[layer]
        if act.shape[1] != vector.numel():
            raise DreamscopeError(f"direction has {vector.numel()} values but layer {layer} has {act.shape[1]} channels")
        return (act * vector.to(act).view(1, -1, 1, 1)).sum(1).mean()

    return Objective(fn, [layer], f"direction({layer})")


def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity of the batch's Gram matrices at a layer: rewards different styles."""

    def fn(a: Activations) -> torch.Tensor:
        act = a[layer]
        batch = act.shape[0]
        if batch < 2:
            return act.new_zeros(())
        flat = act.flatten(2)
        grams = torch.nn.functional.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)
        similarity = grams @ grams.T
        return -(similarity.sum() - similarity.diagonal().sum()) / (batch * (batch - 1))

    return Objective(fn, [layer], f"diversity({layer})")


def total_variation() -> Objective:
    """Mean absolute difference between neighbouring pixels of the picture (subtract it to smooth)."""

    def fn(a: Activations) -> torch.Tensor:
        x = a[IMAGE]
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

    return Objective(fn, [IMAGE], "total_variation")


def parse_unit(spec: str) -> tuple[str, int]:
    """'stage5.2:17' -> ('stage5.2', 17)."""
    layer, sep, index = str(spec).rpartition(":")
    if not sep or not layer or not index.strip().isdigit():
        raise DreamscopeError(f"bad unit '{spec}'; write LAYER:INDEX, e.g. stage5.2:17")
    return layer.strip(), int(index)
