"""Live: dream a camera as it comes. The newest frame goes in, the newest dream comes out, and nothing queues.

`LiveDream` is the step itself, on one thread: a camera frame starts from the previous dream carried along the
optical flow between the two camera frames and blended with the new frame (the video recipe's carry), then takes
`steps` ascent steps. A scene that holds still builds its dream up frame after frame; what moves drags its dream
along, and what the flow cannot follow (someone stepping in) starts afresh from the camera.

`LiveSession` runs it on a thread of its own for a front end (the studio's WebSocket, the command line's replay):
`submit` a frame whenever the camera gives one, read `newest` (or `wait` for it) whenever the screen wants one. A
frame that arrives while the dreamer is busy replaces the one waiting, so the latency stays bounded whatever the
speed: a slow machine shows fewer dreams, never older ones. Settings change with `update` and apply from the next
frame; `close` stops the thread after the step it is in.

`live_iter` is the command line's twin of a camera: it replays a clip at its own frame rate, in real time, through
a session, and gives what a viewer would have seen at each of the clip's frames.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish
from ..io import provenance
from ..models import LoadedModel, precision
from ..optvis import render
from ..settings import LiveSettings
from . import base
from . import dream as dream_recipe
from . import flow as optical_flow

# DIS's fastest preset: both flows of the forward-backward check take 6.5 ms at 320x240 on 2 cores, against 14 ms
# for "medium" (the video recipe's, which has no clock to keep).
FLOW_PRESET = "ultrafast"
FIXED = ("model", "weights")  # a session keeps the network it started with


def frame_size(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) of a camera frame of `size` scaled so its longest side is `longest`."""
    width, height = size
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check(settings: LiveSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do: its layers and channels, and, for a
    camera or clip of a known size, frames too small for the layer."""
    dream_recipe.check_plan(model, [(settings.layer, "layer")], settings)
    size = (sizes or {}).get("input")
    if size is not None:
        check_frame(model, settings, frame_size(size, settings.size))


def check_frame(model: LoadedModel, settings: LiveSettings, size: tuple[int, int]) -> None:
    """Frames of `size` (width, height, as dreamed) must give the deepest chosen layer a few positions."""
    layers = [info for info, _ in dream_recipe.layer_weights(model, settings.layer)]
    deepest = max(layers, key=lambda info: info.stride or 0)
    needed = max(32, 2 * (deepest.stride or 1))
    if min(size) < needed:
        raise SettingsError(
            "size",
            f"is too small for these frames: they would be dreamed at {size[0]}x{size[1]} px, and layer "
            f"{deepest.name} needs {needed} px on the shorter side; raise {{size}} or pick a shallower {{layer}}",
        )


def as_array(frame: Image.Image | np.ndarray) -> np.ndarray:
    """A camera frame (PIL image, or HxWx3 uint8 RGB array) as an HxWx3 uint8 RGB array."""
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise DreamscopeError(f"a camera frame must be an RGB picture (HxWx3 uint8), got {array.dtype} {array.shape}")
    return array


def fitted(frame: Image.Image | np.ndarray, longest: int) -> np.ndarray:
    """The frame scaled so its longest side is `longest`: HxWx3 uint8."""
    array = as_array(frame)
    size = frame_size((array.shape[1], array.shape[0]), longest)
    if size == (array.shape[1], array.shape[0]):
        return array
    return np.asarray(Image.fromarray(array).resize(size, Image.BILINEAR))


class LiveDream:
    """The dream of a camera, one frame at a time, on the caller's thread (`LiveSession` gives it one of its own)."""

    def __init__(self, settings: LiveSettings, model: LoadedModel):
        self.model = model
        self._estimator = optical_flow.FlowEstimator(FLOW_PRESET)
        self._settings: LiveSettings | None = None
        self._objective = None
        self.apply(settings)

    @property
    def settings(self) -> LiveSettings:
        return self._settings

    def apply(self, settings: LiveSettings) -> None:
        """Dream with `settings` from the next frame on; only what changed is rebuilt (a new size starts afresh)."""
        check(settings, self.model)
        old = self._settings
        if old is None or (old.layer, old.channels) != (settings.layer, settings.channels):
            self._objective = None  # built at the next frame: "strongest:10" ranks the channels on it
        if old is None or old.precision != settings.precision:
            self._dreamer = precision.at(self.model, settings.precision)
        if old is None or old.seed != settings.seed:
            self._generator = base.generator(settings.seed)
        if old is None or old.size != settings.size:
            self.reset()
        self._settings = settings

    def reset(self) -> None:
        """Forget the dream so far: the next frame starts from the camera alone."""
        self._previous_source = self._previous_dream = None

    def dream(self, frame: Image.Image | np.ndarray) -> np.ndarray:
        """The dream of one camera frame (scaled to the settings' size): HxWx3 uint8 RGB."""
        settings = self._settings
        source = fitted(frame, settings.size).astype(np.float32) / 255.0
        if self._previous_source is not None and self._previous_source.shape != source.shape:
            self.reset()  # the camera changed its size
        if self._previous_source is None:
            check_frame(self.model, settings, (source.shape[1], source.shape[0]))
        start = source
        if self._previous_dream is not None and settings.blend > 0:
            start = optical_flow.carry(self._estimator, self._previous_source, self._previous_dream, source, settings.blend)
        x = torch.from_numpy(np.ascontiguousarray(start, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0).to(self.model.device)
        if self._objective is None:
            self._objective = dream_recipe.build_objective(self.model, x, settings.layer, settings.channels, None)
        for event in render.ascend(
            self._dreamer,
            self._objective,
            x,
            steps=settings.steps,
            step_size=settings.step_size,
            jitter=settings.jitter,
            generator=self._generator,
            soft_bounds=True,  # fed back into itself frame after frame: logit steps keep it off the bounds
        ):
            x = event.picture
        dream = x[0].permute(1, 2, 0).float().cpu().numpy()
        self._previous_source, self._previous_dream = source, dream
        return (np.clip(dream, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Shown:
    """A dream ready to show: the picture, its number in the session (1, 2, ...), the tag its camera frame was
    submitted with, when that frame arrived and when its dream was ready (`time.monotonic()` seconds)."""

    picture: np.ndarray  # HxWx3 uint8 RGB
    number: int
    tag: Any
    arrived: float
    ready: float

    @property
    def latency(self) -> float:
        """Seconds from the camera frame's arrival to its dream being ready."""
        return self.ready - self.arrived


class LiveSession:
    """A `LiveDream` on a thread of its own: frames in with `submit`, the newest dream out with `newest` or `wait`.

    `on_dream(shown)` is called on the session's thread after each dream (a server wakes its sender with it). An
    error inside the loop (a frame too small, ...) ends the session: `error` keeps it and `submit` raises it.
    """

    def __init__(
        self,
        settings: LiveSettings | None = None,
        *,
        model: str | LoadedModel | None = None,
        device: str | None = None,
        on_dream: Callable[[Shown], None] | None = None,
        **fields,
    ):
        settings, net = base.prepare(LiveSettings, settings, fields, model, device)
        self.model = net
        self._core = LiveDream(settings, net)
        self._settings = settings  # the newest accepted: applied from the next frame
        self._pending: LiveSettings | None = None
        self._changed = threading.Condition()
        self._waiting: tuple[np.ndarray, Any, float] | None = None
        self._newest: Shown | None = None
        self._on_dream = on_dream
        self._closed = False
        self.error: BaseException | None = None
        self.received = self.dropped = self.dreamed = 0
        self._thread = threading.Thread(target=self._loop, name="dreamscope-live", daemon=True)
        self._thread.start()

    @property
    def settings(self) -> LiveSettings:
        with self._changed:
            return self._settings

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, frame: Image.Image | np.ndarray, tag: Any = None) -> None:
        """A camera frame, now. It replaces a frame still waiting (that one is dropped, counted in `dropped`)."""
        array = as_array(frame)
        with self._changed:
            if self.error is not None:
                raise self.error
            if self._closed:
                raise DreamscopeError("this live session is closed; start a new one")
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = (array, tag, time.monotonic())
            self.received += 1
            self._changed.notify_all()

    def update(self, **changes) -> LiveSettings:
        """Change settings while it runs (checked now, applied from the next frame); returns the new settings."""
        fixed = [name for name in changes if name in FIXED]
        if fixed:
            raise SettingsError(fixed[0], "cannot change while a live session runs; start a new session for another network")
        with self._changed:
            settings = self._settings.replace(**changes)
            check(settings, self.model)
            self._settings = self._pending = settings
            return settings

    def newest(self) -> Shown | None:
        with self._changed:
            return self._newest

    def wait(self, after: int = 0, timeout: float | None = None) -> Shown | None:
        """The newest dream once its number is above `after`; None when `timeout` passes or the session ends first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while (self._newest is None or self._newest.number <= after) and not self._closed and self.error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)
            newest = self._newest
            return newest if newest is not None and newest.number > after else None

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the step in progress and let the thread end (the CPU is free once this returns)."""
        with self._changed:
            self._closed = True
            self._waiting = None
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _loop(self) -> None:
        while True:
            with self._changed:
                while self._waiting is None and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                frame, tag, arrived = self._waiting
                self._waiting = None
                pending, self._pending = self._pending, None
            try:
                if pending is not None:
                    self._core.apply(pending)
                picture = self._core.dream(frame)
            except BaseException as exc:
                with self._changed:
                    self.error = exc
                    self._changed.notify_all()
                return
            with self._changed:
                self.dreamed += 1
                self._newest = shown = Shown(picture, self.dreamed, tag, arrived, time.monotonic())
                self._changed.notify_all()
            if self._on_dream is not None:
                self._on_dream(shown)


# -- a local camera, through OpenCV ------------------------------------------------------------------------------------


class Camera:
    """Frames of a local camera (OpenCV's device `index`; a file or stream address works too) for `seconds`, as RGB
    PIL images, at the camera's own rate: what `live_iter` takes in place of a clip. Reading blocks until the camera
    gives the next frame."""

    def __init__(self, index: int | str, seconds: float):
        import cv2  # opencv-python-headless: a dependency already (the optical flow)

        self._cv2 = cv2
        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # a missing camera is said in one line below, not in OpenCV's
        try:
            self._capture = cv2.VideoCapture(index)
            ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        finally:
            logging.setLogLevel(level)
        if not ok:
            self._capture.release()
            raise DreamscopeError(
                f"cannot read camera {index}: no camera is connected as device {index}, or another program is using it"
            )
        self._first = first
        rate = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = rate if 1 <= rate <= 240 else 30.0  # some drivers say 0
        self.size = (first.shape[1], first.shape[0])
        self.frames = max(1, round(seconds * self.fps))

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[Image.Image]:
        cv2 = self._cv2
        try:
            frame = self._first
            for _ in range(self.frames):
                if frame is None:
                    ok, frame = self._capture.read()
                    if not ok:
                        return  # unplugged: what was dreamed so far is kept
                yield Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                frame = None
        finally:
            self._capture.release()


# -- the command line's twin of a camera: a clip replayed in real time ----------------------------------------------


@dataclass(frozen=True)
class Replay:
    """What a replay showed: dreams shown, camera frames, those dropped, each shown dream's latency (s), seconds."""

    shown: int
    frames: int
    dropped: int
    latencies: tuple[float, ...]
    seconds: float

    @property
    def rate(self) -> float:
        """Dreams shown a second."""
        return self.shown / self.seconds if self.seconds > 0 else 0.0

    def latency(self, quantile: float) -> float | None:
        """A quantile of the latencies (0.5: the median), in seconds."""
        if not self.latencies:
            return None
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(quantile * 100) - 1]

    def summary(self) -> str:
        median, slow = self.latency(0.5), self.latency(0.95)
        latency = (
            f"latency {median * 1000:.0f} ms median, {slow * 1000:.0f} ms 95th percentile"
            if median is not None
            else "no dream was ready in time"
        )
        return (
            f"{self.shown} dreams shown, {self.rate:.1f} a second; {latency}; "
            f"{self.dropped} of {self.frames} camera frames dropped"
        )


def live_iter(
    frames: Iterable[Image.Image],
    settings: LiveSettings | None = None,
    *,
    fps: float | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Replay `frames` as a camera would give them, `fps` a second in real time (default: the clip's own rate, as a
    `videos.VideoInfo` has it), through a `LiveSession`: an event per frame with what a viewer saw at that moment
    (the newest dream, held until the next; the camera itself until the first dream). The last event's result is
    a `Replay`, its note the summary. A slow machine drops frames exactly as it would live."""
    settings, net = base.prepare(LiveSettings, settings, fields, model, device)
    rate = float(fps if fps is not None else getattr(frames, "fps", 0) or 0)
    if not rate > 0:
        raise DreamscopeError("the clip's frame rate is unknown: give fps")
    size = getattr(frames, "size", None)
    check(settings, net, {"input": size} if size else None)
    count = len(frames) if hasattr(frames, "__len__") else None
    record = provenance.make(settings, net, {}, precision=precision.name_of(precision.at(net, settings.precision)))
    return Run(_replay(iter(frames), settings, net, rate, count), settings, record, net)


def _replay(frames: Iterator[Image.Image], settings: LiveSettings, net: LoadedModel, rate: float, count: int | None):
    period = 1.0 / rate
    session = LiveSession(settings, model=net)
    latencies, last, index = [], 0, -1
    try:
        start = time.monotonic()
        for index, frame in enumerate(frames):
            array = fitted(frame, settings.size)  # decoded and scaled before its moment comes
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            session.submit(array, tag=index)
            if session.error is not None:
                raise session.error
            newest = session.newest()
            if newest is not None and newest.number != last:
                last = newest.number
                latencies.append(newest.latency)
            seen = newest.picture if newest is not None else array
            picture = torch.tensor(seen).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            total = max(count or 0, index + 1)
            yield Event((Stage("frame", index + 1, total),), (index + 1) / total, None, picture, frame=index)
        seconds = max(time.monotonic() - start, period)
    finally:
        session.close()
    if index < 0:
        raise DreamscopeError("the video has no frames")
    replay = Replay(len(latencies), index + 1, session.dropped, tuple(latencies), seconds)
    yield finish(replay, note=replay.summary())
