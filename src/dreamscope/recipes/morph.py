"""Class-to-class morph from noise: one feature visualization whose target glides from class to class.

The picture (Fourier parameters) and Adam's state carry over from frame to frame; only the objective's
weights move, so each frame is a small edit of the one before and the morph is smooth. The first and the last
frame are held until the network sees their class clearly (at most `warmup` more steps each), so the morph
starts at the first class and ends at the last one on any machine, not only where the rounding happens to
favour it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from PIL import Image

from .. import imaging
from ..events import Event, Run, Stage, finish
from ..io import provenance
from ..models import LoadedModel, precision
from ..optvis import objectives, params, render, transforms
from ..settings import MorphSettings
from . import base, quality
from .classify import class_probabilities

CLEAR = 0.9  # the end frames are held until the network gives their class this probability
CHECK_EVERY = 5  # steps between those checks (each costs a forward pass)


def weights_at(frame: int, frames: int, stops: int) -> list[float]:
    """Objective weights for `frame`: piecewise linear from class 0 at the first frame to the last class at the last."""
    position = 0.0 if frames == 1 else frame / (frames - 1) * (stops - 1)
    low = min(int(position), stops - 2)
    t = position - low
    weights = [0.0] * stops
    weights[low], weights[low + 1] = 1.0 - t, t
    return weights


def check(settings: MorphSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, classes the model does not score."""
    for name in settings.classes.split(","):
        base.known_class(model, "classes", name)


