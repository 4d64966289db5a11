"""dreamscope: look inside image networks by making them dream."""

from .errors import DreamscopeError
from .models import DEFAULT_MODEL, REGISTRY, LoadedModel, imagenet_labels, list_layers, load_model, resolve_class, wrap_model
from .objectives import Objective, channel, class_logit, direction, diversity, guided, layer_l2, neuron, total_variation
from .recipes.classify import Prediction, classify
from .recipes.dream import dream, dream_iter
from .recipes.morph import morph_iter
from .recipes.probe import probe, probe_iter
from .recipes.video import video_iter
from .recipes.visualize import visualize, visualize_iter
from .recipes.zoom import zoom_iter
from .render import Progress

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "DreamscopeError",
    "LoadedModel",
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
    "list_layers",
    "load_model",
    "morph_iter",
    "neuron",
    "probe",
    "probe_iter",
    "resolve_class",
    "total_variation",
    "video_iter",
    "visualize",
    "visualize_iter",
    "wrap_model",
    "zoom_iter",
]
