"""The microscope: every channel of a network's layers drawn by feature visualization, with diverse samples, the
classes each channel pushes toward and, given a folder of pictures, its natural exemplars; a static website
(`microscope_site.py`) to browse them. What OpenAI Microscope did for a few models, for any model here.

It is batch work (batch.py), so it runs on this machine's processes or on a Ray cluster alike:
- a block of `block` channels of one layer is one item: one optimization draws every channel's main picture and
  its samples together (the samples of a channel pushed apart in style), then one forward-mode pass gives each
  channel's push on every class; the item writes its pictures and, last, `block-START.json`, its record;
- a shard of the exemplar folder is one item: one pass over its pictures records every channel's strongest
  responses in `.work/exemplars-I-of-N.json`;
- the driver then merges the shards' responses, cuts the patches, and writes the pages.
Each block is seeded by (seed, layer, first channel): a picture does not depend on which worker drew it or when.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.autograd.forward_ad as fwAD

from .. import batch, images, objectives, params, provenance, render, transforms
from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish, nest
from ..models import LoadedModel, load_model
from ..models.loading import class_names, list_layers
from ..models.spec import LOGITS
from ..settings import MicroscopeSettings
from . import base
from . import folder as folders

SHARD_PICTURES = 500  # pictures per exemplar shard: fixed by the folder's size alone, so a resumed run finds its shards
PATCH_PX = 96  # exemplar patches are saved at this side
WORK = ".work"


def layer_folder(layer: str) -> str:
    """A layer's folder name in the site: its name, with anything but letters, digits, '.', '-' and '_' replaced."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in layer)


def block_name(layer: str, start: int, stop: int) -> str:
    """A block's item name, as the summary and the pages show it: LAYER:FIRST-LAST."""
    return f"{layer}:{start}-{stop - 1}"


def shard_path(root: Path, number: int, count: int) -> Path:
    """Where exemplar shard `number` of `count` keeps its responses."""
    return root / WORK / f"exemplars-{number}-of-{count}.json"


def picture_name(channel: int, sample: int = 0) -> str:
    return f"{channel}.png" if sample == 0 else f"{channel}-s{sample}.png"


@dataclass(frozen=True)
class Plan:
    """What a microscope draws: the layers with their channel counts, the class names, and its work items."""

    settings: MicroscopeSettings
    model: str
    layers: dict[str, int]  # layer -> channels, shallow to deep
    strides: dict[str, int]  # layer -> stride in px (an exemplar patch's size follows it)
    classes: list[str] | None
    items: list[batch.Item]
    shards: int  # exemplar shards (0: no folder)
    root: Path


def plan(settings: MicroscopeSettings, output: str | os.PathLike) -> Plan:
    """The work of a microscope into `output`, checked before any of it starts (layers, folder, output)."""
    listing = list_layers(settings.model, settings.weights)
    infos = dict(listing.layers)
    layers = {name: info.channels for name, info in infos.items()}
    if settings.layers is not None:
        wanted = settings.layers.split(",")
        unknown = [name for name in wanted if name not in layers]
        if unknown:
            from ..errors import suggest

            raise SettingsError("layers", f"names {unknown[0]}, which is not a dreamable layer of {listing.model}"
                                          f"{suggest(unknown[0], layers)} (see: dreamscope layers --model {settings.model})")
        layers = {name: count for name, count in layers.items() if name in wanted}
    try:
        names, count = class_names(settings.model, settings.weights)
        classes = names or [f"class {i}" for i in range(count)]
    except DreamscopeError:  # a model without class scores: no classes to list
        classes = None
    from .. import microscope_site, report

    root = Path(output).resolve()
    report.check_report_folder(root, microscope_site.GENERATOR, alternative="")  # ours (a resumed run) or empty
    batch.check_output_folder(root)
    payload = settings.to_json()
    items = []
    for layer, channels in layers.items():
        for start in range(0, channels, settings.block):
            stop = min(channels, start + settings.block)
            output_file = root / layer_folder(layer) / f"block-{start}.json"
            items.append(batch.Item(block_name(layer, start, stop), "dreamscope.recipes.microscope:draw_block",
                                    {"settings": payload, "layer": layer, "channels": [start, stop], "site": str(root)},
                                    str(output_file), "dreamscope.recipes.microscope:block_complete"))
    shards = 0
    if settings.exemplar_folder is not None:
        files = images.picture_files(settings.exemplar_folder)
        if not files:
            raise SettingsError("exemplar_folder", f"holds no pictures ({', '.join(images.PICTURE_SUFFIXES)}, searched recursively)")
        shards = max(1, math.ceil(len(files) / SHARD_PICTURES))
        for number in range(shards):
            output_file = shard_path(root, number, shards)
            items.append(batch.Item(f"exemplars {number + 1}/{shards}", "dreamscope.recipes.microscope:search_shard",
                                    {"settings": payload, "shard": [number, shards], "layers": list(layers), "output": str(output_file)},
                                    str(output_file), "dreamscope.recipes.microscope:shard_complete"))
    return Plan(settings, listing.model, layers, {name: infos[name].stride for name in layers}, classes, items, shards, root)


