"""Model zoo: registry of specs, architectures, the user's own models, and the ImageNet class names."""

from .classes import imagenet_labels, resolve_class
from .registry import (
    DEFAULT_MODEL,
    REGISTRY,
    LayerInfo,
    LayerListing,
    LoadedModel,
    ModelSpec,
    get_spec,
    list_layers,
    load_model,
    resolve_device,
)
from .custom import wrap_model

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "LayerInfo",
    "LayerListing",
    "LoadedModel",
    "ModelSpec",
    "get_spec",
    "imagenet_labels",
    "list_layers",
    "load_model",
    "resolve_class",
    "resolve_device",
    "wrap_model",
]
