"""dreamscope: look inside image networks by making them dream."""

from .errors import DreamscopeError
from .models import DEFAULT_MODEL, REGISTRY, imagenet_labels, load_model, resolve_class
from .objectives import Objective, channel, class_logit, direction, diversity, guided, layer_l2, neuron, total_variation
from .recipes.classify import Prediction, classify
from .recipes.dream import dream, dream_iter
from .recipes.visualize import visualize, visualize_iter
from .render import Progress

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "DreamscopeError",
    "Objective",
    "Prediction",
    "Progress",
    "channel",
    "class_logit",
    "classify",
    "direction",
    "diversity",
    "dream",
    "dream_iter",
    "guided",
    "imagenet_labels",
    "layer_l2",
    "load_model",
    "neuron",
    "resolve_class",
    "total_variation",
    "visualize",
    "visualize_iter",
]
