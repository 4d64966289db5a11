"""Model zoo: the types (spec), registered models (catalogue), loading (loading), architectures, the user's own
models (custom) and the ImageNet class names (classes). Lower layers never import higher ones:

    weights, classes, devices, caffe  <-  efficientnet_lite, googlenet, spec  <-  custom, catalogue
        <-  loading, download
"""

from .catalogue import DEFAULT_MODEL, REGISTRY, get_spec
from .classes import imagenet_labels, resolve_class
from .custom import wrap_model
from .devices import resolve_device
from .loading import LayerListing, class_names, clear_cache, list_layers, load_model
from .spec import IMAGE, LOGITS, LayerInfo, LoadedModel, ModelSpec

__all__ = [
    "DEFAULT_MODEL",
    "IMAGE",
    "LOGITS",
    "REGISTRY",
    "LayerInfo",
    "LayerListing",
    "LoadedModel",
    "ModelSpec",
    "class_names",
    "clear_cache",
    "get_spec",
    "imagenet_labels",
    "list_layers",
    "load_model",
    "resolve_class",
    "resolve_device",
    "wrap_model",
]
