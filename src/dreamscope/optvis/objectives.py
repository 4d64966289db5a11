"""Objectives: scalars to maximize, computed from activations keyed by readable layer name.

Objectives compose like numbers (Lucid's algebra): `layer_l2("stage4.2") + 0.5 * layer_l2("stage6.0")`,
`a - b`, `-a`, `a / 2`. An objective is a weighted sum of terms; each term knows the layers it reads (so the
forward pass stops after the deepest one), describes itself, can target one sample of a batch, and declares how
it reduces over positions:

- "mean": the mean over the positions of its one layer of something computed per position. Tiled rendering
  is exact for these: each tile's term is weighted by its share of that layer's positions.
- "whole": anything else (a class score, one unit at the centre, a batch's diversity, a prior on the whole
  picture). It needs the whole picture at once, so tiling it is refused up front.

The layer names "image" (the picture itself, before the network) and "logits" (the class scores) are
pseudo-layers that every model answers (`LoadedModel.layer`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import DreamscopeError
from ..fields import ChannelRanking, parse_channels, parse_layer_weights, parse_unit  # noqa: F401 - part of this API
from ..models.classes import imagenet_labels, resolve_class
from ..models.spec import IMAGE, LOGITS

Activations = Mapping[str, torch.Tensor]
REDUCTIONS = ("mean", "whole")


@dataclass(frozen=True, eq=False)
class Term:
    """One objective term: `fn(activations)` -> scalar, the layers it reads, how it reduces over positions, and an
    optional `check(model)` that refuses, before any work, what the model cannot give (a missing channel)."""

    fn: Callable[[Activations], torch.Tensor]
    layers: tuple[str, ...]
    description: str
    reduction: str = "whole"
    check: Callable | None = None


class Objective:
    """A weighted sum of terms (plus a constant). `Objective(fn, layers, description, reduction)` makes one term;
    a custom `fn` reduces "whole" unless it declares "mean" (and then reads exactly one layer)."""

    def __init__(
        self,
        fn: Callable[[Activations], torch.Tensor] | None = None,
        layers: Sequence[str] = (),
        description: str = "objective",
        reduction: str = "whole",
        *,
        check: Callable | None = None,
        terms: tuple[tuple[float, Term], ...] | None = None,
        constant: float = 0.0,
    ):
        if terms is None:
            if reduction not in REDUCTIONS:
                raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
            layers = tuple(dict.fromkeys(layers))
            if reduction == "mean" and len(layers) != 1:
                raise ValueError("a 'mean' term reduces over the positions of one layer; it must read exactly one")
            terms = ((1.0, Term(fn, layers, description, reduction, check)),)
        self.terms = tuple(terms)
        self.constant = float(constant)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, term in self.terms for name in term.layers))

    @property
    def reduction(self) -> str:
        return "mean" if all(term.reduction == "mean" for _, term in self.terms) else "whole"

    @property
    def description(self) -> str:
        parts = []
        for coefficient, term in self.terms:
            magnitude = "" if abs(coefficient) == 1 else f"{abs(coefficient):g} * "
            parts.append(("-" if coefficient < 0 else "+", f"{magnitude}{term.description}"))
        if self.constant:
            parts.append(("-" if self.constant < 0 else "+", f"{abs(self.constant):g}"))
        if not parts:
            return "0"
        text = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        return text + "".join(f" {sign} {body}" for sign, body in parts[1:])

    def __call__(self, activations: Activations) -> torch.Tensor:
        total = sum(coefficient * term.fn(activations) for coefficient, term in self.terms)
        return total + self.constant if self.constant else total

    def tile_value(self, activations: Activations, shares: Mapping[str, float]) -> torch.Tensor:
        """The objective's part from one tile: each "mean" term on the tile's own positions, weighted by the
        tile's share of its layer's positions. The tiles' values add up to the whole picture's (less the constant)."""
        if self.reduction != "mean":
            raise DreamscopeError(f"the objective {self.description} needs the whole picture at once, so it cannot be tiled")
        return sum(coefficient * term.fn(activations) * shares[term.layers[0]] for coefficient, term in self.terms)

    def check(self, model) -> None:
        """Every layer name and every channel or class index, checked against `model` before any work."""
        for name in self.layers:
            model.layer(name)  # unknown names fail here, with the closest ones
        for _, term in self.terms:
            if term.check is not None:
                term.check(model)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    def _scaled(self, factor: float) -> Objective:
        return Objective(terms=tuple((factor * c, t) for c, t in self.terms), constant=factor * self.constant)

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Objective(terms=self.terms, constant=self.constant + other)
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(terms=self.terms + other.terms, constant=self.constant + other.constant)

    __radd__ = __add__  # sum() starts from 0

    def __neg__(self):
        return self._scaled(-1.0)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, factor: float):
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return self._scaled(float(factor))

    __rmul__ = __mul__

    def __truediv__(self, divisor: float):
        return self * (1.0 / divisor)


def _select(activation: torch.Tensor, channels: Sequence[int] | None) -> torch.Tensor:
    return activation if channels is None else activation[:, list(channels)]


def _channels_in_range(layer: str, channels: Sequence[int] | None):
    def check(model):
        info = model.layer(layer)
        bad = [c for c in (channels or []) if not 0 <= c < info.channels]
        if bad:
            raise DreamscopeError(f"channel {bad[0]} is out of range for layer {layer}, which has channels 0-{info.channels - 1}")

    return check


def objective(
    describe: Callable[..., str],
    reduction: str = "whole",
    *,
    reads: str | None = None,
    check: Callable[..., Callable | None] | None = None,
    per_sample: bool = True,
):
    """Make an objective factory from a function that returns `fn(activation)` -> scalar (Lucid's `wrap_objective`).

    The objective reads one layer: `reads` (a pseudo-layer such as LOGITS), else the factory's `layer` argument.
    `fn` gets that layer's activation; with `per_sample` the factory also takes `sample`, and `fn` then sees that
    picture of the batch alone. `describe(**arguments)` and `check(**arguments)` (a check of the model, or None)
    take the factory's arguments by name; the reduction is declared here, once.
    """

    def wrap(factory):
        signature = inspect.signature(factory)

        @functools.wraps(factory)
        def make(*args, **kwargs) -> Objective:
            sample = kwargs.pop("sample", None) if per_sample else None
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            layer = reads or values["layer"]
            inner = factory(**values)
            fn = inner if sample is None else (lambda act: inner(act[sample : sample + 1]))
            return Objective(
                lambda a: fn(a[layer]),
                [layer],
                describe(**values) + ("" if sample is None else f"@{sample}"),
                reduction,
                check=check(**values) if check else None,
            )

        return make

    return wrap


def _l2_label(layer: str, channels: Sequence[int] | None) -> str:
    return f"l2({layer})" if channels is None else f"l2({layer}[{','.join(map(str, channels))}])"


@objective(_l2_label, "mean", check=_channels_in_range)
def layer_l2(layer: str, channels: Sequence[int] | None = None):
    """Mean squared activation of a layer (optionally only some channels): DeepDream's 'amplify what you see'."""
    return lambda act: _select(act, channels).pow(2).mean()


@objective(lambda layer, **_: f"guided({layer})", "mean", check=lambda layer, channels, **_: _channels_in_range(layer, channels))
def guided(layer: str, guide_features: torch.Tensor, channels: Sequence[int] | None = None):
    """Pull each position's feature vector toward its best-matching feature of a guide image.

    As in the original notebook: for every position, find the guide feature with the largest dot product and
    maximize the dot product with it. `guide_features` is the guide's activation at `layer`, shape (1, C, h, w).
    """
    guide = _select(guide_features, channels).flatten(2)[0].detach()  # (C, M)

    def fn(act: torch.Tensor) -> torch.Tensor:
        x = _select(act, channels).flatten(2)[0]  # (C, N)
        best = (x.detach().T @ guide).argmax(dim=1)  # (N,) index of the best guide feature per position
        return (x * guide[:, best]).sum(0).mean()

    return fn


def rank_channels(activation: torch.Tensor, ranking: ChannelRanking) -> list[int]:
    strength = activation.detach().pow(2).mean(dim=(0, 2, 3))
    order = torch.argsort(strength, descending=ranking.strongest)
    return order[: ranking.count].tolist()


def class_logit(name_or_index: str | int, sample: int | None = None, label: str | None = None) -> Objective:
    """The logit (pre-softmax score) of a class: an ImageNet class by name ("banana"), or any model's class by index."""
    by_name = isinstance(name_or_index, str) and not name_or_index.strip().isdigit()
    index = resolve_class(name_or_index) if by_name else int(name_or_index)
    return _logit(index, name_or_index, label or (imagenet_labels()[index] if by_name else f"#{index}"), sample=sample)


def _class_check(index: int, given, label: str):
    def check(model):
        resolved = model.resolve_class(given)  # a name on a model with its own classes is refused here
        if resolved != index:
            raise DreamscopeError(f"class {given!r} is #{resolved} in model {model.name}, not #{index}")

    return check


@objective(lambda index, given, label: f"class({label})", reads=LOGITS, check=_class_check)
def _logit(index: int, given, label: str):
    return lambda logits: logits[:, index].mean()


@objective(lambda index, label: f"probability({label})", reads=LOGITS)
def class_probability(index: int, label: str):
    """The network's softmax probability of a class on the least sure picture of the batch (the views of one
    picture: sure of every view): how sure it is, where the logit only grows. What a class picture's stop rule
    watches (`render.Confident`)."""
    return lambda logits: logits.float().softmax(1)[:, index].min()


@objective(
    lambda layer, index: f"channel({layer}:{index})", "mean", check=lambda layer, index: _channels_in_range(layer, [index])
)
def channel(layer: str, index: int):
    """Mean activation of one channel over all positions."""
    return lambda act: act[:, index].mean()


@objective(lambda layer, index: f"neuron({layer}:{index})", check=lambda layer, index: _channels_in_range(layer, [index]))
def neuron(layer: str, index: int):
    """Activation of one channel at the centre position only (a single unit)."""
    return lambda act: act[:, index, act.shape[-2] // 2, act.shape[-1] // 2].mean()


def _direction_check(layer: str, vector, cossim_power: float):
    def check(model):
        channels, count = model.layer(layer).channels, torch.as_tensor(vector).numel()
        if channels != count:
            raise DreamscopeError(f"direction has {count} values but layer {layer} has {channels} channels")

    return check


@objective(
    lambda layer, vector, cossim_power: (
        f"direction({layer})" if not cossim_power else f"direction_cossim({layer}, {cossim_power:g})"
    ),
    "mean",
    check=_direction_check,
)
def direction(layer: str, vector: torch.Tensor | Sequence[float], cossim_power: float = 0.0):
    """Projection of each position's activation vector on a direction in the layer's channel space.

    With `cossim_power` p > 0 each position's projection is weighted by its cosine similarity to the
    direction, to the power p (Lucid's `direction_cossim`): the picture must point the right way, not merely
    grow large, which is what lets an activation atlas's icon show its cell's mean activation.
    """
    vector = torch.as_tensor(vector, dtype=torch.float32).flatten()
    vector = vector / vector.norm().clamp(min=1e-8)

    def fn(act: torch.Tensor) -> torch.Tensor:
        dot = (act * vector.to(act).view(1, -1, 1, 1)).sum(1)
        if cossim_power:
            cosine = dot / act.norm(dim=1).clamp(min=1e-8)
            dot = dot * cosine.clamp(min=1e-3) ** cossim_power
        return dot.mean()

    return fn


def direction_sheet(layer: str, vectors: torch.Tensor | Sequence[Sequence[float]], cossim_power: float = 1.0) -> Objective:
    """One objective for a batch: picture i follows direction `vectors[i]` of `layer` (an atlas's icons)."""
    return sum(
        (direction(layer, vector, sample=i, cossim_power=cossim_power) for i, vector in enumerate(vectors)), Objective(terms=())
    )


@objective(lambda layer, groups: f"diversity({layer}{'' if groups is None else f', {len(groups)} groups'})", per_sample=False)
def diversity(layer: str, groups: Sequence[Sequence[int]] | None = None):
    """Minus the mean cosine similarity of the batch's Gram matrices at a layer: rewards different styles.

    With `groups` (lists of sample indices), only pictures of the same group are compared (the samples of one
    channel, when a batch holds several channels), and the groups' terms are summed."""

    def spread(act: torch.Tensor) -> torch.Tensor:
        batch = act.shape[0]
        if batch < 2:
            return act.new_zeros(())
        flat = act.flatten(2)
        grams = torch.nn.functional.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)
        similarity = grams @ grams.T
        return -(similarity.sum() - similarity.diagonal().sum()) / (batch * (batch - 1))

    if groups is None:
        return spread
    return lambda act: sum((spread(act[list(group)]) for group in groups), act.new_zeros(()))


@objective(
    lambda layer, sample, reference: f"feature_distance({layer}, {sample} from {reference})",
    per_sample=False,
    check=lambda layer, **_: _channels_in_range(layer, None),
)
def feature_distance(layer: str, sample: int = 0, reference: int = 1):
    """How far one sample's activation at `layer` is from a reference sample's: the mean squared difference over
    the reference's mean square (0: the same features; 1: as far as from nothing). Subtracted, it holds a picture
    close to a photo in the batch (feature accentuation's regularizer, Hamblin et al. 2024)."""

    def fn(act: torch.Tensor) -> torch.Tensor:
        x, ref = act[sample], act[reference].detach()
        return (x - ref).pow(2).mean() / ref.pow(2).mean().clamp(min=1e-12)

    return fn


@objective(lambda: "total_variation", reads=IMAGE, per_sample=False)
def total_variation():
    """Mean absolute difference between neighbouring pixels of the picture (subtract it to smooth)."""
    return lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def channel_sheet(layer: str, channels: Sequence[int]) -> Objective:
    """One objective for a batch: picture i maximizes channel `channels[i]` of `layer`."""
    return sum((channel(layer, c, sample=i) for i, c in enumerate(channels)), Objective(terms=()))
