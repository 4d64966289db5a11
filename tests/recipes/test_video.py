"""Flow-guided video dreams: the flow and occlusion test on known motion, and half the flicker of dreaming
each frame on its own."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import occlusion_frames, pan_frames
from dreamscope.errors import DreamscopeError
from dreamscope.recipes import flow, video

MOTION = (3, 1)  # the camera's pan per frame; the content moves the other way


def as_array(picture) -> np.ndarray:
    return np.asarray(picture, dtype=np.float32) / 255.0


def test_flow_recovers_a_pan_and_flags_what_enters_the_frame():
    before, after = (as_array(p) for p in pan_frames(2, size=(128, 96), motion=(4, 2)))
    backward, reliable = flow.FlowEstimator().backward(before, after)
    inner = (slice(10, -10), slice(10, -14))
    assert np.allclose(np.median(backward[inner].reshape(-1, 2), axis=0), (4, 2), atol=0.3)
    warped = flow.warp(before, backward)
    assert np.abs(warped - after)[inner].mean() < 0.25 * np.abs(before - after)[inner].mean()
    # the right and bottom edges show what the camera just brought into view: nothing to carry there
    assert reliable[:, -3:].mean() < 0.2 and reliable[inner].mean() > 0.9


def finished(run) -> list:
    return [event.image for event in run if event.frame is not None]


def strength(out, frames) -> float:
    return float(np.mean([np.abs(as_array(o) - as_array(s)).mean() for o, s in zip(out, frames)]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("clip", ["pan", "occlusion"])
def test_carried_detail_flickers_a_fraction_of_frame_by_frame_at_the_same_strength(model, clip, seed):
    if clip == "pan":
        frames, motion = pan_frames(10, size=(128, 96), motion=MOTION), (-MOTION[0], -MOTION[1])
    else:
        frames, motion = occlusion_frames(12, size=(128, 96), speed=5)
    assert video.flicker(frames, motion) < 1.0  # the measure itself: the source, its motion undone, is still
    alone = finished(video.video_iter(frames, blend=0.0, model=model, seed=seed))
    pixels = finished(video.video_iter(frames, carry="pixels", model=model, seed=seed))
    detail = finished(video.video_iter(frames, model=model, seed=seed))
    ratio = {
        name: video.flicker(out, motion) / video.flicker(alone, motion) for name, out in (("pixels", pixels), ("detail", detail))
    }
    kept = strength(detail, frames) / strength(alone, frames)
    print(f"{clip} seed {seed}: flicker ratio {ratio}, strength {kept:.3f} of frame by frame")
    assert 0.85 < kept < 1.15  # as dreamy, not calmer because it dreams less
    # measured 0.07 (pan) and 0.15 (occlusion) on seeds 0-2 at this size, against 0.48 and 0.60 carrying the pixels
    assert ratio["detail"] < 0.25 and ratio["detail"] < 0.4 * ratio["pixels"]


def test_a_long_clip_keeps_its_dream_and_a_cut_carries_nothing_across(model):
    frames = pan_frames(30, size=(96, 64), motion=MOTION)
    out = finished(video.video_iter(frames, model=model, layer="stage3.1"))
    level = [strength(out[i : i + 10], frames[i : i + 10]) for i in (0, 20)]
    assert abs(level[1] / level[0] - 1) < 0.1  # warping softens detail every frame; it must not fade

    from PIL import Image

    other = [Image.fromarray(np.asarray(f)[::-1, ::-1].copy()) for f in pan_frames(3, size=(96, 64), motion=(-2, 1))]
    out = finished(video.video_iter(frames[:3] + other, model=model, layer="stage3.1"))
    before = as_array(out[2]) - as_array(frames[2])
    after = as_array(out[3]) - as_array(other[0])
    carried = flow.warp(before, flow.FlowEstimator().backward(as_array(frames[2]), as_array(other[0]))[0])
    # the first frame of the new scene shares nothing with the last dream's detail, wherever the flow points
    assert abs(np.corrcoef(carried.ravel(), after.ravel())[0, 1]) < 0.2


def test_frames_are_consumed_one_at_a_time(model):
    taken = []

    def source():
        for i, frame in enumerate(pan_frames(3)):
            taken.append(i)
            yield frame

    run = video.video_iter(source(), model=model, layer="stage3.1", steps=1)
    assert taken == [0]  # only the first frame, to check it and plan the dream
    first = next(event for event in run if event.frame is not None)
    assert first.frame == 0 and taken == [0]
    assert [event.frame for event in run if event.frame is not None] == [1, 2] and taken == [0, 1, 2]


def test_bad_settings(model):
    with pytest.raises(DreamscopeError, match="blend must be"):
        video.video_iter(pan_frames(2), model=model, blend=1.0)
    with pytest.raises(DreamscopeError, match="no frames"):
        video.video_iter(iter([]), model=model)
    run = video.video_iter([*pan_frames(1), *pan_frames(1, size=(64, 64))], model=model, layer="stage3.1", steps=1)
    with pytest.raises(DreamscopeError, match="frame 2 is 64x64, not 96x64"):
        list(run)
