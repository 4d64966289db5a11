"""dreamscope: look inside image networks by making them dream."""

from .errors import DreamscopeError
from .models import DEFAULT_MODEL, REGISTRY, imagenet_labels, load_model, resolve_class
from .objectives import Objective, guided, layer_l2
from .recipes.classify import Prediction, classify
from .recipes.dream import dream, dream_iter
from .render import Progress

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "DreamscopeError",
    "Objective",
    "Prediction",
    "Progress",
    "classify",
    "dream",
    "dream_iter",
    "guided",
    "imagenet_labels",
    "layer_l2",
    "load_model",
    "resolve_class",
]
