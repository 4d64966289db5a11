"""How good is a feature visualization? A held-out judge and colour statistics, for `visualize --score` and the
quality benchmark.

A class picture is good when a network that did not make it names the class, not only on the picture as made
but also mirrored and on a centre crop (so the class is drawn, not hidden in a fragile pattern at the border),
and when its colours look like a photograph's (`colour.colourfulness`; photos' median is about 36).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError, SettingsError
from ..models import LoadedModel, load_model
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
class Score:
    judge: str
    target: str
    views: dict  # view name -> ViewScore
    colourfulness: float
    saturation: float

    @property
    def recognized(self) -> int:
        """On how many of the views the judge's best class is the target."""
        return sum(view.top1 for view in self.views.values())

    def summary(self) -> str:
        shown = ", ".join(
            f"{name} {view.probability:.3f}{'' if view.top1 else ' (judge: ' + view.judge_top1 + ')'}"
            for name, view in self.views.items()
        )
        return (
            f"{self.judge} names {self.target} on {self.recognized} of {len(self.views)} views: {shown}; "
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
    return Score(judge.name, judge.class_label(target), judged, colour.colourfulness(picture), colour.saturation(picture))


def scorer(settings, device=None):
    """For a visualize job's settings: a function that scores its finished pictures (an NCHW batch), one Score
    each. Loads the judge now, so a missing one fails before any work."""
    if settings.kind != "class":
        raise SettingsError("score", "judges class pictures (--class NAME); a channel's picture has no class to name")
    maker = load_model(settings.model, device, weights=settings.weights)
    judge, index = judge_for(maker, device), maker.resolve_class(settings.target)
    return lambda batch: [score(imaging.to_pil(batch[i : i + 1]), index, judge) for i in range(batch.shape[0])]
