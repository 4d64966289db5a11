"""Visualize what a network has learned: pictures, grown from noise, that maximize a class, channel or neuron.

Natural-image priors make the result readable: by default Lucid's 1/f spectrum with decorrelated colour
(`params.FourierImage`), or MaCo (`param="maco"`, `params.MacoImage`: the Fourier magnitude of natural photos
fixed, only the phases learned), and transformation robustness (`transforms.standard_transforms`). Without them
(`param="pixels", robust=False`) the optimization finds adversarial noise that excites the network but shows
nothing. With `init` and `accentuate` it strengthens the target in a photo instead (`recipes.accentuate`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from PIL import Image

from .. import imaging
from ..errors import SettingsError
from ..events import Event, Run, finish
from ..fields import parse_unit
from ..io import provenance
from ..models import LoadedModel, precision
from ..optvis import objectives, params, render, skip, transforms
from ..settings import VisualizeSettings
from . import accentuate, base

DEFAULT_GRID = 16  # channels in a layer's sheet when `grid` is not given


def check(settings: VisualizeSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what `settings` ask that `model` cannot do: the target (a class it scores, a layer and
    channel it has), the diversity and closeness layers; and an accentuation without a photo (`sizes` names the
    inputs given: role -> (width, height))."""
    if settings.kind == "class":
        base.known_class(model, "target", settings.target)
    elif settings.kind == "channels":
        base.known_layer(model, "target", settings.target, pseudo=True)
    else:
        layer, index = parse_unit(settings.target)
        base.known_layer(model, "target", layer, pseudo=True)
        base.known_channels(model, "target", layer, [index])
    if settings.diversity_layer:
        base.known_layer(model, "diversity_layer", settings.diversity_layer, pseudo=True)
    if settings.closeness_layer:
        base.known_layer(model, "closeness_layer", settings.closeness_layer, pseudo=True)
    if (settings.skip_gradient or 1) < 1 and not skip.branches(model.net):
        raise SettingsError(
            "skip_gradient", f"needs residual blocks, and {model.spec.name} has none dreamscope knows: leave it out"
        )
    if settings.accentuate and "init" not in (sizes or {}):
        raise SettingsError("accentuate", "needs a photo to start from (the {init} picture)")


def objective_for(
    model: LoadedModel, settings: VisualizeSettings, sample: int | None = None
) -> tuple[objectives.Objective, list[str]]:
    """The objective the settings name, checked against the model, and a label per picture. `sample`: a class,
    channel or neuron read on that sample of the batch only."""
    if settings.kind == "class":
        index = model.resolve_class(settings.target)
        label = model.class_label(index)
        objective = objectives.class_logit(index, sample=sample, label=label)
        labels = [label] * settings.samples
    elif settings.kind in ("channel", "neuron"):
        layer, index = parse_unit(settings.target)
        make = objectives.neuron if settings.kind == "neuron" else objectives.channel
        objective = make(layer, index, sample=sample)
        labels = [f"{layer}:{index}"] * settings.samples
    else:  # "channels": a layer's sheet, picture i maximizes channel i
        layer = settings.target
        chosen = list(range(min(settings.grid or DEFAULT_GRID, model.layer(layer).channels)))
        objective = objectives.channel_sheet(layer, chosen)
        labels = [f"{layer}:{c}" for c in chosen]
    if settings.diversity > 0:
        objective = objective + settings.diversity * objectives.diversity(settings.diversity_layer or model.spec.default_layer)
    objective.check(model)
    return objective, labels


