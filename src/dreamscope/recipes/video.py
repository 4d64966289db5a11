"""Dream a video without flicker: each frame starts from the previous dream, carried along the optical flow.

Dreaming every frame on its own invents different detail each time, and the result flickers. Here each source
frame is blended with the previous dreamed frame warped onto it along the flow between the two source frames;
where that flow can't be trusted (occlusions, things entering the frame) the source frame is used as is. The
blend is then dreamed, so the invented detail moves with the scene instead of boiling.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError
from ..events import Event, Run, Stage, finish, nest
from ..io import provenance
from ..models import LoadedModel, precision
from ..settings import VideoSettings
from . import base
from . import dream as dream_recipe
from . import flow as optical_flow

# The defaults (VideoSettings): blend 0.8, 2 octaves of 5 steps for the first frame, 2 steps per octave for every
# later frame, which starts from a carried dream and only refines. Measured on a 24-frame pan
# (benchmarks/bench_video.py): blend 0.8 with 2 steps keeps the per-frame dream's strength at 0.47 of its
# flicker; blend 0.5 with 5 steps only got to 0.77.


def check(settings: VideoSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do, for frames of the input's size."""
    size = (sizes or {}).get("input")
    dream_recipe.check_plan(model, [(settings.layer, "layer")], settings, size and imaging.limited_size(size, settings.max_size))


def video_iter(
    frames: Iterable[Image.Image],
    settings: VideoSettings | None = None,
    *,
    count: int | None = None,
    guide: Image.Image | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Dream a stream of frames (PIL images, all one size): a Run of events, one with `frame` set per source frame.

    `frames` is consumed lazily, one at a time, so a long video never sits in memory; `count` (when known, or the
    length of `frames`, a `videos.VideoInfo` say) sets the progress. `blend` 0 dreams every frame on its own (flickers); higher values carry more of the previous
    dream along the flow. The first frame is dreamed with `steps` per octave, later ones, which start from the
    carried dream, with `frame_steps`. Every frame uses the same seed, so the jitter pattern doesn't change from
    frame to frame either.
    """
    settings, net = base.prepare(VideoSettings, settings, fields, model, device)
    if count is None and hasattr(frames, "__len__"):
        count = len(frames)
    frames = iter(frames)
    try:
        first = next(frames)
    except StopIteration:
        raise DreamscopeError("the video has no frames") from None
    check(settings, net, {"input": first.size})
    first = imaging.limit_size(first.convert("RGB"), settings.max_size)
    x = imaging.to_tensor(first, net.device)
    objective = dream_recipe.build_objective(net, x, settings.layer, settings.channels, guide)
    plan = dream_recipe.plan_octaves(net, objective, x.shape[-2:], settings)
    dreamer = precision.at(net, settings.precision)
    record = provenance.make(settings, net, {"guide": guide}, precision=precision.name_of(dreamer))
    events = _frames(dreamer, objective, plan, settings, itertools.chain([first], frames), count, ",".join(objective.layers))
    return Run(events, settings, record, net)


def _frames(
    net, objective, plan, settings: VideoSettings, frames: Iterator[Image.Image], count: int | None, label: str
) -> Iterator[Event]:
    estimator = optical_flow.FlowEstimator() if settings.blend > 0 else None
    previous_source = previous_dream = shape = None
    total = count or 0
    index = -1
    for index, picture in enumerate(frames):
        picture = imaging.limit_size(picture.convert("RGB"), settings.max_size)
        source = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
        if shape is None:
            shape, size = source.shape, picture.size
        elif source.shape != shape:
            raise DreamscopeError(
                f"frame {index + 1} is {picture.width}x{picture.height}, not {size[0]}x{size[1]} like the first"
            )
        start = source
        carried = estimator is not None and previous_dream is not None
        if carried:
            start = optical_flow.carry(estimator, previous_source, previous_dream, source, settings.blend)
        start_x = torch.from_numpy(np.ascontiguousarray(start)).permute(2, 0, 1).unsqueeze(0).to(net.device)
        stage = Stage("frame", index + 1, max(total, index + 1), label)
        at, span = (index / total, 1 / total) if total else (0.0, 0.0)
        dreamed = dream_recipe.octave_dream(
            net,
            objective,
            start_x,
            plan,
            steps=settings.frame_steps if carried else settings.steps,
            step_size=settings.step_size,
            jitter=settings.jitter,
            generator=base.generator(settings.seed),
            soft_bounds=True,
        )
        x = yield from nest(dreamed, stage, at, span)
        previous_source = source
        previous_dream = x[0].permute(1, 2, 0).cpu().numpy()
        yield Event((stage,), at + span, None, x, frame=index)
    yield finish(index + 1)


def flicker(frames: Sequence[Image.Image], motion: tuple[int, int]) -> float:
    """Mean absolute change (0-255) between consecutive frames after undoing a known whole-frame motion.

    `motion` (dx, dy) is how far the content moves in pixels from one frame to the next (a camera panning right
    by 2 px moves the content by (-2, 0)); only the part seen in both frames is compared.
    """
    dx, dy = motion
    changes = []
    for before, after in zip(frames, frames[1:]):
        a = np.asarray(before.convert("RGB"), dtype=np.float32)
        b = np.asarray(after.convert("RGB"), dtype=np.float32)
        height, width = a.shape[:2]
        # after[y, x] shows what before[y - dy, x - dx] showed
        a_part = a[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
        b_part = b[max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)]
        changes.append(float(np.abs(a_part - b_part).mean()))
    return float(np.mean(changes))
