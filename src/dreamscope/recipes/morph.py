"""Class-to-class morph from noise: one feature visualization whose target glides from class to class.

The picture (Fourier parameters) and Adam's state carry over from frame to frame; only the objective's
weights move, so each frame is a small edit of the one before and the morph is smooth. The first frame gets
a longer warm-up so the first class is recognizable before the glide starts.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from PIL import Image

from .. import images, objectives, params, render, transforms
from ..errors import DreamscopeError
from ..models import DEFAULT_MODEL, LoadedModel, load_model
from . import visualize as visualize_recipe
from .zoom import Frame

STEPS = 15  # Adam steps per frame after the warm-up
WARMUP = visualize_recipe.STEPS  # as long as a still picture: the first class must be clear


def parse_classes(classes: str | Sequence[str | int]) -> list[int]:
    from ..models.classes import resolve_class

    names = [c.strip() if isinstance(c, str) else c for c in (classes.split(",") if isinstance(classes, str) else classes)]
    if len(names) < 2 or any(n == "" for n in names):
        raise DreamscopeError(f"a morph needs at least two classes, comma-separated (e.g. banana,starfish), got {classes!r}")
    return [resolve_class(name) for name in names]  # unknown names fail here with suggestions


def weights_at(frame: int, frames: int, stops: int) -> list[float]:
    """Objective weights for `frame`: piecewise linear from class 0 at the first frame to the last class at the last."""
    position = 0.0 if frames == 1 else frame / (frames - 1) * (stops - 1)
    low = min(int(position), stops - 2)
    t = position - low
    weights = [0.0] * stops
    weights[low], weights[low + 1] = 1.0 - t, t
    return weights


def morph_iter(
    classes: str | Sequence[str | int],
    *,
    frames: int,
    model: str | LoadedModel = DEFAULT_MODEL,
    size: int | tuple[int, int] = visualize_recipe.SIZE,
    steps: int = STEPS,
    warmup: int = WARMUP,
    learning_rate: float = visualize_recipe.LEARNING_RATE,
    init: Image.Image | None = None,
    seed: int = visualize_recipe.SEED,
    device: str | None = None,
) -> Iterator[Frame]:
    """Yield `frames` pictures morphing through `classes` ("banana,starfish" or a list of names or indices)."""
    height, width = visualize_recipe.check(size, 1, steps, learning_rate, 0.0, "fft")
    if not isinstance(frames, int) or frames < 1:
        raise DreamscopeError(f"frames must be a whole number of at least 1, got {frames}")
    if not isinstance(warmup, int) or warmup < 0:
        raise DreamscopeError(f"warmup must be a whole number of steps, 0 or more, got {warmup}")
    targets = parse_classes(classes)
    from ..models.classes import imagenet_labels

    names = [imagenet_labels()[i] for i in targets]
    net = model if isinstance(model, LoadedModel) else load_model(model, device)
    generator = torch.Generator().manual_seed(seed)
    start = images.to_tensor(init.convert("RGB").resize((width, height), Image.LANCZOS)) if init is not None else None
    picture = params.make_param("fft", 1, height, width, generator, start).to(net.device)
    weights = weights_at(0, frames, len(targets))

    # Two terms, both weighted by the frame's mixture w: sum_k w_k log p_k is highest at p_k = w_k, so the
    # network sees the classes in those proportions and the picture passes gradually from one to the next
    # (raw logits alone flip suddenly near the end); the logits keep driving vivid detail once p saturates.
    # One objective whose weights are edited between frames keeps a single Adam run going from start to end.
    def mixture(acts):
        logits = acts[objectives.LOGITS]
        log_p = torch.log_softmax(logits, dim=1)
        return sum(w * (logits[:, k] + log_p[:, k]).mean() for w, k in zip(weights, targets) if w)

    objective = objectives.Objective(mixture, [objectives.LOGITS], f"morph({', '.join(names)})")
    total = warmup + steps * frames
    events = render.optimize(net, objective, picture, total, learning_rate, generator, transforms.robustness)
    return _frames(events, weights, frames, steps, warmup, len(targets), names)


def _frames(events, weights, frames, steps, warmup, stops, names) -> Iterator[Frame]:
    label = " > ".join(names)
    for event in events:
        done = event.step - warmup  # steps taken since the warm-up ended
        if done > 0 and done % steps == 0:
            yield Frame(done // steps - 1, frames, event.tensor, label)
        weights[:] = weights_at(min(frames - 1, max(0, done) // steps), frames, stops)  # for the next step