def visualize_iter(
    target: str | int | objectives.Objective | None = None,
    settings: VisualizeSettings | None = None,
    *,
    init: Image.Image | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Grow pictures that maximize `target`: a class name or index, or any Objective (from Python).

    Or name the target in the settings: `kind` "class", "channel" or "neuron" (target "LAYER:INDEX") or
    "channels" (target a layer: a sheet of its first `grid` channels). `samples` pictures of the same target,
    `diversity` > 0 rewards them for differing in style. `init` starts from a photo instead of noise. The last
    event's result is the list of PIL images (each carrying its record and `info["label"]`).
    """
    custom = target if isinstance(target, objectives.Objective) else None
    if custom is not None:
        fields = {**fields, "kind": "class", "target": custom.description}
    elif target is not None:
        fields = {**fields, "target": str(target)}
    settings, net = base.prepare(VisualizeSettings, settings, fields, model, device)
    if settings.accentuate and custom is not None:
        raise SettingsError("accentuate", "takes a class, channel or neuron named in the settings, not a Python objective")
    if custom is None:
        check(settings, net, {"init": init.size} if init is not None else {})
    if custom is not None:
        objective = custom + (
            settings.diversity * objectives.diversity(settings.diversity_layer or net.spec.default_layer)
            if settings.diversity > 0
            else 0
        )
        objective.check(net)
        labels = [custom.description] * settings.samples
    else:
        objective, labels = objective_for(net, settings, sample=0 if settings.accentuate else None)
    drawer = precision.at(net, settings.precision)  # the network that draws; checks and measures read `net`
    # a Python objective is not data: nothing could make it again from a record
    record = None if custom is not None else provenance.make(settings, net, {"init": init}, precision=precision.name_of(drawer))
    height, width = (settings.size, settings.size) if isinstance(settings.size, int) else settings.size
    if settings.accentuate and isinstance(settings.size, int):  # the photo keeps its shape: its longer side is `size`
        scale = settings.size / max(init.size)
        width, height = max(32, round(init.size[0] * scale)), max(32, round(init.size[1] * scale))
    generator = base.generator(settings.seed)
    start = None
    if init is not None:
        start = imaging.to_tensor(init.convert("RGB").resize((width, height), Image.LANCZOS), net.device)
    picture = params.make_param(settings.parameterization, len(labels), height, width, generator, start, decay=settings.decay).to(
        net.device
    )
    transform = None
    if settings.robust:
        transform = transforms.standard_transforms(view=settings.view, crop=settings.crop_fraction)
    if settings.view_count > 1:
        transform = transforms.Views(transform, settings.view_count)
    finished = None
    if settings.accentuate:
        target, layer = objective, settings.closeness_layer or accentuate.default_layer(net)
        objective = objective - settings.closeness * objectives.feature_distance(layer)
        objective.check(net)
        transform = accentuate.beside(start, transform)
        index = net.resolve_class(settings.target) if settings.kind == "class" else None
        finished = lambda final: accentuate.measure(net, target, layer, start, final, index)
    stop = None
    if custom is None and settings.stop_confidence > 0:  # a class picture ends once the network is sure of it
        index = net.resolve_class(settings.target)
        stop = render.Confident(objectives.class_probability(index, net.class_label(index)), settings.stop_confidence)
    learning_rate = settings.learning_rate or params.LEARNING_RATES[settings.parameterization]
    events = render.optimize(
        drawer,
        objective,
        picture,
        steps=settings.steps,
        learning_rate=learning_rate,
        generator=generator,
        transform=transform,
        stop=stop,
        # like the stop, a Python objective's picture only follows the skip gradient when asked
        skip_gradient=settings.branch_gradient if custom is None else (settings.skip_gradient or 1.0),
    )
    faded = picture.transparency if settings.transparency else None
    return Run(_pictures(events, labels, record, finished, faded, stop), settings, record, net)


def _pictures(events: Iterator[Event], labels: list[str], record, finished=None, opacity=None, stop=None) -> Iterator[Event]:
    last = None
    for last in events:
        yield last
    note = None
    if stop is not None and stop.stopped is not None:
        note = (
            f"stopped at step {stop.stopped} of {last.stages[-1].count}: the network was sure of {labels[0]}, "
            f"probability {stop.mean:.3f} on every view over the last {stop.window} steps"
        )
    if opacity is not None:  # MaCo's attribution as transparency, shown over white
        alpha = opacity()
        last = Event(last.stages, last.fraction, last.loss, alpha * last.picture + (1 - alpha))
    pictures = last.images
    for picture, label in zip(pictures, labels):
        picture.info["label"] = label
        if record is not None:
            picture.info[provenance.KEY] = record.to_text()
    if finished is not None:  # accentuation: how far the picture moved, how much the target rose
        report = finished(last.picture)
        pictures[0].info["accentuation"] = report.to_text()
        note = report.summary(labels[0])
    yield finish(pictures, picture=last.picture, loss=last.loss, note=note)


def visualize(target=None, settings: VisualizeSettings | None = None, **options) -> list[Image.Image]:
    """Like `visualize_iter`, but returns the finished pictures (one per sample or channel) as PIL images."""
    return visualize_iter(target, settings, **options).result()


_MOVED = {name: f"dreamscope.pages.sheets.{name}" for name in ("contact_sheet", "font", "sheet_columns")}


def __getattr__(name: str):
    where = f": it moved to {_MOVED[name]}" if name in _MOVED else ""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{where}")