# -- a block of channels: pictures, samples, classes -------------------------------------------------------------


def block_settings(settings: MicroscopeSettings, layer: str) -> MicroscopeSettings:
    """What a block's pictures depend on: the drawing settings and its layer (not the other layers or exemplars)."""
    return settings.replace(layers=layer, exemplar_folder=None, exemplar_count=6, side=None)


def draw_block(arguments: Mapping[str, Any]) -> str:
    """A worker's task: draw channels [start, stop) of a layer and write their pictures and the block's record."""
    settings = MicroscopeSettings.from_json(arguments["settings"])
    layer, (start, stop) = arguments["layer"], arguments["channels"]
    net = load_model(settings.model, weights=settings.weights)  # cached: once per worker process
    channels = list(range(start, stop))
    pictures, losses = render_channels(net, layer, channels, settings)
    pushes = class_push(net, layer, pictures[:: 1 + settings.samples], channels)
    own = block_settings(settings, layer)
    record = provenance.make(own, net)
    folder = Path(arguments["site"]) / layer_folder(layer)
    folder.mkdir(parents=True, exist_ok=True)
    per = 1 + settings.samples
    metadata = {provenance.KEY: record.to_text()}
    facts = {}
    for i, channel in enumerate(channels):
        for sample in range(per):
            batch.remove_debris(folder / picture_name(channel, sample))  # a killed earlier try's temporary file
            images.save_image(images.to_pil(pictures[i * per + sample : i * per + sample + 1]), folder / picture_name(channel, sample),
                              metadata=metadata)
        top = []
        if pushes is not None and settings.top:
            values, indices = pushes[i].topk(min(settings.top, pushes.shape[1]))
            top = [[int(index), round(float(value), 4)] for value, index in zip(values, indices)]
        facts[str(channel)] = {"activation": round(losses[i * per], 4), "classes": top}
    data = {"record": record.to_json(), "layer": layer, "channels": [start, stop], "facts": facts}
    images.write_file(folder / f"block-{start}.json", lambda handle: handle.write(json.dumps(data).encode()))
    return ""


def render_channels(net: LoadedModel, layer: str, channels: list[int], settings: MicroscopeSettings):
    """Every channel's main picture and `samples` more, in one batch: picture i * (1 + samples) + j is sample j of
    channel i (0: the main picture, drawn without the diversity term). Returns the pictures (N, 3, H, W) on the CPU
    and each picture's final mean activation of its channel."""
    per = 1 + settings.samples
    objective = sum((objectives.channel(layer, channel, sample=i * per + j) for i, channel in enumerate(channels) for j in range(per)),
                    objectives.Objective(terms=()))
    if settings.samples >= 2 and settings.diversity > 0:
        groups = [[i * per + 1 + j for j in range(settings.samples)] for i in range(len(channels))]
        objective = objective + settings.diversity * objectives.diversity(layer, groups)
    generator = base.generator_for(settings.seed, layer, channels[0])
    param = params.make_param("fft", len(channels) * per, settings.size, settings.size, generator).to(net.device)
    last = None
    for last in render.optimize(net, objective, param, steps=settings.steps, learning_rate=settings.learning_rate,
                                generator=generator, transform=transforms.robustness):
        pass
    pictures = last.picture.float()
    with torch.no_grad():
        act = render.activations(net, [layer], pictures)[layer]
    index = torch.tensor([c for c in channels for _ in range(per)])
    losses = act[torch.arange(len(index)), index.to(act.device)].mean(dim=(1, 2))
    return pictures.cpu(), [float(v) for v in losses]


