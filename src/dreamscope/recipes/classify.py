"""What does the network think the picture shows? Top-k ImageNet classes with probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from .. import images
from ..models import LoadedModel
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
    x = images.resize(x, (size, size)) if x.shape[-2:] != (size, size) else x
    return model.net(model.to_input(x)).softmax(dim=1)


def probabilities(model: LoadedModel, image: Image.Image) -> torch.Tensor:
    """Class probabilities for a PIL picture, resized bicubically in PIL to the network's resolution, as ImageNet
    evaluation pictures usually are."""
    size = model.spec.resolution
    x = images.to_tensor(image.convert("RGB").resize((size, size), Image.BICUBIC), model.device)
    with torch.no_grad():
        return class_probabilities(model, x)[0]


def classify(image: Image.Image, settings: ClassifySettings | None = None, *, model: str | LoadedModel | None = None,
             device: str | None = None, **fields) -> list[Prediction]:
    """The model's `top` classes for a picture, most probable first."""
    settings, net = base.prepare(ClassifySettings, settings, fields, model, device)
    net.layer("logits")  # a model without class scores says so here
    scores = probabilities(net, image)
    values, indices = scores.topk(min(settings.top, scores.numel()))
    return [Prediction(int(i), net.class_label(int(i)), float(v)) for v, i in zip(values, indices)]