def morph_iter(
    settings: MorphSettings | None = None,
    *,
    init: Image.Image | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Frames morphing through `classes` ("banana,starfish", names or indices): a Run of events, each finished
    frame an event with `frame` set and the frame as its picture."""
    settings, net = base.prepare(MorphSettings, settings, fields, model, device)
    check(settings, net)
    targets = [net.resolve_class(name) for name in settings.classes.split(",")]
    names = [net.class_label(i) for i in targets]
    height, width = (settings.size, settings.size) if isinstance(settings.size, int) else settings.size
    generator = base.generator(settings.seed)
    start = imaging.to_tensor(init.convert("RGB").resize((width, height), Image.LANCZOS)) if init is not None else None
    picture = params.make_param("fft", 1, height, width, generator, start).to(net.device)
    weights = weights_at(0, settings.frames, len(targets))

    # Two terms, both weighted by the frame's mixture w: sum_k w_k log p_k is highest at p_k = w_k, so the
    # network sees the classes in those proportions and the picture passes gradually from one to the next
    # (raw logits alone flip suddenly near the end); the logits keep driving vivid detail once p saturates.
    # One objective whose weights are edited between frames keeps a single Adam run going from start to end.
    def mixture(acts):
        logits = acts[objectives.LOGITS]
        log_p = torch.log_softmax(logits, dim=1)
        return sum(w * (logits[:, k] + log_p[:, k]).mean() for w, k in zip(weights, targets) if w)

    objective = objectives.Objective(mixture, [objectives.LOGITS], f"morph({', '.join(names)})")
    objective.check(net)
    optimizer = torch.optim.Adam(picture.parameters(), lr=settings.learning_rate)
    judge = quality.judge_for(net, device) if settings.score else None  # loaded now: a missing one fails before work
    drawer = precision.at(net, settings.precision)  # draws; `net` judges each frame's clarity in float32
    record = provenance.make(settings, net, {"init": init}, precision=precision.name_of(drawer))
    frames = _frames(net, drawer, objective, picture, optimizer, generator, weights, targets, names, settings)
    return Run(_watched(frames, settings, targets, names, judge), settings, record, net)


def _frames(
    net, drawer, objective, picture, optimizer, generator, weights, targets, names, settings: MorphSettings
) -> Iterator[Event]:
    frames = settings.frames
    label = " > ".join(names)

    def settle(target: int, stage: Stage, at: float):
        """Go on until the network sees `target` clearly in the frame as it will be saved (8-bit, resized as a
        classifier does), at most `warmup` steps, and keep the clearest picture seen: under the random
        transforms the plain view's probability wanders, so the last step is not always the best."""
        best = [-1.0, None]

        def stop(step: int, _value: float, _seen: torch.Tensor) -> bool:
            if step % CHECK_EVERY:
                return False
            probability = clear_probability(net, _rendered(picture), target)  # after this step's update
            if probability > best[0]:
                best[:] = probability, [p.detach().clone() for p in picture.parameters()]
            return probability >= CLEAR

        yield from run(settings.warmup, stop, at, 0.0, stage)
        now = clear_probability(net, _rendered(picture), target)
        if best[1] is not None and best[0] > now:
            with torch.no_grad():
                for param, kept in zip(picture.parameters(), best[1]):
                    param.copy_(kept)

    def run(steps: int, stop, start: float, span: float, stage: Stage):
        last = None
        for last in render.optimize(
            drawer,
            objective,
            picture,
            steps=steps,
            generator=generator,
            optimizer=optimizer,
            transform=transforms.robustness,
            stop=stop,
        ):
            yield Event((stage, *last.stages), start + span * last.fraction, last.loss, last.picture)
        return last

    for index in range(frames):
        weights[:] = weights_at(index, frames, len(targets))
        stage = Stage("frame", index + 1, frames, label)
        at = index / frames
        last = yield from run(settings.warmup if index == 0 else settings.steps, None, at, 1 / frames, stage)
        # The ends are held until their class is clear: the first before the glide starts, the last at the end.
        for end, target in ((index == 0, targets[0]), (index == frames - 1 and frames > 1, targets[-1])):
            if end and settings.warmup:
                yield from settle(target, stage, (index + 1) / frames)
        yield Event((stage,), (index + 1) / frames, last.loss if last else None, _rendered(picture), frame=index)
    yield finish(frames)


def clear_probability(model: LoadedModel, picture: torch.Tensor, target: int) -> float:
    """The class's least probability over the frame as saved (8-bit), its mirror and its centre crop: a class
    that holds on all three is drawn, not a fragile pattern only the plain view shows."""
    saved = imaging.to_tensor(imaging.to_pil(picture), model.device)
    with torch.no_grad():
        return min(float(class_probabilities(model, view)[0, target]) for view in quality.views(saved).values())


def _watched(frames: Iterator[Event], settings: MorphSettings, targets, names, judge) -> Iterator[Event]:
    """The frames as they come, and at the end a note: how much the picture changed over each class's stretch
    (mean absolute change, in 8-bit levels) and, with a judge, the judge's probability of each class along the
    morph and its verdict on the last frame's three views."""
    ends = {round(k * (settings.frames - 1) / (len(targets) - 1)) for k in range(len(targets))}
    kept, curve = {}, []
    last = None
    for event in frames:
        if event.frame is not None:
            saved = imaging.to_tensor(imaging.to_pil(event.picture))
            if event.frame in ends:
                kept[event.frame] = saved
            if judge is not None:
                with torch.no_grad():
                    seen = class_probabilities(judge, saved.to(judge.device))[0]
                curve.append([float(seen[k]) for k in targets])
            last = event.picture
        if event.done:
            notes = [_changes(kept, names)] if len(kept) > 1 else []
            if judge is not None and last is not None:
                notes.append(_judged(curve, names, judge, quality.score(imaging.to_pil(last), targets[-1], judge)))
            yield finish(event.result, note="; ".join(notes) or None)
        else:
            yield event


def _changes(kept: dict, names: list[str]) -> str:
    ends = sorted(kept)
    changes = [255 * float((kept[b] - kept[a]).abs().mean()) for a, b in zip(ends, ends[1:])]
    stretches = ", ".join(f"{names[k]} > {names[k + 1]} {change:.0f}" for k, change in enumerate(changes))
    return f"change per stretch (mean, of 255): {stretches}"


def _judged(curve: list[list[float]], names: list[str], judge: LoadedModel, last: quality.Score) -> str:
    """The judge's curve at five frames, first to last, and its verdict on the last frame."""
    picks = sorted({round(i * (len(curve) - 1) / 4) for i in range(5)})
    lines = ", ".join(f"{name} " + " > ".join(f"{curve[p][k]:.2f}" for p in picks) for k, name in enumerate(names))
    frames = ", ".join(str(p + 1) for p in picks)
    return f"{judge.name} sees {lines} (frames {frames}); last frame: {last.summary()}"


def _rendered(picture) -> torch.Tensor:
    with torch.no_grad():
        return picture()
