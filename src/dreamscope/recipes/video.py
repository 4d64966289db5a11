"""Dream a video without flicker: each frame starts from the previous dream, carried along the optical flow.

Dreaming every frame on its own invents different detail each time, and the result flickers. Here the previous
dream's own detail (dream minus its source frame) is warped along the flow between the two source frames onto the
new source frame (`flow.carry_detail`); where the flow cannot be trusted (hidden or revealed, entering the frame)
nothing is carried. Then each pixel steps fully until it has had as many steps as the first frame, and by a small
`refresh` share after that: the invented detail moves with the scene instead of boiling. `carry="pixels"` is the
earlier way, the warped dreamed frame blended into the new source frame (`flow.carry`).
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

# The defaults (VideoSettings): 2 octaves of 5 steps for the first frame, 2 steps per octave for every later frame,
# 0.99 of the detail carried, refresh 0.05. Measured with benchmarks/bench_video.py (docs/benchmarks.md "Zoom and
# video"): flicker 0.062 of frame by frame on a pan and 0.113 on a clip with a moving object and an
# occlusion, at about the same strength; carrying the pixels (blend 0.8) gave 0.47 and 0.53. The refresh barely
# matters: what flickers is what must be dreamed anew.


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
    blend = settings.carried_share
    # Carrying detail, the flow at full resolution: 0.113 of frame-by-frame flicker on the occlusion clip against 0.165
    # at DIS's usual half (its two flows take 12 ms a frame at 192x144 instead of 5, 0.45 s instead of 0.12 at 720p).
    estimator = optical_flow.FlowEstimator(full_resolution=settings.carry == "detail") if blend > 0 else None
    previous_source = previous_dream = shape = had = level = None
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
        start, weights = source, None
        carried = estimator is not None and previous_dream is not None
        if carried and settings.carry == "pixels":
            start = optical_flow.carry(estimator, previous_source, previous_dream, source, blend)
        elif carried:
            start, had = optical_flow.carry_detail(estimator, previous_source, previous_dream, source, blend, had, level)
            # Full steps where the dream is new (revealed, entering the frame) until it has had as many as the first
            # frame's, then `refresh` of a step: a small step each frame changes less than a large one now and then.
            share = np.clip((settings.steps - had) / settings.frame_steps, settings.refresh, 1.0).astype(np.float32)
            had = had + share * settings.frame_steps
            weights = torch.from_numpy(share)[None, None].to(net.device)
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
            weights=weights,
        )
        x = yield from nest(dreamed, stage, at, span)
        previous_source = source
        previous_dream = x[0].permute(1, 2, 0).cpu().numpy()
        if not carried:
            had = np.full(source.shape[:2], float(settings.steps), np.float32)
            level = float(np.abs(previous_dream - source).mean())
        yield Event((stage,), at + span, None, x, frame=index)
    yield finish(index + 1)


def flicker(frames: Sequence[Image.Image], motion) -> float:
    """Mean absolute change (0-255) between consecutive frames after undoing their true motion.

    `motion` (dx, dy) is a whole-frame motion: how far the content moves in pixels from one frame to the next (a
    camera panning right by 2 px moves the content by (-2, 0)); only the part seen in both frames is compared. Or,
    for scenes whose parts move differently, one (flow, seen) per consecutive pair: frame i + 1 at pixel p shows
    what frame i showed at p + flow[p] (integer (dx, dy) arrays, HxWx2), compared only where `seen` is true
    (the pixel is neither hidden nor revealed between the two).
    """
    changes = []
    for index, (before, after) in enumerate(zip(frames, frames[1:])):
        a = np.asarray(before.convert("RGB"), dtype=np.float32)
        b = np.asarray(after.convert("RGB"), dtype=np.float32)
        height, width = a.shape[:2]
        if isinstance(motion, tuple) and len(motion) == 2 and all(isinstance(m, int) for m in motion):
            dx, dy = motion
            # after[y, x] shows what before[y - dy, x - dx] showed
            a_part = a[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
            b_part = b[max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)]
            changes.append(float(np.abs(a_part - b_part).mean()))
            continue
        flow, seen = motion[index]
        rows, columns = np.mgrid[0:height, 0:width]
        x = (columns + flow[..., 0]).clip(0, width - 1)
        y = (rows + flow[..., 1]).clip(0, height - 1)
        changes.append(float(np.abs(b - a[y, x])[seen].mean()))
    return float(np.mean(changes))
