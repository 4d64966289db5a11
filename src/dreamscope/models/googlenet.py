"""GoogLeNet (Inception v1, Szegedy et al. 2014) as BVLC trained it in Caffe: the network of the original DeepDream.

Built from Caffe's deploy.prototxt, with Caffe's layer names and semantics:
- every convolution is followed by an in-place ReLU, so a convolution's blob (`inception_4c/1x1`) is the
  rectified output; here each convolution module returns it rectified;
- pooling rounds the output size up (Caffe's ceil mode); PyTorch's ceil_mode has the same rule;
- LRN across 5 channels, alpha 1e-4, beta 0.75, k 1 (PyTorch divides alpha by the size, as Caffe does);
- `pool5/7x7_s1` averages a 7x7 window, the whole map at 224 px; it is a global average here, so the
  classifier also works on other sizes. Dropout is omitted (inference only).

Module paths mirror the Caffe names with `/` as the module separator: layer `inception_4c/output` is module
`inception_4c.output`, and the weights of `conv2/3x3` are `conv2.3x3.weight` / `conv2.3x3.bias`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DreamscopeError
from . import caffe
from .weights import assign, few, load_state_dict_file, shape_text

# name: in, 1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj (from deploy.prototxt)
INCEPTIONS = {
    "inception_3a": (192, 64, 96, 128, 16, 32, 32),
    "inception_3b": (256, 128, 128, 192, 32, 96, 64),
    "inception_4a": (480, 192, 96, 208, 16, 48, 64),
    "inception_4b": (512, 160, 112, 224, 24, 64, 64),
    "inception_4c": (512, 128, 128, 256, 24, 64, 64),
    "inception_4d": (512, 112, 144, 288, 32, 64, 64),
    "inception_4e": (528, 256, 160, 320, 32, 128, 128),
    "inception_5a": (832, 256, 160, 320, 32, 128, 128),
    "inception_5b": (832, 384, 192, 384, 48, 128, 128),
}
BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj", "output")
CLASSIFIER = "loss3/classifier"
NOT_DREAMABLE = {
    "pool5/7x7_s1": "global average: one value per channel, no picture left to dream on",
    CLASSIFIER: "class scores, not a feature map; use them with: dreamscope visualize --class",
}


class ConvReLU(nn.Conv2d):
    """Convolution + Caffe's in-place ReLU: the module's output is the rectified blob."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class Concat(nn.Module):
    def forward(self, *branches: torch.Tensor) -> torch.Tensor:
        return torch.cat(branches, dim=1)