def class_push(net: LoadedModel, layer: str, pictures: torch.Tensor, channels: list[int]) -> torch.Tensor | None:
    """How much each class's logit rises when channel `channels[i]` rises by 1 everywhere on picture i (its own
    feature visualization): the derivative along that direction, one forward-mode pass for the whole block.
    None for a model without class scores."""
    if net.spec.logits_module is None:
        return None
    picked = torch.tensor(channels)

    def with_tangent(output):
        tangent = torch.zeros_like(output)
        tangent[torch.arange(len(channels)), picked.to(output.device)] = 1.0
        return fwAD.make_dual(output, tangent)

    with torch.no_grad(), fwAD.dual_level():
        acts = render.activations(net, [LOGITS], pictures.to(net.device), replace={layer: with_tangent})
        return fwAD.unpack_dual(acts[LOGITS]).tangent.float().cpu()


def block_complete(item: batch.Item) -> bool:
    """A block is done when its record names the same drawing settings and every picture it lists exists."""
    data = json.loads(Path(item.output).read_text())
    settings = MicroscopeSettings.from_json(item.arguments["settings"])
    if provenance.Record.from_json(data["record"]).settings != block_settings(settings, item.arguments["layer"]):
        return False
    folder = Path(item.output).parent
    return all((folder / picture_name(int(channel), sample)).is_file() for channel in data["facts"]
               for sample in range(1 + settings.samples))


# -- exemplars: sharded search, merged by the driver -------------------------------------------------------------


