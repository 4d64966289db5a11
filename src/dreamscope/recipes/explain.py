"""Explain one photo at one layer: what the network found where, and how much each part pushed its answer.

After Olah et al., "The Building Blocks of Interpretability" (Distill 2018):

- the activation grid: each position's activation vector drawn by feature visualization (a `direction`), every
  cell together with the neuron groups' pictures, which the cells mix by their share of each group, so that
  neighbours stay coherent (`params.MixedFourierImage`);
- the semantic dictionary: each position's strongest channels, each with its picture (from a microscope site of
  the same model, else drawn and cached, see `channel_pictures`);
- neuron groups: a non-negative factorization (scikit-learn's NMF) of the layer's positive activations
  (positions x channels) into K groups, each with its spatial map, its channel factor's picture and its share;
- attribution to the chosen classes (or units, or a deeper layer for a model without classes), per position and
  per group: activation x gradient of the target, or integrated gradients from a zero activation; and between a
  shallower layer's groups and this layer's.

Returns data (`ExplainResult`); `pages/explain.py` writes the page and explain.json.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError, SettingsError, UnknownName, literal
from ..events import Event, Run, Stage, finish
from ..fields import parse_unit
from ..io import images, provenance
from ..models import IMAGE, LOGITS, LoadedModel, precision
from ..models.weights import cache_dir
from ..optvis import objectives, params, render, transforms
from ..settings import ExplainSettings
from . import base
from .microscope import layer_folder, picture_name

PART = 32  # pictures through the network at once: on 2 cores 32 of 64 px take 2.1 ms each a step, 196 at once 5.4 ms
BLOCK = 8  # channels drawn together: a channel's picture depends only on its block, so cached pictures match fresh ones
LEARNING_RATE = 0.05
NMF_ITERATIONS = 400
GROUP_CHANNELS = 5  # a group's channels shown with their pictures: its largest weights, either sign
METHOD = "explain-1"  # part of the cache's key: change it when the channel pictures are drawn differently


@dataclass(frozen=True)
class Target:
    """What attribution is to: a class (its logit), a unit (a channel's mean activation) or a layer (its mean square)."""

    name: str
    kind: str  # "class", "unit", "layer"
    index: int | None = None  # class index or channel
    layer: str | None = None  # of a unit or a layer
    score: float = 0.0  # the logit (a class) or the value, on the photo
    probability: float | None = None  # a class's softmax probability


@dataclass
class Group:
    """One neuron group of a layer: where it is (rows x cols), which channels make it, and what it pushes."""

    spatial: np.ndarray  # (rows, cols), non-negative
    channels: np.ndarray  # (channels,): the channel factor, signed where the layer's activations are
    share: float  # of the factorized activation (the groups' shares add up to 1)
    attribution: dict[str, float] = field(default_factory=dict)  # target name -> attribution
    picture: Image.Image | None = None

    @property
    def reconstruction(self) -> torch.Tensor:
        """The group's part of the activation, (channels, rows, cols)."""
        return torch.einsum("c,hw->chw", torch.from_numpy(self.channels), torch.from_numpy(self.spatial))


@dataclass
class Factorization:
    layer: str
    grid: tuple[int, int]
    groups: list[Group]
    error: float  # relative reconstruction error, ||A - WH|| / ||A|| (A's channels split into positive and negative)
    positive: float  # share of the activation's energy (sum of squares) that is positive

    def responsibility(self) -> np.ndarray:
        """(groups, rows, cols): each group's share of each position (a position no group covers: none). A group's
        attribution is the positions' attribution weighted by it: on 20 sample photos this ranks the groups the way
        greying out their regions does (Spearman 0.33 with integrated gradients at stage5.2) better than the
        product of the group's reconstruction and the gradient (0.25), and the groups' attributions add up to the
        positions' (docs/benchmarks.md, "Explain")."""
        spatial = np.stack([group.spatial for group in self.groups])
        return spatial / np.clip(spatial.sum(0, keepdims=True), 1e-12, None)


@dataclass
class ExplainResult:
    settings: ExplainSettings
    record: provenance.Record
    model: str
    photo: Image.Image  # as the network saw it
    layer: str
    stride: int
    grid: tuple[int, int]  # rows, cols
    attribution_kind: str  # "gradient" or "integrated"
    targets: list[Target]
    activations: np.ndarray  # (rows, cols, channels)
    cell_attribution: dict[str, np.ndarray]  # target name -> (rows, cols)
    total_attribution: dict[str, float]  # target name -> sum over every position and channel
    factorization: Factorization
    cells: list[Image.Image]  # rows * cols pictures, row by row
    top_channels: np.ndarray  # (rows, cols, top) channel indices, strongest first
    channel_pictures: dict[int, Image.Image]
    channel_source: str  # where the channels' pictures came from, in words
    lower: Factorization | None = None
    flow: np.ndarray | None = None  # (lower groups, groups): how much each lower group feeds each group
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[Group]:
        return self.factorization.groups


# -- checks ----------------------------------------------------------------------------------------------------


def grid_of(model: LoadedModel, layer: str, size: tuple[int, int]) -> tuple[int, int]:
    """The (rows, cols) of `layer`'s map for a picture of `size` (width, height)."""
    stride = model.layer(layer).stride
    return -(-size[1] // stride), -(-size[0] // stride)


def default_lower_layer(model: LoadedModel, layer: str) -> str | None:
    """The last layer before `layer` at half its stride (a stage shallower), else None."""
    names = list(model.layers)
    stride = model.layer(layer).stride
    below = [n for n in names[: names.index(layer)] if model.layer(n).stride * 2 == stride]
    return below[-1] if below else None


def _layer(model: LoadedModel, settings: ExplainSettings) -> str:
    return settings.layer or model.spec.default_layer


def _lower(model: LoadedModel, settings: ExplainSettings, layer: str) -> str | None:
    if settings.lower_layer is None:
        return default_lower_layer(model, layer)
    return None if settings.lower_layer.lower() == "none" else settings.lower_layer


def check(settings: ExplainSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, what the model cannot do: the layer (a spatial map, more channels than groups), the
    targets, the lower layer and the microscope site."""
    layer = _layer(model, settings)
    if layer in (IMAGE, LOGITS):
        raise UnknownName("layer", f"must be a layer with a spatial map, not {layer}")
    info = base.known_layer(model, "layer", layer)
    size = (sizes or {}).get("input")
    if size is not None:
        rows, cols = grid_of(model, layer, imaging.limited_size(size, settings.size))
        if rows * cols < 2:
            raise SettingsError(
                "layer",
                literal(f"{layer} has a {rows}x{cols} map at {settings.size} px: no spatial grid to explain; ")
                + "choose a shallower {layer} or a larger {size}",
            )
    if settings.groups > info.channels:
        raise SettingsError("groups", literal(f"must be at most {layer}'s {info.channels} channels, got {settings.groups}"))
    lower = _lower(model, settings, layer)
    if lower is not None:
        base.known_layer(model, "lower_layer", lower)
        names = list(model.layers)
        if names.index(lower) >= names.index(layer):
            raise SettingsError("lower_layer", literal(f"must come before {layer} in the network, got {lower}"))
        if settings.groups > model.layer(lower).channels:
            raise SettingsError(
                "groups", literal(f"must be at most the lower layer {lower}'s {model.layer(lower).channels} channels")
            )
    _target_specs(model, settings, layer)
    if settings.microscope is not None:
        _site(model, settings.microscope, layer)


def _target_specs(model: LoadedModel, settings: ExplainSettings, layer: str) -> list[Target] | int:
    """The targets the settings name, checked (scores come later); or N for top:N."""
    text = settings.targets
    classifier = model.spec.num_classes > 0
    if text.startswith("top:"):
        if classifier:
            return min(int(text[4:]), model.spec.num_classes)
        deepest = list(model.layers)[-1]
        if deepest == layer:
            raise SettingsError(
                "targets", literal(f"{model.name} has no classes and {layer} is its last layer: ") + "name a unit"
            )
        return [Target(f"{deepest} (all channels)", "layer", layer=deepest)]
    order = list(model.layers)
    found = []
    for name in text.split(","):
        if ":" in name and name.rsplit(":", 1)[0] in model.layers:
            unit_layer, channel = parse_unit(name)
            base.known_channels(model, "targets", unit_layer, [channel])
            if order.index(unit_layer) <= order.index(layer):
                raise SettingsError("targets", literal(f"names {name}, which is not after {layer}: it cannot depend on it"))
            found.append(Target(f"{unit_layer}:{channel}", "unit", channel, unit_layer))
        elif not classifier:
            raise UnknownName(
                "targets", literal(f"names {name!r}, but {model.name} has no classes: name a unit as LAYER:CHANNEL")
            )
        else:
            index = base.known_class(model, "targets", name)
            found.append(Target(model.class_label(index), "class", index))
    return found


def _site(model: LoadedModel, folder: str, layer: str) -> Path:
    """A microscope site's folder, checked: the same model and this layer drawn."""
    root = Path(folder)
    facts = root / "microscope.json"
    if not root.is_dir() or not facts.is_file():
        raise SettingsError(
            "microscope",
            literal(f"{folder} is not a microscope site (no microscope.json): ") + "give the folder the microscope wrote",
        )
    try:
        data = json.loads(facts.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SettingsError("microscope", literal(f"{folder}/microscope.json cannot be read")) from None
    if data.get("model") != model.name:
        raise SettingsError("microscope", literal(f"{folder} draws {data.get('model')}, not {model.name}"))
    if layer not in data.get("layers", {}):
        raise SettingsError("microscope", literal(f"{folder} has no pages for layer {layer}"))
    return root


# -- the recipe ------------------------------------------------------------------------------------------------


def explain_iter(
    image: Image.Image,
    settings: ExplainSettings | None = None,
    *,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Explain `image` at `layer`: a Run of events; the last has the ExplainResult. Every setting is checked against
    the model and the photo before any work."""
    check_available()
    settings, net = base.prepare(ExplainSettings, settings, fields, model, device)
    check(settings, net, {"input": image.size})
    photo = imaging.limit_size(image.convert("RGB"), settings.size)
    record = provenance.make(settings, net, {"input": image}, precision=precision.name_of(precision.at(net, settings.precision)))
    return Run(_explain(net, photo, settings, record), settings, record, net)


def explain(image: Image.Image, settings: ExplainSettings | None = None, **options) -> ExplainResult:
    """Like `explain_iter`, but returns the finished `ExplainResult`."""
    return explain_iter(image, settings, **options).result()


# The progress bar's shares: the pictures are nearly all of the time.
SHARES = {"attribute": 0.04, "pictures": 0.6, "channels": 0.36}


def _explain(net: LoadedModel, photo: Image.Image, settings: ExplainSettings, record) -> Iterator[Event]:
    layer = _layer(net, settings)
    lower = _lower(net, settings, layer)
    x = imaging.to_tensor(photo, net.device)
    stage = Stage("explain", 1, 3, "factorizing and attributing")
    yield Event((stage,), 0.0)
    with torch.no_grad():
        acts = render.activations(net, [layer] + ([lower] if lower else []), x)
    activation = acts[layer][0]  # (C, rows, cols)
    targets = _scored_targets(net, settings, layer, x)
    gradients = attribution_gradients(net, x, layer, activation, targets, settings.attribution, settings.integrated_steps)
    factorization = factorize(activation, settings.groups, settings.seed, layer)
    per_position = {t.name: (activation * g).sum(0).cpu().numpy() for t, g in zip(targets, gradients)}
    total = {name: float(values.sum()) for name, values in per_position.items()}
    responsibility = factorization.responsibility()
    for group, share in zip(factorization.groups, responsibility):
        group.attribution = {name: float((share * values).sum()) for name, values in per_position.items()}
    lower_factorization, flow = None, None
    if lower:
        lower_factorization = factorize(acts[lower][0], settings.groups, settings.seed, lower)
        flow = group_flow(net, x, lower, acts[lower][0], lower_factorization, layer, factorization)
    notes = []
    yield Event((stage,), SHARES["attribute"])

    stage = Stage("explain", 2, 3, "drawing the grid and the groups")
    start, span = SHARES["attribute"], SHARES["pictures"]
    drawing = draw_grid(net, layer, activation, factorization, lower_factorization, settings)
    pictures = yield from _nested(drawing, stage, start, span)
    count = len(factorization.groups)
    for group, picture in zip(factorization.groups, pictures[:count]):
        group.picture = picture
    rows, cols = factorization.grid
    cells = pictures[count : count + rows * cols]
    if lower_factorization is not None:
        for group, picture in zip(lower_factorization.groups, pictures[count + rows * cols :]):
            group.picture = picture

    stage = Stage("explain", 3, 3, "the channels' pictures")
    top = activation.flatten(1).T.topk(min(settings.top_channels, activation.shape[0]), dim=1).indices
    top = top.reshape(rows, cols, -1).cpu().numpy()
    wanted = {int(c) for c in top.flatten()}
    for group in factorization.groups:
        wanted |= set(strongest_channels(group).tolist())
    wanted = sorted(wanted)
    drawing = channel_pictures(net, layer, wanted, settings, record)
    channel_picture, source = yield from _nested(drawing, stage, start + span, SHARES["channels"])
    result = ExplainResult(
        settings=settings,
        record=record,
        model=net.name,
        photo=photo,
        layer=layer,
        stride=net.layer(layer).stride,
        grid=(rows, cols),
        attribution_kind=settings.attribution,
        targets=targets,
        activations=activation.permute(1, 2, 0).cpu().numpy(),
        cell_attribution=per_position,
        total_attribution=total,
        factorization=factorization,
        cells=cells,
        top_channels=top,
        channel_pictures=channel_picture,
        channel_source=source,
        lower=lower_factorization,
        flow=flow,
        notes=notes,
    )
    for note in notes:
        yield Event((stage,), 1.0, note=note)
    yield finish(result)


def strongest_channels(group: Group, count: int = GROUP_CHANNELS) -> np.ndarray:
    """The channels that weigh most in a group, either sign, largest first."""
    return np.argsort(-np.abs(group.channels), kind="stable")[:count]


def _nested(events: Iterator[Event], stage: Stage, start: float, span: float):
    """Re-yield a part's events within `stage`; returns the part's result (its last event's)."""
    last = None
    for last in events:
        if last.done:
            return last.result
        yield last.nested(stage, start, span)
    raise AssertionError("a part ended without a result")


# -- targets and attribution -----------------------------------------------------------------------------------


def _scored_targets(net: LoadedModel, settings: ExplainSettings, layer: str, x: torch.Tensor) -> list[Target]:
    specs = _target_specs(net, settings, layer)
    reads = [LOGITS] if isinstance(specs, int) or any(t.kind == "class" for t in specs) else []
    reads += [t.layer for t in ([] if isinstance(specs, int) else specs) if t.layer]
    with torch.no_grad():
        out = render.activations(net, reads, x)
    probabilities = out[LOGITS][0].softmax(0) if LOGITS in out else None
    if isinstance(specs, int):
        best = probabilities.topk(specs).indices.tolist()
        specs = [Target(net.class_label(i), "class", i) for i in best]
    scored = []
    for target in specs:
        value = float(_target_values(target, out)[0])
        chance = float(probabilities[target.index]) if target.kind == "class" else None
        scored.append(Target(target.name, target.kind, target.index, target.layer, value, chance))
    return scored


def _target_values(target: Target, out: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The target's value for each picture of the batch."""
    if target.kind == "class":
        return out[LOGITS][:, target.index]
    if target.kind == "unit":
        return out[target.layer][:, target.index].mean(dim=(1, 2))
    return out[target.layer].pow(2).mean(dim=(1, 2, 3))


def attribution_gradients(
    net: LoadedModel,
    x: torch.Tensor,
    layer: str,
    activation: torch.Tensor,
    targets: list[Target],
    kind: str = "gradient",
    steps: int = 24,
) -> list[torch.Tensor]:
    """For each target, the gradient (C, rows, cols) whose product with an activation is its attribution: the
    target's gradient at the photo's activation, or (integrated) its mean along the straight path from a zero
    activation to the photo's, at the midpoints of `steps` equal intervals. Integrated gradients add up to the
    target's change from the zero activation (completeness); activation x gradient is its first-order share."""
    scales = torch.tensor([1.0]) if kind == "gradient" else (torch.arange(steps) + 0.5) / steps
    found = []
    for target in targets:
        path = (scales.view(-1, 1, 1, 1).to(activation) * activation).requires_grad_(True)
        batch = x.expand(len(scales), -1, -1, -1)
        reads = [target.layer or LOGITS]
        out = render.activations(net, reads, batch, replace={layer: lambda _act, path=path: path})
        (gradient,) = torch.autograd.grad(_target_values(target, out).sum(), path)
        found.append(gradient.mean(0).detach())
    return found


def _nmf():
    try:
        from sklearn.decomposition import NMF  # scikit-learn loads in a second; only explain needs it
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        raise DreamscopeError("explain needs scikit-learn for its neuron groups: pip install 'dreamscope[explain]'") from None
    return NMF, ConvergenceWarning


def check_available() -> None:
    """Refuse, before any work, an explanation that cannot factorize (scikit-learn missing)."""
    _nmf()


def factorize(activation: torch.Tensor, groups: int, seed: int, layer: str) -> Factorization:
    """NMF of the activations (positions x channels) into `groups`, largest share first.

    A layer whose activations can be negative (a linear bottleneck: about half of efficientnet-lite0's stage5.2's
    energy) is factorized with each channel split into its positive and negative parts, so the groups explain the
    whole activation, not only what a ReLU would keep; a group's channel factor is then the positive part's weights
    minus the negative part's, with unit norm (its scale moved into the spatial map)."""
    NMF, ConvergenceWarning = _nmf()
    channels, rows, cols = activation.shape
    flat = activation.flatten(1).T.double().cpu().numpy()  # (positions, channels)
    matrix = np.concatenate([np.maximum(flat, 0), np.maximum(-flat, 0)], axis=1)
    if not matrix.any():
        raise DreamscopeError(f"{layer} is silent on this photo (every activation is zero): there is nothing to factorize")
    model = NMF(n_components=groups, init="nndsvda", random_state=seed, max_iter=NMF_ITERATIONS, tol=1e-5)
    with warnings.catch_warnings():
        # Stopping at the iteration cap is part of the recipe (fixed work per photo); how well the groups fit is
        # reported as the reconstruction error, so sklearn's ConvergenceWarning would only be noise in the terminal.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        spatial = model.fit_transform(matrix)
    parts = model.components_  # (groups, 2 * channels)
    norms = np.linalg.norm(parts, axis=1)
    norms[norms == 0] = 1.0
    parts, spatial = parts / norms[:, None], spatial * norms[None, :]
    sizes = spatial.sum(0) * parts.sum(1)  # each group's sum over the reconstruction
    error = float(np.linalg.norm(matrix - spatial @ parts) / np.linalg.norm(matrix))
    found = [
        Group(
            spatial=spatial[:, k].reshape(rows, cols).astype(np.float32),
            channels=(parts[k, :channels] - parts[k, channels:]).astype(np.float32),
            share=float(sizes[k] / max(sizes.sum(), 1e-12)),
        )
        for k in np.argsort(-sizes, kind="stable")
    ]
    positive = float(np.square(matrix[:, :channels]).sum() / np.square(matrix).sum())
    return Factorization(layer, (rows, cols), found, error, positive)


def group_flow(
    net: LoadedModel,
    x: torch.Tensor,
    lower: str,
    lower_activation: torch.Tensor,
    below: Factorization,
    layer: str,
    above: Factorization,
) -> np.ndarray:
    """How much each lower group feeds each group of `layer`: the lower group's part of the activation times the
    gradient of the upper group's strength (its channel factor's projection, weighted by its spatial map)."""
    count = len(above.groups)
    path = lower_activation.expand(count, -1, -1, -1).clone().requires_grad_(True)
    out = render.activations(net, [layer], x.expand(count, -1, -1, -1), replace={lower: lambda _act: path})[layer]
    strengths = []
    for k, group in enumerate(above.groups):
        weight = torch.from_numpy(group.spatial).to(out)
        weight = weight / weight.sum().clamp(min=1e-12)
        direction = torch.from_numpy(group.channels).to(out)
        strengths.append((out[k] * direction.view(-1, 1, 1) * weight).sum())
    (gradient,) = torch.autograd.grad(torch.stack(strengths).sum(), path)
    flow = np.zeros((len(below.groups), count), dtype=np.float32)
    for j, group in enumerate(below.groups):
        part = group.reconstruction.to(gradient)
        for k in range(count):
            flow[j, k] = float((part * gradient[k]).sum())
    return flow


# -- pictures --------------------------------------------------------------------------------------------------


def _transform(size: int):
    """Transformation robustness scaled to the pictures' size (as the atlas's icons)."""
    scale = size / 224
    return transforms.standard_transforms(pad=max(2, round(12 * scale)), jitter=max(1, round(8 * scale)))


def draw_grid(
    net: LoadedModel,
    layer: str,
    activation: torch.Tensor,
    factorization: Factorization,
    lower: Factorization | None,
    settings: ExplainSettings,
) -> Iterator[Event]:
    """The groups' pictures, then every cell's (row by row), then the lower layer's groups', as one optimization:
    a group's picture follows its channel factor, a cell's its activation vector, and each cell mixes the groups'
    pictures by its share of each group (`params.MixedFourierImage`). The last event's result: the PIL pictures."""
    _, rows, cols = activation.shape
    groups = factorization.groups
    spatial = torch.stack([torch.from_numpy(g.spatial).flatten() for g in groups], dim=1)  # (positions, K)
    mixing = spatial / spatial.sum(1, keepdim=True).clamp(min=1e-12)
    directions = [(layer, torch.from_numpy(g.channels)) for g in groups]
    directions += [(layer, activation[:, r, c].detach().cpu()) for r in range(rows) for c in range(cols)]
    extra = lower.groups if lower is not None else []
    directions += [(lower.layer, torch.from_numpy(g.channels)) for g in extra]
    mixing = torch.cat([mixing, torch.zeros(len(extra), len(groups))])  # the lower groups mix nothing
    generator = base.generator(settings.seed)
    size = settings.cell_size
    picture = params.MixedFourierImage(mixing, size, size, generator).to(net.device)
    parts = []
    for start in range(0, len(directions), PART):
        chunk = directions[start : start + PART]
        objective = sum(
            (objectives.direction(name, vector, sample=i, cossim_power=1.0) for i, (name, vector) in enumerate(chunk)),
            objectives.Objective(terms=()),
        )
        parts.append((slice(start, start + len(chunk)), objective))
    events = render.optimize_in_parts(
        precision.at(net, settings.precision),
        parts,
        picture,
        steps=settings.steps,
        generator=generator,
        learning_rate=LEARNING_RATE,
        transform=_transform(size),
    )
    last = None
    for last in events:
        yield last
    yield finish([imaging.to_pil(p) for p in last.tensor.split(1)])


def channel_pictures(
    net: LoadedModel, layer: str, channels: list[int], settings: ExplainSettings, record: provenance.Record
) -> Iterator[Event]:
    """The pictures of `channels` of `layer`: from the microscope site when one is given, else from the cache, else
    drawn (a block of BLOCK channels at a time, the blocks that hold a wanted channel) and cached. The last event's
    result: ({channel: picture}, where they came from in words)."""
    found: dict[int, Image.Image] = {}
    if settings.microscope is not None:
        folder = _site(net, settings.microscope, layer) / layer_folder(layer)
        for channel in channels:
            path = folder / picture_name(channel)
            if path.is_file():
                found[channel] = images.load_image(path).convert("RGB")
    from_site = len(found)
    cache = cache_folder(net, layer, settings, record)
    for channel in channels:
        path = cache / f"{channel}.png"
        if channel not in found and path.is_file():
            try:
                found[channel] = images.load_image(path).convert("RGB")
            except DreamscopeError:  # a damaged cache file is drawn again
                pass
    from_cache = len(found) - from_site
    blocks = sorted({c // BLOCK for c in channels if c not in found})
    count = net.layer(layer).channels
    for number, block in enumerate(blocks):
        members = list(range(block * BLOCK, min(count, (block + 1) * BLOCK)))
        generator = base.generator(settings.seed + block)
        picture = params.make_param("fft", len(members), settings.channel_size, settings.channel_size, generator).to(net.device)
        events = render.optimize(
            precision.at(net, settings.precision),
            objectives.channel_sheet(layer, members),
            picture,
            steps=settings.steps,
            generator=generator,
            learning_rate=LEARNING_RATE,
            transform=_transform(settings.channel_size),
        )
        stage = Stage("channels", number + 1, len(blocks), f"{layer}:{members[0]}-{members[-1]}")
        last = None
        for last in events:
            yield last.nested(stage, number / len(blocks), 1 / len(blocks))
        for channel, tensor in zip(members, last.tensor.split(1)):
            drawn = imaging.to_pil(tensor)
            _cache_picture(cache, channel, drawn)
            found.setdefault(channel, drawn)
    drawn = len(channels) - from_site - from_cache
    words = [
        f"{n} {what}"
        for n, what in ((from_site, "from the microscope site"), (from_cache, "from the cache"), (drawn, "drawn"))
        if n
    ]
    yield finish(({c: found[c] for c in channels}, ", ".join(words) or "none needed"))


def cache_folder(net: LoadedModel, layer: str, settings: ExplainSettings, record: provenance.Record) -> Path:
    """Where the channels' pictures of this model (its weights' digest), layer and drawing settings are kept."""
    drawn = [METHOD, record.model, layer, settings.channel_size, settings.steps, settings.seed, LEARNING_RATE, BLOCK]
    if record.precision == "bf16":  # float32's key is the one caches had before the choice existed
        drawn.append("bf16")
    key = json.dumps(drawn, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "channels" / digest


def _cache_picture(folder: Path, channel: int, picture: Image.Image) -> None:
    """Keep a drawn picture for the next photo; a cache that cannot be written only costs the next photo time."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        images.save_image(picture, folder / f"{channel}.png")
    except (OSError, DreamscopeError):
        pass
