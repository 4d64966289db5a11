"""Synthetic GoogLeNet weights in the formats users have: random tensors of the real shapes, written as real
.caffemodel files (through protobuf) and as state dicts in each accepted key layout. No real weights exist here."""

from __future__ import annotations

from pathlib import Path

import torch

import caffe_writer
from dreamscope.models import googlenet

AUX_LAYERS = {"loss1/conv": [(128, 512, 1, 1), (128,)]}  # a training-time head the loader must skip


def reference(num_classes: int = 1000, seed: int = 0) -> googlenet.GoogLeNet:
    torch.manual_seed(seed)
    return googlenet.GoogLeNet(num_classes).eval()


def caffe_layers(net, classifier: bool = True, aux: bool = True) -> dict[str, list[torch.Tensor]]:
    """Caffe layer name -> [weight, bias] of `net`, plus an auxiliary head's random blobs."""
    layers = {name: [m.weight.detach().clone(), m.bias.detach().clone()] for name, m in googlenet.parameter_layers(net).items()}
    if not classifier:
        del layers[googlenet.CLASSIFIER]
    if aux:
        layers.update({name: [torch.randn(shape) for shape in shapes] for name, shapes in AUX_LAYERS.items()})
    return layers


def write_caffemodel(path: Path, net, legacy: bool = False) -> Path:
    return caffe_writer.write_caffemodel(path, caffe_layers(net), name="GoogleNet", legacy=legacy)


def state_dict(net, layout: str, classifier: bool = True) -> dict[str, torch.Tensor]:
    """Keys as dreamscope names modules ("ours"), as Caffe names layers ("caffe"), or as neural-dream's
    converted files do ("neural-dream": slashes become underscores, fully connected layers get "_1")."""
    state = {}
    for name, (weight, bias) in caffe_layers(net, classifier=classifier).items():
        fully_connected = weight.dim() == 2
        stem = {
            "ours": name.replace("/", "."),
            "caffe": name,
            "neural-dream": name.replace("/", "_") + ("_1" if fully_connected else ""),
        }[layout]
        state[f"{stem}.weight"], state[f"{stem}.bias"] = weight, bias
    return state


class CreatesFile:
    """A pickled object whose unpickling would create `marker`: the file must never appear."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_evil_pickle(path: Path, marker: Path) -> Path:
    torch.save({"conv1_7x7_s2.weight": CreatesFile(marker)}, path)
    return path
