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


class Colours(nn.Module):
    """Channels known by construction, for explain's tests: on 4 x 4 px patches (stride 4), channel 0 fires on red,
    1 on green, 2 on blue (each colour's excess over the other two, after a ReLU); class i is channel i's mean. With
    `classes=False` the network ends at its feature map (a model without classes)."""

    def __init__(self, classes: bool = True):
        super().__init__()
        conv = nn.Conv2d(3, 3, 4, stride=4, bias=False)
        with torch.no_grad():
            excess = torch.full((3, 3), -0.5) + 1.5 * torch.eye(3)  # R - (G + B) / 2, and so on
            conv.weight.copy_(excess[:, :, None, None].expand(3, 3, 4, 4) / 16)
        self.features = nn.Sequential(conv, nn.ReLU())
        self.mix = nn.Conv2d(3, 4, 1)  # a deeper layer, for attribution to a unit or a layer
        with torch.no_grad():
            self.mix.weight.copy_(torch.cat([torch.eye(3), torch.ones(1, 3)])[:, :, None, None])
            self.mix.bias.zero_()
        self.classes = classes
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        mixed = self.mix(self.features(x))
        return self.pool(mixed).flatten(1)[:, :3] if self.classes else mixed


def colours():
    return dreamscope.wrap_model(Colours(), name="colours", resolution=64, default_layer="features.1", device="cpu")


def colours_without_classes():
    return dreamscope.wrap_model(
        Colours(classes=False), name="colours-features", resolution=64, default_layer="features.1", device="cpu"
    )


class Slow(nn.Module):
    """ToyNet that takes `seconds` a forward pass: a dreamer slower than any camera, for the live tests."""

    def __init__(self, seconds: float = 0.06):
        super().__init__()
        self.seconds = seconds
        self.net = factory()

    def forward(self, x):
        import time

        time.sleep(self.seconds)
        return self.net(x)
