"""Model zoo: registry of specs, architectures, and the ImageNet class names."""

from .classes import imagenet_labels, resolve_class
from .registry import DEFAULT_MODEL, REGISTRY, LayerInfo, LoadedModel, ModelSpec, get_spec, load_model, resolve_device

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "LayerInfo",
    "LoadedModel",
    "ModelSpec",
    "get_spec",
    "imagenet_labels",
    "load_model",
    "resolve_class",
    "resolve_device",
]
