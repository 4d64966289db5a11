"""What does the network think the picture shows? Top-k ImageNet classes with probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from .. import images
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, imagenet_labels, load_model


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


def classify(
    image: Image.Image, *, model: str | LoadedModel = DEFAULT_MODEL, top: int = 5, device: str | None = None
) -> list[Prediction]:
    if not isinstance(top, int) or not 1 <= top <= 1000:
        raise DreamscopeError(f"top must be a whole number from 1 to 1000, got {top}")
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    # Bicubic resize in PIL matches how ImageNet evaluation pictures are usually prepared.
    size = net.spec.resolution
    x = images.to_tensor(image.convert("RGB").resize((size, size), Image.BICUBIC), net.device)
    with torch.no_grad():
        probabilities = class_probabilities(net, x)[0]
    values, indices = probabilities.topk(min(top, probabilities.numel()))
    # Only ImageNet's names ship with dreamscope; other classifiers' classes are named by their index.
    labels = imagenet_labels() if net.spec.classes == "ImageNet" else None
    return [Prediction(int(i), labels[int(i)] if labels else f"{net.spec.classes or 'class'} #{int(i)}", float(v))
            for v, i in zip(values, indices)]
