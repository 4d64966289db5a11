"""One event type for every recipe: where it is, how far along, the loss, a preview, and at the end the result.

A recipe is a generator of `Event`s; the last one has `done=True` and `result`. Recipes nest: a zoom frame is a
dream, a probe layer is a dream and a visualization; `nest` runs an inner recipe's events inside a stage of the
outer one, so a front end shows "frame 7 of 120, octave 2 of 2, step 3 of 5" and one fraction for the whole.
Cancelling is closing the generator (`events.close()`, or leaving a `for` loop early and dropping it): recipes
clean up in `finally`, so nothing is left half-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .imaging import resize, to_pil


@dataclass(frozen=True)
class Stage:
    """One level of where a recipe is: `kind` ("octave", "step", "frame", "layer", ...) `index` (1-based) of `count`."""

    kind: str
    index: int
    count: int
    label: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.index} of {self.count}" + (f" ({self.label})" if self.label else "")


class Event:
    """Progress of a recipe. `picture` is the picture so far (NCHW RGB in [0, 1]) on the model's device, when
    there is one; `tensor` is the same on the CPU, `image` a PIL image and `preview(max_side)` a small one.

    `frame` is set on the event that carries a finished frame of a video (zoom, video): its 0-based index, with
    the frame as the picture. `note` is a remark for the user (e.g. "the sound was dropped").
    """

    __slots__ = ("_cpu", "done", "fraction", "frame", "loss", "note", "picture", "result", "stages")

    def __init__(
        self,
        stages=(),
        fraction: float = 0.0,
        loss: float | None = None,
        picture: torch.Tensor | None = None,
        frame: int | None = None,
        note: str | None = None,
        done: bool = False,
        result: Any = None,
    ):
        self.stages: tuple[Stage, ...] = tuple(stages)
        self.fraction = min(1.0, max(0.0, float(fraction)))
        self.loss = loss
        self.frame = frame
        self.note = note
        self.done = done
        self.result = result
        self.picture = picture.detach() if picture is not None else None  # on the model's device
        self._cpu = None

    def __repr__(self) -> str:
        parts = [self.stage or "start", f"{self.fraction:.0%}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        if self.done:
            parts.append("done")
        return f"Event({', '.join(parts)})"

    @property
    def stage(self) -> str:
        """Where the recipe is, outermost first: "frame 7 of 120, octave 2 of 2, step 3 of 5"."""
        return ", ".join(map(str, self.stages))

    def at(self, kind: str) -> Stage | None:
        """The stage of that kind ("octave", "frame", ...), or None."""
        return next((s for s in self.stages if s.kind == kind), None)

    @property
    def tensor(self) -> torch.Tensor | None:
        if self._cpu is None and self.picture is not None:
            self._cpu = self.picture.cpu()  # once, only when asked: a GPU run does not copy every step
        return self._cpu

    @property
    def image(self):
        """The picture (the first of a batch) as a PIL image."""
        return None if self.picture is None else to_pil(self.tensor[:1])

    @property
    def images(self) -> list:
        """Every picture of the batch as PIL images."""
        return [] if self.picture is None else [to_pil(self.tensor[i : i + 1]) for i in range(self.tensor.shape[0])]

    def preview(self, max_side: int = 256):
        """A small PIL image of the picture for live views: shrunk on the device before it is copied."""
        if self.picture is None:
            return None
        x = self.picture[:1]
        height, width = x.shape[-2:]
        scale = min(1.0, max_side / max(height, width))
        if scale < 1.0:
            x = resize(x.float(), (max(1, round(height * scale)), max(1, round(width * scale))))
        return to_pil(x.cpu())

    def nested(self, stage: Stage, start: float, span: float) -> Event:
        """This event seen from an outer recipe: `stage` in front, the fraction mapped into [start, start + span]."""
        return Event((stage, *self.stages), start + span * self.fraction, self.loss, self.picture, self.frame, self.note)


def nest(events: Iterator[Event], stage: Stage | None = None, start: float = 0.0, span: float = 1.0):
    """Re-yield an inner recipe's events inside `stage` of the outer one (None: as they are); returns the inner
    result.

    Use as `result = yield from nest(...)`. The inner `done` event is not passed on: the outer recipe decides
    when it is done.
    """
    result = None
    try:
        for event in events:
            if event.done:
                result = event.result
            elif stage is None:
                yield event
            else:
                yield event.nested(stage, start, span)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a cancelled outer recipe cancels the inner one now, not at garbage collection
    return result


def finish(
    result: Any, stages=(), picture: torch.Tensor | None = None, loss: float | None = None, note: str | None = None
) -> Event:
    """The last event of a recipe."""
    return Event(stages, 1.0, loss, picture, note=note, done=True, result=result)


def run(events: Iterator[Event]):
    """Run a recipe to the end and return its result (what the non-iterating functions do): its last event's, or
    what a generator meant for `yield from` returns."""
    result = None
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return result if stop.value is None else stop.value
        if event.done:
            result = event.result


class Run:
    """A recipe on its way: iterate it for its events. What was settled before the first step is known at once:
    the checked `settings`, the loaded `model` and the provenance `record`. `close()` cancels it."""

    def __init__(self, events: Iterator[Event], settings=None, record=None, model=None):
        self._events = events
        self.settings = settings
        self.record = record
        self.model = model

    def __iter__(self) -> Run:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def result(self):
        """Run to the end and return the result of the last event."""
        return run(self)