class GlobalAverage(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


def _pool(kernel: int, stride: int, padding: int = 0) -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class Inception(nn.ModuleDict):
    def __init__(self, in_ch, c1, c3r, c3, c5r, c5, pool_proj):
        super().__init__(
            {
                "1x1": ConvReLU(in_ch, c1, 1),
                "3x3_reduce": ConvReLU(in_ch, c3r, 1),
                "3x3": ConvReLU(c3r, c3, 3, padding=1),
                "5x5_reduce": ConvReLU(in_ch, c5r, 1),
                "5x5": ConvReLU(c5r, c5, 5, padding=2),
                "pool": _pool(3, 1, 1),
                "pool_proj": ConvReLU(in_ch, pool_proj, 1),
                "output": Concat(),
            }
        )
        self.channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self["output"](
            self["1x1"](x),
            self["3x3"](self["3x3_reduce"](x)),
            self["5x5"](self["5x5_reduce"](x)),
            self["pool_proj"](self["pool"](x)),
        )


class GoogLeNet(nn.Module):
    """Input: BGR, 0-255, mean subtracted (see `catalogue.caffe_input`)."""

    not_dreamable = NOT_DREAMABLE

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.ModuleDict({"7x7_s2": ConvReLU(3, 64, 7, stride=2, padding=3)})
        self.pool1 = nn.ModuleDict({"3x3_s2": _pool(3, 2), "norm1": _lrn()})
        self.conv2 = nn.ModuleDict({"3x3_reduce": ConvReLU(64, 64, 1), "3x3": ConvReLU(64, 192, 3, padding=1), "norm2": _lrn()})
        self.pool2 = nn.ModuleDict({"3x3_s2": _pool(3, 2)})
        for name in ("inception_3a", "inception_3b"):
            self.add_module(name, Inception(*INCEPTIONS[name]))
        self.pool3 = nn.ModuleDict({"3x3_s2": _pool(3, 2)})
        for name in ("inception_4a", "inception_4b", "inception_4c", "inception_4d", "inception_4e"):
            self.add_module(name, Inception(*INCEPTIONS[name]))
        self.pool4 = nn.ModuleDict({"3x3_s2": _pool(3, 2)})
        for name in ("inception_5a", "inception_5b"):
            self.add_module(name, Inception(*INCEPTIONS[name]))
        self.pool5 = nn.ModuleDict({"7x7_s1": GlobalAverage()})
        self.loss3 = nn.ModuleDict({"classifier": nn.Linear(1024, num_classes)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1["norm1"](self.pool1["3x3_s2"](self.conv1["7x7_s2"](x)))
        x = self.conv2["norm2"](self.conv2["3x3"](self.conv2["3x3_reduce"](x)))
        x = self.inception_3b(self.inception_3a(self.pool2["3x3_s2"](x)))
        x = self.pool3["3x3_s2"](x)
        for block in (self.inception_4a, self.inception_4b, self.inception_4c, self.inception_4d, self.inception_4e):
            x = block(x)
        x = self.inception_5b(self.inception_5a(self.pool4["3x3_s2"](x)))
        return self.loss3["classifier"](self.pool5["7x7_s1"](x).flatten(1))

    def layer_table(self) -> list[tuple[str, str, int, int]]:
        """(Caffe name, module path, channels, stride) for every dreamable layer, shallow to deep."""
        rows = [
            ("conv1/7x7_s2", 64, 2),
            ("pool1/3x3_s2", 64, 4),
            ("pool1/norm1", 64, 4),
            ("conv2/3x3_reduce", 64, 4),
            ("conv2/3x3", 192, 4),
            ("conv2/norm2", 192, 4),
            ("pool2/3x3_s2", 192, 8),
        ]
        for name, stride, pool_after in (
            ("inception_3a", 8, None),
            ("inception_3b", 8, "pool3/3x3_s2"),
            *((f"inception_4{c}", 16, None) for c in "abcd"),
            ("inception_4e", 16, "pool4/3x3_s2"),
            ("inception_5a", 32, None),
            ("inception_5b", 32, None),
        ):
            block = getattr(self, name)
            for branch in BRANCHES:
                module = block[branch]
                channels = {"pool": block["1x1"].in_channels, "output": block.channels}.get(branch) or getattr(
                    module, "out_channels", 0
                )
                rows.append((f"{name}/{branch}", channels, stride))
            if pool_after:
                rows.append((pool_after, block.channels, stride * 2))
        return [(name, name.replace("/", "."), channels, stride) for name, channels, stride in rows]


# The training-time auxiliary classifiers (loss1/*, loss2/*) are in the files but not in the network.
AUXILIARY = ("loss1/", "loss2/", "loss1_", "loss2_", "loss1.", "loss2.")


def parameter_layers(net: nn.Module) -> dict[str, nn.Module]:
    """Caffe layer name -> the convolution or fully connected module that holds its weight and bias."""
    return {path.replace(".", "/"): module for path, module in net.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}


def key_stems(layer: str) -> tuple[str, ...]:
    """The state-dict names of a layer, in the layouts accepted: ours (`inception_4c.1x1`), Caffe's own
    (`inception_4c/1x1`) and neural-dream's converted files (`inception_4c_1x1`, and `loss3_classifier_1`
    for fully connected layers, as its converter named them)."""
    flat = layer.replace("/", "_")
    return layer.replace("/", "."), layer, flat, flat + "_1"


class MissingClassifier(nn.Module):
    """Stands in for loss3/classifier when a weights file has none: asking for class scores is a clear error."""

    def __init__(self, model: str, source: Path):
        super().__init__()
        self.message = (
            f"the {model} weights in {source} have no classifier (loss3/classifier), so there are no class "
            "scores; dream on a layer instead, or use weights with the classifier (the .caffemodel has it)"
        )

    def forward(self, x):
        raise DreamscopeError(self.message)


STATE_DICT_SUFFIXES = (".pth", ".pt", ".safetensors")


def is_state_dict_file(path: Path) -> bool:
    """By name, else by content: PyTorch files are zip archives (or, before 1.6, pickles); the rest is Caffe."""
    if path.suffix.lower() in STATE_DICT_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def read_layers(path: Path, net: nn.Module, model: str) -> dict[str, list[torch.Tensor]]:
    """Caffe layer name -> [weight, bias] from a .caffemodel or a state dict in any accepted layout."""
    if not is_state_dict_file(path):
        return caffe.read_caffemodel(path)
    stems = {stem: layer for layer in parameter_layers(net) for stem in key_stems(layer)}
    layers: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in load_state_dict_file(path).items():
        stem, _, kind = key.rpartition(".")
        if stem in stems and kind in ("weight", "bias"):
            layers.setdefault(stems[stem], {})[kind] = tensor
        elif not key.startswith(AUXILIARY):
            unknown.append(key)
    if unknown:
        raise DreamscopeError(
            f"weights in {path} do not fit {model}: unknown entries {few(unknown)}; is it a GoogLeNet state dict?"
        )
    return {layer: [blobs[kind] for kind in ("weight", "bias") if kind in blobs] for layer, blobs in layers.items()}


def load_weights(net: GoogLeNet, path: str | Path, model: str) -> bool:
    """Fill `net` from a .caffemodel or a converted state dict, name by name, checking every shape.

    Returns whether the file had the classifier; without one, class scores raise a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise DreamscopeError(f"weights file not found: {path}")
    layers = read_layers(path, net, model)
    expected = parameter_layers(net)
    unknown = [name for name in layers if name not in expected and not name.startswith(AUXILIARY)]
    missing = [name for name in expected if name not in layers and name != CLASSIFIER]
    if unknown or missing:
        found = ", ".join(list(layers)[:3])
        problem = f"it has layers GoogLeNet has not ({few(unknown)})" if unknown else f"it lacks layer {few(missing)}"
        raise DreamscopeError(
            f"weights in {path} do not fit {model}: {problem}; is it a GoogLeNet file? (its first layers: {found})"
        )
    state = {}
    for name, module in expected.items():
        if name not in layers:
            continue
        blobs = layers[name]
        if len(blobs) != 2:
            raise DreamscopeError(
                f"weights in {path} do not fit {model}: layer {name} has {len(blobs)} blob(s), not a weight and a bias"
            )
        for blob, kind in zip(blobs, ("weight", "bias")):
            needed = getattr(module, kind).shape
            dims = list(blob.shape)
            while len(dims) > len(needed) and dims[0] == 1:  # pre-2015 Caffe blobs are always 4-D: 1x1x1000x1024
                dims.pop(0)
            if tuple(dims) != tuple(needed):
                hint = f" (a classifier for {dims[0]} classes)" if name == CLASSIFIER and dims else ""
                raise DreamscopeError(
                    f"weights in {path} do not fit {model}: layer {name} {kind} is {shape_text(blob.shape)} in the file "
                    f"but {model} needs {shape_text(needed)}{hint}; are they for a different network?"
                )
            state[f"{name.replace('/', '.')}.{kind}"] = blob.reshape(needed)
    has_classifier = CLASSIFIER in layers
    if not has_classifier:
        net.loss3["classifier"] = MissingClassifier(model, path)
    assign(net, state, path, model)
    return has_classifier
