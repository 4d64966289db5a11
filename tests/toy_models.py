"""Small networks for the "your own model" tests: `--model toy_models:factory` with tests/ on PYTHONPATH."""

from __future__ import annotations

import torch
from torch import nn

import dreamscope


class ToyNet(nn.Module):
    """Two stride-2 convolutions, then a classifier over 10 classes."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(2 * width, 10)

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.features(x))))


class SharedReLU(nn.Module):
    """One ReLU module used twice: its output is ambiguous, so it is not dreamable."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))))


def factory() -> nn.Module:
    torch.manual_seed(0)
    return ToyNet()


def wide_factory() -> nn.Module:
    """The same architecture, twice as wide: its weights do not fit ToyNet."""
    torch.manual_seed(0)
    return ToyNet(width=16)


def wrapped_factory():
    """A factory that gives its preprocessing too, through dreamscope.wrap_model."""
    return dreamscope.wrap_model(factory(), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), name="toy", device="cpu")


def raising_factory():
    raise RuntimeError("checkpoint server unreachable")


def not_a_module():
    return {"weights": [1, 2, 3]}


NOT_CALLABLE = 42
