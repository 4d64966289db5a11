"""Feature accentuation (Hamblin et al. 2024): strengthen a class or channel in a real photo, so one sees what the
unit responds to in context rather than in a picture grown from noise.

The picture starts as the photo and climbs the target while a regularizer holds it close to the photo where
the network first sees shapes: minus `closeness` times the feature distance between picture and photo at an
early layer (`objectives.feature_distance`). The photo rides along in the batch through the same random
transforms as the picture (`beside`), so the two are compared as the network sees them, at every step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch

from ..models import LoadedModel
from ..optvis import objectives
from ..optvis.render import activations

MAX_STRIDE = 8  # the default comparison layer: the deepest at this stride or finer (shapes, not objects)


def default_layer(model: LoadedModel) -> str:
    """The deepest layer whose stride is at most MAX_STRIDE (stage3.1 of efficientnet-lite0)."""
    early = [name for name, info in model.layers.items() if info.stride is not None and info.stride <= MAX_STRIDE]
    return early[-1] if early else next(iter(model.layers))


def beside(photo: torch.Tensor, transform=None):
    """A transform that puts the photo after the picture in the batch and transforms both with one draw."""

    def both(picture: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch = torch.cat([picture, photo.to(picture).expand_as(picture)])
        return transform(batch, generator) if transform is not None else batch

    return both


@dataclass(frozen=True)
class Accentuation:
    """How far the picture moved from the photo, and how much the target rose."""

    layer: str
    pixel_change: float  # mean absolute change per pixel and channel, on 0-255
    feature_distance: float  # objectives.feature_distance at `layer` (0: the photo's features)
    target_before: float  # the target objective on the photo (a class's logit, a channel's mean)
    target_after: float
    probability_before: float | None = None  # for a class: the model's probability of it
    probability_after: float | None = None

    def to_text(self) -> str:
        return json.dumps(asdict(self))

    def summary(self, target: str) -> str:
        rose = f"{target} {self.target_before:.2f} -> {self.target_after:.2f}"
        if self.probability_before is not None:
            rose += f" (probability {self.probability_before:.3f} -> {self.probability_after:.3f})"
        return (
            f"accentuated {rose}; the picture moved {self.pixel_change:.1f}/255 a pixel, "
            f"feature distance {self.feature_distance:.3f} at {self.layer}"
        )


def measure(
    model: LoadedModel,
    target: objectives.Objective,
    layer: str,
    photo: torch.Tensor,
    picture: torch.Tensor,
    class_index: int | None = None,
) -> Accentuation:
    """Compare the finished picture with the photo, both as they are (no transforms)."""
    from .classify import class_probabilities

    distance = objectives.feature_distance(layer)
    batch = torch.cat([picture, photo.to(picture)])
    with torch.no_grad():
        acts = activations(model, tuple(dict.fromkeys((*target.layers, layer))), batch, image=batch)
        before = float(target({name: a[1:] for name, a in acts.items()}))
        after = float(target({name: a[:1] for name, a in acts.items()}))
        result = dict(
            layer=layer,
            pixel_change=float((picture - photo.to(picture)).abs().mean() * 255),
            feature_distance=float(distance(acts)),
            target_before=before,
            target_after=after,
        )
        if class_index is not None:
            probabilities = class_probabilities(model, batch)[:, class_index]
            result.update(probability_before=float(probabilities[1]), probability_after=float(probabilities[0]))
    return Accentuation(**result)
