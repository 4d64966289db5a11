"""Drawing a microscope's channels: a block of one layer's channels, each with its main picture and diverse samples,
in one optimization, and the classes each channel pushes toward, in one forward-mode pass. Pure data: the
microscope's work (its items, resuming, exemplars) is `work/microscope.py`, its website `pages/microscope.py`.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.autograd.forward_ad as fwAD

from ..models import LoadedModel
from ..models.spec import LOGITS
from ..optvis import objectives, params, render, transforms
from ..settings import MicroscopeSettings
from . import base


def render_channels(net: LoadedModel, layer: str, channels: list[int], settings: MicroscopeSettings):
    """Every channel's main picture and `samples` more, in one batch: picture i * (1 + samples) + j is sample j of
    channel i (0: the main picture, drawn without the diversity term). Returns the pictures (N, 3, H, W) on the CPU
    and each picture's final mean activation of its channel."""
    per = 1 + settings.samples
    objective = sum(
        (objectives.channel(layer, channel, sample=i * per + j) for i, channel in enumerate(channels) for j in range(per)),
        objectives.Objective(terms=()),
    )
    if settings.samples >= 2 and settings.diversity > 0:
        groups = [[i * per + 1 + j for j in range(settings.samples)] for i in range(len(channels))]
        objective = objective + settings.diversity * objectives.diversity(layer, groups)
    generator = base.generator_for(settings.seed, layer, channels[0])
    param = params.make_param("fft", len(channels) * per, settings.size, settings.size, generator).to(net.device)
    steps = render.optimize(
        net,
        objective,
        param,
        steps=settings.steps,
        learning_rate=settings.learning_rate,
        generator=generator,
        transform=transforms.robustness,
    )
    pictures = deque(steps, maxlen=1)[0].picture.float()  # the last step's
    with torch.no_grad():
        act = render.activations(net, [layer], pictures)[layer]
    index = torch.tensor([c for c in channels for _ in range(per)])
    losses = act[torch.arange(len(index)), index.to(act.device)].mean(dim=(1, 2))
    return pictures.cpu(), [float(v) for v in losses]


def class_push(net: LoadedModel, layer: str, pictures: torch.Tensor, channels: list[int]) -> torch.Tensor | None:
    """How much each class's logit rises when channel `channels[i]` rises by 1 everywhere on picture i (its own
    feature visualization): the derivative along that direction, one forward-mode pass for the whole block.
    None for a model without class scores."""
    if net.spec.logits_module is None:
        return None
    picked = torch.tensor(channels)

    def with_tangent(output):
        tangent = torch.zeros_like(output)
        tangent[torch.arange(len(channels)), picked.to(output.device)] = 1.0
        return fwAD.make_dual(output, tangent)

    with torch.no_grad(), fwAD.dual_level():
        acts = render.activations(net, [LOGITS], pictures.to(net.device), replace={layer: with_tangent})
        return fwAD.unpack_dual(acts[LOGITS]).tangent.float().cpu()
