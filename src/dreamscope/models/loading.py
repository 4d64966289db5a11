"""Loading models: a registered one with its weights, or the user's own `package.module:factory`; and
listing a model's layers and classes without its weights.

One instance per (model, device, weights file) is kept and shared: threads asking for the same model at
once wait for a single build and get the same object.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import DreamscopeError
from . import classes, libraries
from .catalogue import DEFAULT_MODEL, get_spec, is_custom
from .custom import load_factory
from .devices import resolve_device
from .spec import LOGITS, LayerInfo, LoadedModel, ModelSpec
from .weights import PackageWeights, assign, load_state_dict_file

CACHE_SIZE = 4  # loaded models kept; each holds its weights in memory


class _Slot:
    """One cache entry: its lock makes threads that want the same model wait for one build."""

    def __init__(self):
        self.lock = threading.Lock()
        self.model: LoadedModel | None = None


_cache: OrderedDict[tuple, _Slot] = OrderedDict()
_cache_lock = threading.Lock()  # guards the table only; builds run under their slot's lock


def load_model(
    name: str = DEFAULT_MODEL, device: str | torch.device | None = None, weights: str | Path | None = None
) -> LoadedModel:
    """A registered model, or your own as "package.module:factory"; `weights` is a file that overrides where
    the weights would come from (a .caffemodel or state dict for GoogLeNet, a state dict otherwise)."""
    stamp = None
    if weights is not None:
        weights = Path(weights).expanduser()
        if not weights.is_file():
            raise DreamscopeError(f"weights file not found: {weights} (check the path)")
        info = weights.stat()
        stamp = (str(weights.resolve()), info.st_mtime_ns, info.st_size)  # a changed file is read again
    key = (name, resolve_device(device), stamp)
    with _cache_lock:
        slot = _cache.get(key)
        if slot is None:
            slot = _cache[key] = _Slot()
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    with slot.lock:
        if slot.model is None:
            try:
                slot.model = _load(name, key[1], weights)
            except BaseException:
                with _cache_lock:  # a failure is not kept: the next call tries again
                    if _cache.get(key) is slot:
                        del _cache[key]
                raise
        return slot.model


def clear_cache() -> None:
    """Forget the loaded models (they are freed once nothing else holds them)."""
    with _cache_lock:
        _cache.clear()


def _load(name: str, device: torch.device, weights: Path | None) -> LoadedModel:
    if libraries.is_library_name(name):
        return libraries.load_library_model(name, device, weights)
    if is_custom(name):
        return load_factory(name, device, weights)
    spec = get_spec(name)
    path = weights if weights is not None else _installed_weights(spec)
    net = spec.build()
    if spec.load_weights is None:
        assign(net, load_state_dict_file(path), path, name)
    elif spec.load_weights(net, path, name) is False:
        spec = dataclasses.replace(spec, logits_module=None)
    net.eval().requires_grad_(False)
    if hasattr(net, "fold_batchnorm"):
        net.fold_batchnorm()
    net.to(device)
    if spec.channels_last:
        net.to(memory_format=torch.channels_last)
    return LoadedModel(
        spec=spec,
        net=net,
        layers=_layer_infos(net),
        device=device,
        not_dreamable=dict(getattr(net, "not_dreamable", {})),
        weights_path=path,
    )


def _installed_weights(spec: ModelSpec) -> Path:
    if isinstance(spec.weights, PackageWeights) and not spec.weights.present():
        raise DreamscopeError(f"weights for {spec.name} are not installed; run: {spec.weights.how_to_get()}")
    if not spec.weights.present():
        spec.weights.find()  # a variable naming a missing file says so
        raise DreamscopeError(f"{spec.name} needs weights, which do not come with dreamscope: {spec.weights.how_to_get()}")
    return Path(spec.weights.path())


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
    if libraries.is_library_name(name):  # the architecture alone: its pretrained weights are not needed
        model = libraries.load_library_model(name, "cpu", weights, pretrained=False)
        return LayerListing(model.name, model.spec.default_layer, dict(model.layers), dict(model.not_dreamable))
    if is_custom(name):
        model = load_model(name, "cpu", weights)
        return LayerListing(model.name, model.spec.default_layer, dict(model.layers), dict(model.not_dreamable))
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: no memory, no random initialization
        net = spec.build()
    return LayerListing(name, spec.default_layer, _layer_infos(net), dict(getattr(net, "not_dreamable", {})))


def class_names(name: str = DEFAULT_MODEL, weights: str | Path | None = None) -> tuple[list[str] | None, int]:
    """(the class names, or None where dreamscope has none; how many classes) of a model, like `list_layers`:
    a registered model's from its spec alone, your own model's from building it (with `weights` when given)."""
    if libraries.is_library_name(name):  # the architecture knows its classes: no weights needed
        model = libraries.load_library_model(name, "cpu", weights, pretrained=False)
        model.layer(LOGITS)
        return model.class_names(), model.spec.num_classes
    if is_custom(name):
        model = load_model(name, "cpu", weights)
        model.layer(LOGITS)  # a model without class scores says so
        return model.class_names(), model.spec.num_classes
    spec = get_spec(name)
    return (classes.imagenet_labels() if spec.classes == "ImageNet" else None), spec.num_classes
