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

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def backward(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow, reliable): for each pixel of `current`, the offset to where it was in `previous`, and a
        boolean mask of pixels whose flow passes the forward-backward check and stays inside the frame."""
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
        return backward, (mismatch <= ALPHA1 * scale + ALPHA2) & inside


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
