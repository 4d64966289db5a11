"""Drawing a microscope's channels: a block of one layer's channels, each with its main picture and diverse samples,
in one optimization, and the classes each channel pushes toward, in one forward-mode pass. Pure data: the
microscope's work (its items, resuming, exemplars) is `work/microscope.py`, its website `pages/microscope.py`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
import torch.autograd.forward_ad as fwAD

from ..models import LoadedModel, precision
from ..models.spec import LOGITS
from ..optvis import objectives, params, render, transforms
from ..settings import MicroscopeSettings
from . import base


def layer_folder(layer: str) -> str:
    """A layer's folder name in a microscope site: its name, with anything but letters, digits, '.', '-' and '_'
    replaced. (The site's file names live here, beside the drawing, so explain can read a site's pictures.)"""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in layer)


def picture_name(channel: int, sample: int = 0) -> str:
    return f"{channel}.png" if sample == 0 else f"{channel}-s{sample}.png"


FLAT = 10 / 255  # a picture whose pixels vary less than this (standard deviation) shows nothing: flat grey


@dataclass
class Drawn:
    """A block's pictures (N, 3, H, W) on the CPU, picture i * (1 + samples) + j being sample j of channel i (0: the
    main picture); each picture's final mean activation of its channel; the samples drawn again because the
    diversity term had pushed them flat, and those still flat after that (indices into the pictures)."""

    pictures: torch.Tensor
    activations: list[float]
    redrawn: list[int] = field(default_factory=list)
    flat: list[int] = field(default_factory=list)


def render_channels(net: LoadedModel, layer: str, channels: list[int], settings: MicroscopeSettings) -> Drawn:
    """Every channel's main picture and `samples` more, in one batch (the samples pushed apart by the diversity
    term). A sample the push left flat grey (at shallow layers a few in a hundred: 5 of efficientnet-lite0's 48
    at stage1.0) is drawn again from another start without it, all such samples of the block in one more batch:
    textured like the main picture, where pushing apart a quarter as hard left more of them washed out."""
    per = 1 + settings.samples
    units = [(channel, i * per + j) for i, channel in enumerate(channels) for j in range(per)]
    diverse = settings.samples >= 2 and settings.diversity > 0
    generator = base.generator_for(settings.seed, layer, channels[0])
    groups = [[i * per + 1 + j for j in range(settings.samples)] for i in range(len(channels))]
    pictures = _optimize(net, layer, [c for c, _ in units], settings.diversity, settings, generator, groups if diverse else None)
    redrawn = [index for index in range(len(units)) if index % per and _is_flat(pictures[index])] if diverse else []
    if redrawn:
        again = base.generator_for(settings.seed, layer, channels[0], "again")
        pictures[redrawn] = _optimize(net, layer, [units[i][0] for i in redrawn], 0.0, settings, again, None)
    with torch.no_grad():
        act = render.activations(net, [layer], pictures.to(net.device))[layer]
    index = torch.tensor([channel for channel, _ in units])
    losses = act[torch.arange(len(index)), index.to(act.device)].mean(dim=(1, 2))
    return Drawn(pictures, [float(v) for v in losses], redrawn, [i for i in redrawn if _is_flat(pictures[i])])


def _optimize(net, layer: str, channels: list[int], diversity: float, settings, generator, groups) -> torch.Tensor:
    """Pictures of `channels` (one each, repeats allowed), pushed apart within `groups` when given."""
    objective = sum(
        (objectives.channel(layer, channel, sample=n) for n, channel in enumerate(channels)), objectives.Objective(terms=())
    )
    if groups is not None:
        objective = objective + diversity * objectives.diversity(layer, groups)
    param = params.make_param("fft", len(channels), settings.size, settings.size, generator).to(net.device)
    steps = render.optimize(
        precision.at(net, settings.precision),
        objective,
        param,
        steps=settings.steps,
        learning_rate=settings.learning_rate,
        generator=generator,
        transform=transforms.robustness,
    )
    return deque(steps, maxlen=1)[0].picture.float().cpu()  # the last step's


def _is_flat(picture: torch.Tensor) -> bool:
    return float(picture.std()) < FLAT


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


# Names that lived here before the package was split into layers (0.2): the microscope's work went to work/, its
# site's names to pages/. Both are layers above this one, which it may not import, so an old spelling says where.
_WORK = "dreamscope.work.microscope"
_MOVED = {
    **{
        name: f"{_WORK}.{name}"
        for name in (
            "MicroscopeResult",
            "PATCH_PX",
            "Plan",
            "WORK",
            "block_complete",
            "block_settings",
            "cut_exemplars",
            "draw_block",
            "merge_exemplars",
            "plan",
            "search_shard",
            "shard_complete",
            "shard_path",
        )
    },
    "microscope": f"{_WORK}.microscope (or dreamscope.microscope)",
    "microscope_iter": f"{_WORK}.microscope_iter (or dreamscope.microscope_iter)",
    "block_name": "dreamscope.pages.microscope.block_name",
    "SHARD_PICTURES": "dreamscope.work.batch.SHARD_PICTURES (one shard size for all batch work)",
}


def __getattr__(name: str):
    where = f": it moved to {_MOVED[name]}" if name in _MOVED else ""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{where}")
