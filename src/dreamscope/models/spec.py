"""The types the rest of dreamscope works with: a layer, a model's spec, a loaded model.

Nothing here builds or loads a network (that is `loading`); this module imports only the leaves
(`weights`, `classes`), so every other module can import it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from ..errors import DreamscopeError, suggest
from . import classes
from .layouts import CLS, NCHW, Layout
from .weights import WeightSource, file_digests, state_digest

# Pseudo-layers: names objectives use beside the network's own layers.
IMAGE = "image"  # the picture itself (RGB in [0, 1]), for priors such as total variation
LOGITS = "logits"  # the class scores

_DIGEST_LOCK = threading.Lock()  # one digest computed at a time; each model's is computed once


# Held while hooks are added to a loaded network's modules (taps) and while a network is copied (a bfloat16 twin),
# so a copy never catches a module's hooks half-changed by another thread.
HOOKS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LayerInfo:
    name: str  # readable name users type: "stage4.2"
    # dotted path of the module whose output is the activation ("path#2": its second call in a pass); None: the picture
    module: str | None
    channels: int
    stride: int | None  # input pixels per activation; None: not a feature map (class scores, a class token)
    layout: Layout = NCHW  # how the output is laid out; objectives see its (N, C, H, W) view

    def view(self, output, size: tuple[int, int]) -> torch.Tensor:
        """The (N, C, H, W) activation in a module's output, for an input picture of `size` (h, w)."""
        return self.layout.view(output, size, self.stride)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[], nn.Module]
    weights: WeightSource
    resolution: int  # the size it was trained at; classification resizes to it
    default_layer: str
    to_input: Callable[[torch.Tensor], torch.Tensor]  # RGB in [0, 1] -> the network's own input range
    logits_module: str | None = "_fc"  # the module whose output is the class scores ("": the network's output); None: none
    num_classes: int = 1000
    classes: str | None = "ImageNet"  # whose classes the scores are: "ImageNet", "Places365"; None: the user's own
    # Fills a built network from a weights file (net, path, model name); returns False when the file had no
    # classifier. None: a state dict in the network's own layout, loaded strictly.
    load_weights: Callable[[nn.Module, Path, str], bool | None] | None = None
    # Tiled gradients are exact only when every layer's size is ceil(input / stride), as with TensorFlow
    # "SAME" padding; Caffe's rounding (GoogLeNet) and unknown models don't promise that, so they run untiled.
    tileable: bool = False
    # Run with channels-last tensors (NHWC in memory): oneDNN's depthwise and 1x1 convolutions, forward and backward,
    # are ~1.5x faster so on a CPU (benchmarks/bench_dream.py); GoogLeNet's LRN gains nothing, so it stays NCHW.
    channels_last: bool = False
    # precision "auto" may run it in bfloat16 (see `precision`): only where measured to dream as strongly, sooner.
    bf16: bool = False


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network ready to dream with: eval mode, frozen parameters, its layers by readable name.

    Set once when loaded and never changed afterwards (the layer tables are read-only views), so one instance
    can serve many threads; the forward pass itself keeps no state here.
    """

    spec: ModelSpec
    net: nn.Module
    layers: Mapping[str, LayerInfo] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - a device is immutable: one shared default is safe
    not_dreamable: Mapping[str, str] = field(default_factory=dict)  # layer -> why it cannot be dreamed on
    weights_path: Path | None = None  # the file the weights were read from; None: they came from code
    dtype: torch.dtype = torch.float32  # what the network computes in (see `precision`); pictures stay float32
    _weights_stamp: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _weights_digest: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "layers", MappingProxyType(dict(self.layers)))
        object.__setattr__(self, "not_dreamable", MappingProxyType(dict(self.not_dreamable)))
        if self.weights_path is not None:
            object.__setattr__(self, "weights_path", Path(self.weights_path).resolve())  # records outlive the cwd
            object.__setattr__(self, "_weights_stamp", _stamp(self.weights_path))

    def __reduce__(self):  # read-only views neither pickle nor deep-copy: rebuild from plain dicts
        return LoadedModel, (
            self.spec,
            self.net,
            dict(self.layers),
            self.device,
            dict(self.not_dreamable),
            self.weights_path,
            self.dtype,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> str:
        """What a record needs to load this model again: the registered name, the `package.module:factory`
        text, or the name given to `wrap_model`."""
        return self.spec.name

    @property
    def weights_digest(self) -> str:
        """The weights' name for records, "sha256:<hex>": the digest of the file they were read from, else of the
        network's tensors (a wrapped module, a factory without a weights file; dreamscope folds no batch norms
        there, so these are the user's own weights, as they are when first asked). Computed once, then kept."""
        if self._weights_digest is None:
            with _DIGEST_LOCK:
                if self._weights_digest is None:
                    object.__setattr__(self, "_weights_digest", self._compute_digest())
        return self._weights_digest

    def _compute_digest(self) -> str:
        if self.weights_path is None:
            return state_digest(self.net.state_dict())
        if _stamp(self.weights_path) != self._weights_stamp:
            raise DreamscopeError(
                f"the weights file {self.weights_path} changed or went away after model {self.name} was "
                "loaded, so its digest would not name the weights in use; load the model again"
            )
        return "sha256:" + file_digests(self.weights_path)["sha256"]

    def layer(self, name: str) -> LayerInfo:
        """A dreamable layer by readable name, or a pseudo-layer: IMAGE (the picture) or LOGITS (class scores)."""
        if name == IMAGE:
            return LayerInfo(IMAGE, None, 3, 1)
        if name == LOGITS:
            return LayerInfo(LOGITS, self._logits_module(), self.spec.num_classes, None)
        if self.is_class_token(name):
            tokens = self.layers[name.rpartition(":")[0]]
            return LayerInfo(name, tokens.module, tokens.channels, None, Layout(CLS, tokens.layout.extra, tokens.layout.pick))
        if name not in self.layers:
            why = f" ({name} is not dreamable: {self.not_dreamable[name]})" if name in self.not_dreamable else ""
            raise DreamscopeError(
                f"model {self.name} has no layer '{name}'{why}{suggest(name, self.layers)}; "
                f"list them with list_layers({self.name!r}) (dreamscope layers --model {self.name})"
            )
        return self.layers[name]

    def is_class_token(self, name: str) -> bool:
        """Whether `name` is "LAYER:cls", the class token of a token layer that has one."""
        base, _, suffix = name.rpartition(":")
        return suffix == CLS and base in self.layers and self.layers[base].layout.class_token

    def _logits_module(self) -> str:
        if self.spec.logits_module is None:
            raise DreamscopeError(
                f"model {self.name} gives no class scores here (no classifier), so class objectives "
                "cannot use it; dream on one of its layers instead"
            )
        return self.spec.logits_module

    def resolve_class(self, name_or_index: str | int) -> int:
        """A class index of this model: ImageNet's by name, alias or index; other classes by index only."""
        self._logits_module()
        if self.spec.classes == "ImageNet":
            return classes.resolve_class(name_or_index)
        last = self.spec.num_classes - 1
        text = str(name_or_index).strip()
        if not text.lstrip("-").isdigit():
            whose = f"{self.spec.classes} classes" if self.spec.classes else "classes of its own"
            raise DreamscopeError(
                f"model {self.name} scores {self.spec.num_classes} {whose}, not ImageNet's; give a class index from 0 to {last}"
            )
        index = int(text)
        if not 0 <= index <= last:
            raise DreamscopeError(f"class {index} does not exist in model {self.name}, which has classes 0-{last}")
        return index

    def class_names(self) -> list[str] | None:
        """The class names, where dreamscope knows them (ImageNet's); None otherwise."""
        return classes.imagenet_labels() if self.spec.classes == "ImageNet" and self.spec.logits_module is not None else None

    def class_label(self, index: int) -> str:
        """A class's name for messages and results: "banana", or "Places365 #3" / "class #3" without names."""
        index = self.resolve_class(int(index))
        if self.spec.classes == "ImageNet":
            return classes.imagenet_label(index)
        return f"{self.spec.classes or 'class'} #{index}"

    def to_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """Pictures (float32 RGB in [0, 1]) as the network takes them: its input range, dtype and memory layout.
        Differentiable, so gradients come back to the float32 picture."""
        x = self.spec.to_input(rgb)
        if self.spec.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x.to(self.dtype)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size
