"""Dream a video without flicker: each frame starts from the previous dream, carried along the optical flow.

Dreaming every frame on its own invents different detail each time, and the result flickers. Here each source
frame is blended with the previous dreamed frame warped onto it along the flow between the two source frames;
where that flow can't be trusted (occlusions, things entering the frame) the source frame is used as is. The
blend is then dreamed, so the invented detail moves with the scene instead of boiling.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from .. import flow as optical_flow
from .. import images
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, load_model
from . import dream as dream_recipe
from .zoom import Frame

BLEND = 0.8  # share of the warped previous dream in each frame's starting picture
OCTAVES = 2
STEPS = 5  # per octave, for the first frame
# Per octave for every later frame: it starts from a carried dream, so it only refines. Measured on a 12-frame
# pan (benchmarks/bench_flicker.py): blend 0.8 with 2 steps keeps the per-frame dream's strength (10.6 vs 10.3
# mean change from the source, 0-255) at 0.48 of its flicker; blend 0.5 with 5 steps only got to 0.77.
FRAME_STEPS = 2


def video_iter(
    frames: Iterable[Image.Image],
    *,
    count: int | None = None,
    blend: float = BLEND,
    model: str | LoadedModel = DEFAULT_MODEL,
    layer: str | Sequence[str] | None = None,
    channels: str | Sequence[int] | None = None,
    octaves: int = OCTAVES,
    octave_scale: float = dream_recipe.OCTAVE_SCALE,
    steps: int = STEPS,
    step_size: float = dream_recipe.STEP_SIZE,
    jitter: int = dream_recipe.JITTER,
    guide: Image.Image | None = None,
    seed: int = dream_recipe.SEED,
    tile_size: int | str | None = dream_recipe.TILE,
    frame_steps: int = FRAME_STEPS,
    device: str | None = None,
) -> Iterator[Frame]:
    """Dream a stream of frames (PIL images, all one size), yielding one dreamed Frame per source frame.

    `frames` is consumed lazily, one at a time, so a long video never sits in memory. `blend` 0 dreams every
    frame on its own (flickers); higher values carry more of the previous dream along the flow. The first frame
    is dreamed with `steps` per octave, later ones, which start from the carried dream, with `frame_steps`.
    Every frame uses the same seed, so the jitter pattern doesn't change from frame to frame either.
    """
    dream_recipe.check_settings(octaves, octave_scale, steps, step_size, jitter, tile_size, None, seed)
    if not 0.0 <= blend < 1.0:
        raise DreamscopeError(f"blend must be from 0 (no carry-over) to below 1, got {blend}")
    if not isinstance(frame_steps, int) or frame_steps < 1:
        raise DreamscopeError(f"frame steps must be a whole number of at least 1, got {frame_steps}")
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    dream_recipe.check_tiling(net, tile_size)
    frames = iter(frames)
    try:
        first = next(frames).convert("RGB")
    except StopIteration:
        raise DreamscopeError("the video has no frames") from None
    x = images.to_tensor(first, net.device)
    objective = dream_recipe.build_objective(net, x, layer, channels, guide)
    sizes = dream_recipe.plan_octaves(net, objective, x.shape[-2:], octaves, octave_scale)
    label = ",".join(objective.layers)
    shape = (first.height, first.width, 3)

    def run() -> Iterator[Frame]:
        estimator = optical_flow.FlowEstimator() if blend > 0 else None
        previous_source = previous_dream = None
        for index, picture in enumerate(itertools.chain([first], frames)):
            source = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
            if source.shape != shape:
                raise DreamscopeError(f"frame {index + 1} is {picture.width}x{picture.height}, not {first.width}x{first.height} like the first")
            start = source
            if estimator is not None and previous_dream is not None:
                backward, reliable = estimator.backward(previous_source, source)
                weight = (blend * optical_flow.soften(reliable))[..., None]
                start = weight * optical_flow.warp(previous_dream, backward) + (1.0 - weight) * source
            generator = torch.Generator().manual_seed(seed)
            octave_steps = frame_steps if estimator is not None and previous_dream is not None else steps
            start_x = torch.from_numpy(np.ascontiguousarray(start)).permute(2, 0, 1).unsqueeze(0).to(net.device)
            for event in dream_recipe.dream_tensor(net, objective, start_x, sizes, octave_steps, step_size, jitter, generator, tile_size, soft_bounds=True):
                pass
            previous_source = source
            previous_dream = event.tensor[0].permute(1, 2, 0).cpu().numpy()
            yield Frame(index, count or 0, event.tensor, label)

    return run()


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
        a_part = a[max(0, -dy): height - max(0, dy), max(0, -dx): width - max(0, dx)]
        b_part = b[max(0, dy): height - max(0, -dy), max(0, dx): width - max(0, -dx)]
        changes.append(float(np.abs(a_part - b_part).mean()))
    return float(np.mean(changes))
