"""Optical flow between video frames, warping along it, and where it can be trusted (occlusions).

Flow comes from OpenCV's DIS estimator on the source frames (never on dreams, whose invented detail would
mislead it). Pictures here are float32 HxWx3 numpy arrays in [0, 1]; flows are HxWx2 (dx, dy) in pixels.
"""

from __future__ import annotations

import numpy as np

# Forward-backward consistency test of Sundaram, Brox and Keutzer (2010), as used for video style transfer:
# a pixel is occluded when |f + b|^2 > ALPHA1 * (|f|^2 + |b|^2) + ALPHA2.
ALPHA1 = 0.01
ALPHA2 = 0.5


def _cv2():
    import cv2  # imported on first use: only video needs it

    return cv2


def _gray(picture: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.cvtColor((np.clip(picture, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


class FlowEstimator:
    """Dense flow between consecutive frames; one DIS instance reused, since creating it allocates buffers."""

    def __init__(self, preset: str = "medium", full_resolution: bool = False):
        cv2 = _cv2()
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        self._dis = cv2.DISOpticalFlow_create(presets[preset])
        if full_resolution:  # the presets stop a scale short, at half resolution; the last scale sharpens motion edges
            self._dis.setFinestScale(0)

    def backward(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow, reliable): for each pixel of `current`, the offset to where it was in `previous`, and a
        boolean mask of pixels whose flow passes the forward-backward check and stays inside the frame."""
        backward, mismatch = self.checked(previous, current)
        return backward, mismatch <= 1.0

    def checked(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow, mismatch): the backward flow, and each pixel's forward-backward mismatch as a multiple of what
        the check tolerates (at most 1: reliable; infinite where the flow leaves the frame)."""
        prev_gray, cur_gray = _gray(previous), _gray(current)
        backward = self._dis.calc(cur_gray, prev_gray, None)
        forward = self._dis.calc(prev_gray, cur_gray, None)
        # Follow the backward flow into the previous frame and read the forward flow there: for a pixel seen
        # in both frames the two cancel out; where they don't, the pixel was hidden in one of them.
        forward_there = warp(forward, backward)
        mismatch = np.square(forward_there + backward).sum(-1)
        scale = np.square(forward_there).sum(-1) + np.square(backward).sum(-1)
        height, width = backward.shape[:2]
        xs, ys = _grid(height, width)
        x, y = xs + backward[..., 0], ys + backward[..., 1]
        inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
        return backward, np.where(inside, mismatch / (ALPHA1 * scale + ALPHA2), np.inf)


def warp(picture: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `picture` at each pixel plus its flow (bilinear; edges repeat): moves the previous frame's
    content to where the backward flow says it now is."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    xs, ys = _grid(height, width)
    return cv2.remap(picture, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def soften(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    """A 0/1 mask as float weights with blurred edges, so occluded patches don't leave hard seams."""
    cv2 = _cv2()
    weights = mask.astype(np.float32)
    if radius > 0:
        weights = cv2.erode(weights, np.ones((2 * radius + 1,) * 2, np.uint8))
        weights = cv2.GaussianBlur(weights, (0, 0), radius)
    return weights


def carry(
    estimator: FlowEstimator, previous_source: np.ndarray, previous_dream: np.ndarray, source: np.ndarray, blend: float
) -> np.ndarray:
    """The start of a frame's dream: the previous dream warped along the flow between the two source frames,
    blended with the new source frame (`blend` of the dream where the flow can be trusted, none where it cannot)."""
    backward, reliable = estimator.backward(previous_source, source)
    weight = (blend * soften(reliable))[..., None]
    return weight * warp(previous_dream, backward) + (1.0 - weight) * source


# Carrying the dream's detail (benchmarks/bench_video.py's two clips, docs/benchmarks.md "Zoom and video"): on the
# occlusion clip, where the true motion is known, the forward-backward check (full-resolution flow) fails 3.4% of the
# pixels seen in both frames, mostly along motion edges where DIS smooths the flow. Wiping a pixel's detail and
# dreaming it anew flickers, so the detail is carried where the mismatch is within LOOSE times the check's
# tolerance: that still fails 1.5% of them, and lets through 29% of the hidden or revealed pixels (about 1.5% of the
# frame), which may carry a wrong detail. Flicker 0.113 of frame by frame on that clip, 0.140 with the strict check.
LOOSE = 10.0
DETAIL_EDGE = 1  # soften's radius for the detail's mask
CUT = 0.5  # below this share of strictly reliable pixels the frames are two scenes: nothing is carried across


def carry_detail(
    estimator: FlowEstimator,
    previous_source: np.ndarray,
    previous_dream: np.ndarray,
    source: np.ndarray,
    blend: float,
    steps_had: np.ndarray,
    level: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(start, steps_had): the new source frame plus the last dream's own detail (dream minus its source frame)
    moved along the flow, `blend` of it; and how many steps of dreaming each pixel's detail has had, moved along
    with it (`steps_had` of the last frame; 0 where nothing was carried).

    Moving the detail rather than the dreamed pixels keeps the new frame's own content exact (light, colour, what
    moved) instead of mixing the last frame's into it. Warping softens fine detail a little every frame, which
    would fade the dream over a clip: the detail moved is scaled to `level` (the first frame's mean detail), so the
    dream keeps its strength however long the clip. Nothing is carried where the flow fails the check by far
    (hidden or revealed, or entering the frame), nor across a scene cut.
    """
    backward, mismatch = estimator.checked(previous_source, source)
    kept = soften(mismatch <= LOOSE, DETAIL_EDGE) if (mismatch <= 1.0).mean() >= CUT else np.zeros(mismatch.shape, np.float32)
    moved = warp(previous_dream - previous_source, backward)
    moved *= level / max(float(np.abs(moved).mean()), 1e-6)
    start = np.clip(source + (blend * kept)[..., None] * moved, 0.0, 1.0)
    return start, kept * warp(steps_had, backward)
