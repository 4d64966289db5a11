"""How good is a feature visualization? A held-out judge and colour statistics, for `visualize --score` and the
quality benchmark.

A class picture is good when a network that did not make it names the class, not only on the picture as made
but also mirrored and on a centre crop (so the class is drawn, not hidden in a fragile pattern at the border),
and when its colours look like a photograph's (`colour.colourfulness`; photos' median is about 36).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError, SettingsError
from ..models import LoadedModel, load_model
from ..optvis import render
from . import colour
from .classify import class_probabilities

VIEWS = ("picture", "mirror", "crop")
CROP = 0.75  # the crop view keeps the middle 75% of each side
# The judge of a maker's pictures: a network of another size, trained separately.
JUDGES = {
    "efficientnet-lite0": "efficientnet-lite2",
    "efficientnet-lite1": "efficientnet-lite2",
    "efficientnet-lite2": "efficientnet-lite0",
}
DEFAULT_JUDGE = "efficientnet-lite2"


def views(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three views of an NCHW picture: as is, mirrored left-right, centre crop resized back (bilinear)."""
    height, width = x.shape[-2:]
    crop_h, crop_w = round(height * CROP), round(width * CROP)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = x[..., top : top + crop_h, left : left + crop_w]
    crop = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    return {"picture": x, "mirror": x.flip(-1), "crop": crop}


def judge_for(maker: LoadedModel | str, device=None) -> LoadedModel:
    """The held-out judge of a maker's pictures (efficientnet-lite2, or lite0 for lite2's own). It must score
    ImageNet classes, so a model with other classes has no judge."""
    name = maker if isinstance(maker, str) else maker.name
    classes = "ImageNet" if isinstance(maker, str) else maker.spec.classes
    if classes != "ImageNet":
        raise DreamscopeError(f"--score judges ImageNet classes, and model {name} scores {classes or 'its own classes'}")
    try:
        return load_model(JUDGES.get(name, DEFAULT_JUDGE), device=device)
    except ModuleNotFoundError as exc:
        raise DreamscopeError(f"the judge needs {exc.name}: pip install 'dreamscope[lite]'") from None


@dataclass(frozen=True)
class ViewScore:
    top1: bool  # the judge's best class is the target
    probability: float  # the judge's probability of the target
    judge_top1: str  # the judge's best class
    judge_top1_probability: float


@dataclass(frozen=True)
class Plausibility:
    """How close a class picture is to real photos in the judge's feature space (MaCo's plausibility): the cosine
    similarity of penultimate features to one photo of each of the 1,000 ImageNet classes."""

    rank: int  # of the target class's photo among the 1,000 by similarity to the picture (1: the most similar)
    similarity: float  # to the target class's photo
    others: float  # mean similarity to the other classes' photos

    def summary(self) -> str:
        return (
            f"its class's photo is the {self.rank}{_ordinal(self.rank)} nearest of 1000 "
            f"(similarity {self.similarity:.2f}, {self.others:.2f} to the others)"
        )


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


REFERENCES = "data/references-{}.npy"  # package data: made by docs/make_references.py


def features(judge: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    """The judge's penultimate features of pictures x (its head's activations averaged over positions), each of
    unit length, for pictures resized to its resolution as for classifying them."""
    size = judge.spec.resolution
    x = imaging.resize(x, (size, size)) if x.shape[-2:] != (size, size) else x
    head = render.activations(judge, ["head"], x)["head"].mean((2, 3))
    return F.normalize(head.float(), dim=1)


@functools.lru_cache(maxsize=4)
def references(judge_name: str) -> torch.Tensor | None:
    """The judge's features of one sample photo per ImageNet class (1000, C), unit length; None where none were
    made for this judge."""
    path = resources.files("dreamscope").joinpath(REFERENCES.format(judge_name))
    if not path.is_file():
        return None
    with path.open("rb") as file:
        return F.normalize(torch.from_numpy(np.load(file).astype(np.float32)), dim=1)


def plausibility(picture_features: torch.Tensor, target: int, judge_name: str) -> Plausibility | None:
    found = references(judge_name)
    if found is None:
        return None
    similarity = found @ picture_features.cpu()
    own = float(similarity[target])
    rank = 1 + int((similarity > own).sum())
    others = float((similarity.sum() - own) / (len(similarity) - 1))
    return Plausibility(rank, own, others)


@dataclass(frozen=True)
class Score:
    judge: str
    target: str
    views: dict  # view name -> ViewScore
    colourfulness: float
    saturation: float
    plausibility: Plausibility | None = None

    @property
    def recognized(self) -> int:
        """On how many of the views the judge's best class is the target."""
        return sum(view.top1 for view in self.views.values())

    def summary(self) -> str:
        shown = ", ".join(
            f"{name} {view.probability:.3f}{'' if view.top1 else ' (judge: ' + view.judge_top1 + ')'}"
            for name, view in self.views.items()
        )
        near = f"; {self.plausibility.summary()}" if self.plausibility is not None else ""
        return (
            f"{self.judge} names {self.target} on {self.recognized} of {len(self.views)} views: {shown}{near}; "
            f"colourfulness {self.colourfulness:.1f}, saturation {self.saturation:.2f}"
        )


def score(picture: Image.Image, target: int, judge: LoadedModel) -> Score:
    """The judge's verdict on a class picture: the target's probability and the judge's top-1 on each view,
    and the picture's colour statistics."""
    x = imaging.to_tensor(picture, judge.device)
    judged = {}
    with torch.no_grad():
        for name, view in views(x).items():
            probabilities = class_probabilities(judge, view)[0]
            top = int(probabilities.argmax())
            judged[name] = ViewScore(
                top == target, float(probabilities[target]), judge.class_label(top), float(probabilities[top])
            )
        near = plausibility(features(judge, x)[0], target, judge.name)
    return Score(judge.name, judge.class_label(target), judged, colour.colourfulness(picture), colour.saturation(picture), near)


def scorer(settings, device=None):
    """For a visualize job's settings: a function that scores its finished pictures (an NCHW batch), one Score
    each. Loads the judge now, so a missing one fails before any work."""
    if settings.kind != "class":
        raise SettingsError("score", "judges class pictures (--class NAME); a channel's picture has no class to name")
    maker = load_model(settings.model, device, weights=settings.weights)
    judge, index = judge_for(maker, device), maker.resolve_class(settings.target)
    return lambda batch: [score(imaging.to_pil(batch[i : i + 1]), index, judge) for i in range(batch.shape[0])]
