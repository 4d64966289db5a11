"""One event type: stages, fractions, previews, nesting and cancelling."""

from __future__ import annotations

import torch

from dreamscope.events import Event, Run, Stage, finish, nest


def inner(log: list, steps: int = 4):
    try:
        for step in range(1, steps + 1):
            yield Event((Stage("step", step, steps),), step / steps, float(step), torch.full((1, 3, 8, 8), step / steps))
        yield finish("inner result")
    finally:
        log.append("inner cleaned up")


def outer(log: list):
    try:
        for frame in range(2):
            result = yield from nest(inner(log), Stage("frame", frame + 1, 2, "stage3.1"), frame / 2, 1 / 2)
            log.append(result)
        yield finish("outer result")
    finally:
        log.append("outer cleaned up")


def test_nested_events_say_where_they_are_and_how_far_along():
    log = []
    events = list(outer(log))
    assert events[0].stage == "frame 1 of 2 (stage3.1), step 1 of 4"
    assert events[0].at("frame").index == 1 and events[0].at("step").count == 4 and events[0].at("octave") is None
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[3] == 0.5 and fractions[-1] == 1.0
    assert events[-1].done and events[-1].result == "outer result" and sum(e.done for e in events) == 1
    assert log == ["inner cleaned up", "inner result", "inner cleaned up", "inner result", "outer cleaned up"]


def test_closing_the_outer_generator_cancels_the_inner_one_at_once():
    log = []
    run = Run(outer(log))
    next(run), next(run)
    run.close()
    assert log == ["inner cleaned up", "outer cleaned up"]


def test_pictures_previews_and_the_result():
    event = Event((), 0.5, 1.0, torch.rand(2, 3, 300, 200))
    assert event.tensor.device.type == "cpu" and event.image.size == (200, 300) and len(event.images) == 2
    assert event.preview(64).size == (43, 64) and event.preview(1000).size == (200, 300)
    assert Event(note="hello").image is None
    assert Run(outer([])).result() == "outer result"
