"""Flow-guided video dreams: the flow and occlusion test on known motion, and half the flicker of dreaming
each frame on its own."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import pan_frames
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


def test_flow_guided_dreams_flicker_half_as_much_as_frame_by_frame(model):
    frames = pan_frames(8, size=(128, 96), motion=MOTION)
    content_motion = (-MOTION[0], -MOTION[1])
    assert video.flicker(frames, content_motion) < 1.0  # the measure itself: a compensated pan is still
    alone = finished(video.video_iter(frames, blend=0.0, model=model))
    guided = finished(video.video_iter(frames, model=model))
    strength = lambda out: np.mean([np.abs(as_array(o) - as_array(s)).mean() for o, s in zip(out, frames)])
    assert strength(guided) > 0.8 * strength(alone)  # just as dreamy, not calmer because it dreams less
    ratio = video.flicker(guided, content_motion) / video.flicker(alone, content_motion)
    print(f"flicker ratio {ratio:.3f}, strength {strength(guided):.4f} vs {strength(alone):.4f}")
    assert ratio < 0.65  # measured 0.49 here (0.47 on the benchmark's 24-frame pan): room for other CPUs' rounding


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
