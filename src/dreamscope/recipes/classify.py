"""What does the network think the picture shows? Top-k ImageNet classes with probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from PIL import Image

from .. import imaging
from ..events import Run, finish
from ..models import LOGITS, LoadedModel
from ..settings import ClassifySettings
from . import base


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


def class_probabilities(model: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes for pictures x (RGB in [0, 1], any size): the whole picture, resized to the
    network's training resolution (no crop, so nothing at the edges is ignored)."""
    size = model.spec.resolution
    x = imaging.resize(x, (size, size)) if x.shape[-2:] != (size, size) else x
    return model.net(model.to_input(x)).softmax(dim=1)


def probabilities(model: LoadedModel, image: Image.Image) -> torch.Tensor:
    """Class probabilities for a PIL picture, resized bicubically in PIL to the network's resolution, as ImageNet
    evaluation pictures usually are."""
    size = model.spec.resolution
    x = imaging.to_tensor(image.convert("RGB").resize((size, size), Image.BICUBIC), model.device)
    with torch.no_grad():
        return class_probabilities(model, x)[0]


def check(settings: ClassifySettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """A model without class scores says so here."""
    model.layer(LOGITS)


def classify_iter(
    image: Image.Image,
    settings: ClassifySettings | None = None,
    *,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """The model's `top` classes for a picture, most probable first: a Run whose one event's result is the list of
    Predictions (what a job runs; `classify` gives the list)."""
    settings, net = base.prepare(ClassifySettings, settings, fields, model, device)
    check(settings, net)
    scores = probabilities(net, image)
    values, indices = scores.topk(min(settings.top, scores.numel()))
    found = [Prediction(int(i), net.class_label(int(i)), float(v)) for v, i in zip(values, indices)]
    return Run(iter([finish(found)]), settings, None, net)


def classify(image: Image.Image, settings: ClassifySettings | None = None, **options) -> list[Prediction]:
    """The model's `top` classes for a picture, most probable first."""
    return classify_iter(image, settings, **options).result()
