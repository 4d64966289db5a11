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