def search_shard(arguments: Mapping[str, Any]) -> str:
    """A worker's task: one shard of the exemplar folder, every channel of the layers; writes their top responses."""
    from .exemplars import top_responses

    settings = MicroscopeSettings.from_json(arguments["settings"])
    number, count = arguments["shard"]
    net = load_model(settings.model, weights=settings.weights)
    side = settings.side or net.spec.resolution
    scan = folders.scan(settings.exemplar_folder, side, shard=(number, count))
    units = [(layer, channel) for layer in arguments["layers"] for channel in range(net.layer(layer).channels)]
    tops, grids, read = _returned(top_responses(net, scan, units, settings.exemplar_count))
    data = {"key": _shard_key(settings, arguments["layers"], scan.files), "side": side, "read": read,
            "skipped": [list(pair) for pair in scan.skipped], "grids": {layer: list(grid) for layer, grid in grids.items()},
            "units": {f"{layer}:{channel}": [[round(float(score), 6), scan.files[int(picture)], int(position)] for score, picture, position
                                             in zip(top.scores.tolist(), top.pictures.tolist(), top.positions.tolist())]
                      for (layer, channel), top in tops.items()}}
    output = Path(arguments["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    images.write_file(output, lambda handle: handle.write(json.dumps(data).encode()))
    return f"{read} pictures read" + (f", {len(scan.skipped)} skipped" if scan.skipped else "")


def _returned(generator):
    """Run a generator to its end and give its return value (what `yield from` would give)."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def _shard_key(settings: MicroscopeSettings, layers, files) -> dict:
    """What a shard's responses depend on: the network, the folder's pictures in the shard, how they are seen."""
    return {"model": settings.model, "weights": settings.weights, "folder": os.path.abspath(settings.exemplar_folder),
            "side": settings.side, "count": settings.exemplar_count, "layers": list(layers), "files": list(files)}


def shard_complete(item: batch.Item) -> bool:
    data = json.loads(Path(item.output).read_text())
    settings = MicroscopeSettings.from_json(item.arguments["settings"])
    number, count = item.arguments["shard"]
    files = [path.relative_to(settings.exemplar_folder).as_posix() for path in images.picture_files(settings.exemplar_folder)]
    return data.get("key") == _shard_key(settings, item.arguments["layers"], files[number::count])


def merge_exemplars(plan: Plan) -> tuple[dict[str, list], dict]:
    """The shards' responses joined: each channel's `exemplar_count` strongest pictures over the whole folder
    (ties to the earlier picture, as one pass would give), and what was read and skipped."""
    settings = plan.settings
    order = {path.relative_to(settings.exemplar_folder).as_posix(): number
             for number, path in enumerate(images.picture_files(settings.exemplar_folder))}
    joined: dict[str, list] = {}
    grids, side, read, skipped = {}, None, 0, []
    for number in range(plan.shards):
        path = shard_path(plan.root, number, plan.shards)
        if not path.is_file():
            continue  # a failed shard: its pictures are missing from the exemplars (the summary says why)
        data = json.loads(path.read_text())
        grids.update(data["grids"])
        side, read, skipped = data["side"], read + data["read"], skipped + data["skipped"]
        for unit, entries in data["units"].items():
            joined.setdefault(unit, []).extend(entries)
    best = {unit: sorted(entries, key=lambda e: (-e[0], order.get(e[1], len(order))))[: settings.exemplar_count]
            for unit, entries in joined.items()}
    return best, {"grids": grids, "side": side, "read": read, "skipped": skipped}


def cut_exemplars(plan: Plan, best: dict[str, list], facts: dict) -> Iterator[Event]:
    """Cut each chosen patch from its picture (each picture read once) into LAYER/exemplars/CHANNEL-RANK.jpg;
    the last event's result is {unit: [{file, activation, picture}]}."""
    wanted: dict[str, list] = {}
    for unit, entries in best.items():
        for rank, (score, file, position) in enumerate(entries):
            wanted.setdefault(file, []).append((unit, rank, score, position))
    cut: dict[str, list] = {unit: [None] * len(entries) for unit, entries in best.items()}
    root = Path(plan.settings.exemplar_folder)
    side = facts["side"]
    for number, file in enumerate(sorted(wanted), start=1):
        square = images.centre_square(images.load_image(root / file, "picture"), side)
        for unit, rank, score, position in wanted[file]:
            layer, _, channel = unit.rpartition(":")
            grid = facts["grids"][layer]
            row, col = divmod(position, grid[1])
            box = folders.patch_box(row, col, tuple(grid), side, folders.patch_size(plan.strides[layer], side))
            relative = f"{layer_folder(layer)}/exemplars/{channel}-{rank + 1}.jpg"
            (plan.root / relative).parent.mkdir(parents=True, exist_ok=True)
            images.save_image(square.crop(box).resize((PATCH_PX, PATCH_PX)), plan.root / relative)
            cut[unit][rank] = {"file": file, "activation": round(score, 4), "picture": relative}
        yield Event((Stage("exemplar picture", number, len(wanted)),), number / len(wanted))
    yield finish(cut)


# -- the whole microscope ------------------------------------------------------------------------------------------


@dataclass
class MicroscopeResult:
    folder: Path
    plan: Plan
    batch: batch.BatchResult
    channels: int  # channels drawn
    exemplars: dict  # what the exemplar search read and skipped (empty without a folder)


def microscope_iter(settings: MicroscopeSettings | None = None, output: str | os.PathLike = "microscope", *,
                    engine: batch.Engine | None = None, threads: int = 1, **fields) -> Run:
    """Draw a microscope into the folder `output`: events over all its work, the last with a MicroscopeResult.
    Work already done there with the same settings is kept (resume); `engine` runs the items (default: this
    machine's processes)."""
    from .. import microscope_site

    settings = MicroscopeSettings.build(settings, fields)
    work = plan(settings, output)
    run = batch.run_batch(work.items, engine, threads=threads, summary=work.root / batch.SUMMARY,
                          describe={"command": "microscope", "settings": settings.to_json()})

    def events() -> Iterator[Event]:
        work.root.mkdir(parents=True, exist_ok=True)
        microscope_site.placeholder(work.root, work.model)  # marks the folder as a microscope's: a rerun continues it
        done = yield from nest(run, Stage("part", 1, 2, "drawing"), 0.0, 0.9)
        found, facts = {}, {}
        if work.shards:
            best, facts = merge_exemplars(work)
            found = yield from nest(cut_exemplars(work, best, facts), Stage("part", 2, 2, "exemplars"), 0.9, 0.08)
        drawn = microscope_site.write_site(work, done, found, facts)
        yield finish(MicroscopeResult(work.root, work, done, drawn, facts))

    return Run(events(), settings, None, None)


def microscope(settings: MicroscopeSettings | None = None, output: str | os.PathLike = "microscope", **options) -> MicroscopeResult:
    """Like `microscope_iter`, but returns the finished MicroscopeResult."""
    return microscope_iter(settings, output, **options).result()
