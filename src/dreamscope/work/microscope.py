"""The microscope as work: every channel of a network's layers drawn by feature visualization, with diverse samples,
the classes each channel pushes toward and, given a folder of pictures, its natural exemplars; a static website
(`pages/microscope.py`) to browse them. What OpenAI Microscope did for a few models, for any model here.

It is batch work (batch.py), so it runs on this machine's processes or on a Ray cluster alike:
- a block of `block` channels of one layer is one item: one optimization draws every channel's main picture and
  its samples together (`recipes/microscope.py`), then one forward-mode pass gives each channel's push on every
  class; the item writes its pictures and, last, `block-START.json`, its record;
- a shard of the exemplar folder is one item: one pass over its pictures records every channel's strongest
  responses in `.work/exemplars-I-of-N.json`;
- the driver then merges the shards' responses, cuts the patches, and writes the pages.
Each block is seeded by (seed, layer, first channel): a picture does not depend on which worker drew it or when.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import imaging
from ..errors import DreamscopeError, SettingsError, UnknownName, suggest
from ..events import Event, Run, Stage, finish, nest
from ..events import run as run_events
from ..io import files, folders, images, provenance
from ..models import load_model, precision
from ..models.loading import class_names, list_layers
from ..pages import microscope as site
from ..pages.output import check_page_folder
from ..recipes import microscope as drawing
from ..recipes.exemplars import top_responses
from ..settings import MicroscopeSettings
from . import batch

PATCH_PX = 96  # exemplar patches are saved at this side
WORK = ".work"


def shard_path(root: Path, number: int, count: int) -> Path:
    """Where exemplar shard `number` of `count` keeps its responses."""
    return root / WORK / f"exemplars-{number}-of-{count}.json"


@dataclass(frozen=True)
class Plan(site.Site):
    """What a microscope draws (its site: the layers with their channel counts, the class names) and its work items."""

    items: list[batch.Item] = field(default=(), repr=False)  # one per block and shard: see the counts
    shards: int = 0  # exemplar shards (0: no folder)


def plan(settings: MicroscopeSettings, output: str | os.PathLike) -> Plan:
    """The work of a microscope into `output`, checked before any of it starts (layers, folder, output)."""
    listing = list_layers(settings.model, settings.weights)
    infos = dict(listing.layers)
    layers = {name: info.channels for name, info in infos.items()}
    if settings.layers is not None:
        wanted = settings.layers.split(",")
        unknown = [name for name in wanted if name not in layers]
        if unknown:
            raise SettingsError(
                "layers",
                f"names {unknown[0]}, which is not a dreamable layer of {listing.model}"
                f"{suggest(unknown[0], layers)} (see: dreamscope layers --model {settings.model})",
            )
        layers = {name: count for name, count in layers.items() if name in wanted}
    try:
        names, count = class_names(settings.model, settings.weights)
        classes = names or [f"class {i}" for i in range(count)]
    except DreamscopeError:  # a model without class scores: no classes to list
        classes = None
    root = Path(output).resolve()
    check_page_folder(root, site.GENERATOR)  # ours (a resumed run) or empty
    batch.check_output_folder(root)
    payload = settings.to_json()
    items = []
    for layer, channels in layers.items():
        beyond = [c for c in site.drawn_channels(settings, channels) if c >= channels]
        if beyond:
            raise UnknownName("channels", f"names channel {beyond[0]} of {layer}, which has channels 0-{channels - 1}")
        for start, stop in site.blocks(settings, channels):
            output_file = root / site.layer_folder(layer) / f"block-{start}.json"
            items.append(
                batch.Item(
                    site.block_name(layer, start, stop),
                    batch.task_name(draw_block),
                    {"settings": payload, "layer": layer, "channels": [start, stop], "site": str(root)},
                    str(output_file),
                    batch.task_name(block_complete),
                )
            )
    shards = 0
    if settings.exemplar_folder is not None:
        found = folders.picture_files(settings.exemplar_folder)
        if not found:
            raise SettingsError(
                "exemplar_folder", f"holds no pictures ({', '.join(folders.PICTURE_SUFFIXES)}, searched recursively)"
            )
        shards = max(1, math.ceil(len(found) / batch.SHARD_PICTURES))
        for number in range(shards):
            output_file = shard_path(root, number, shards)
            items.append(
                batch.Item(
                    f"exemplars {number + 1}/{shards}",
                    batch.task_name(search_shard),
                    {"settings": payload, "shard": [number, shards], "layers": list(layers), "output": str(output_file)},
                    str(output_file),
                    batch.task_name(shard_complete),
                )
            )
    return Plan(settings, listing.model, layers, {name: infos[name].stride for name in layers}, classes, root, items, shards)


# -- a block of channels: pictures, samples, classes -------------------------------------------------------------


def block_settings(settings: MicroscopeSettings, layer: str) -> MicroscopeSettings:
    """What a block's pictures depend on: the drawing settings and its layer (not the other layers or exemplars)."""
    return settings.replace(layers=layer, channels=None, exemplar_folder=None, exemplar_count=6, side=None)


@batch.task
def draw_block(arguments: Mapping[str, Any]) -> str:
    """A worker's task: draw channels [start, stop) of a layer and write their pictures and the block's record."""
    settings = MicroscopeSettings.from_json(arguments["settings"])
    layer, (start, stop) = arguments["layer"], arguments["channels"]
    net = load_model(settings.model, weights=settings.weights)  # cached: once per worker process
    channels = list(range(start, stop))
    made = drawing.render_channels(net, layer, channels, settings)
    drawn, losses = made.pictures, made.activations
    pushes = drawing.class_push(net, layer, drawn[:: 1 + settings.samples], channels)
    own = block_settings(settings, layer)
    record = provenance.make(own, net, precision=precision.name_of(precision.at(net, settings.precision)))
    folder = Path(arguments["site"]) / site.layer_folder(layer)
    folder.mkdir(parents=True, exist_ok=True)
    per = 1 + settings.samples
    metadata = {provenance.KEY: record.to_text()}
    facts = {}
    for i, channel in enumerate(channels):
        for sample in range(per):
            files.remove_debris(folder / site.picture_name(channel, sample))  # a killed earlier try's temporary file
            images.save_image(
                imaging.to_pil(drawn[i * per + sample : i * per + sample + 1]),
                folder / site.picture_name(channel, sample),
                metadata=metadata,
            )
        top = []
        if pushes is not None and settings.top:
            values, indices = pushes[i].topk(min(settings.top, pushes.shape[1]))
            top = [[int(index), round(float(value), 4)] for value, index in zip(values, indices)]
        facts[str(channel)] = {"activation": round(losses[i * per], 4), "classes": top}
        for key, found in (("redrawn", made.redrawn), ("flat", made.flat)):  # samples, by number from 1
            marked = [index - i * per for index in found if i * per < index < (i + 1) * per]
            if marked:
                facts[str(channel)][key] = marked
    data = {"record": record.to_json(), "layer": layer, "channels": [start, stop], "facts": facts}
    files.write_file(folder / f"block-{start}.json", lambda handle: handle.write(json.dumps(data).encode()))
    return ""


@batch.task
def block_complete(item: batch.Item) -> bool:
    """A block is done when its record names the same drawing settings and every picture it lists exists."""
    data = json.loads(Path(item.output).read_text())
    settings = MicroscopeSettings.from_json(item.arguments["settings"])
    if provenance.Record.from_json(data["record"]).settings != block_settings(settings, item.arguments["layer"]):
        return False
    if data["channels"] != item.arguments["channels"]:  # part of this block was drawn (--channels): its own start
        return False
    folder = Path(item.output).parent
    return all(
        (folder / site.picture_name(int(channel), sample)).is_file()
        for channel in data["facts"]
        for sample in range(1 + settings.samples)
    )


# -- exemplars: sharded search, merged by the driver -------------------------------------------------------------


@batch.task
def search_shard(arguments: Mapping[str, Any]) -> str:
    """A worker's task: one shard of the exemplar folder, every channel of the layers; writes their top responses."""
    settings = MicroscopeSettings.from_json(arguments["settings"])
    number, count = arguments["shard"]
    net = load_model(settings.model, weights=settings.weights)
    side = settings.side or net.spec.resolution
    scan = folders.scan(settings.exemplar_folder, side, shard=(number, count))
    units = [(layer, channel) for layer in arguments["layers"] for channel in range(net.layer(layer).channels)]
    tops, grids, read = run_events(top_responses(net, scan, units, settings.exemplar_count))
    data = {
        "key": _shard_key(settings, arguments["layers"], scan.files),
        "side": side,
        "read": read,
        "skipped": [list(pair) for pair in scan.skipped],
        "grids": {layer: list(grid) for layer, grid in grids.items()},
        "units": {
            f"{layer}:{channel}": [
                [round(float(score), 6), scan.files[int(picture)], int(position)]
                for score, picture, position in zip(top.scores.tolist(), top.pictures.tolist(), top.positions.tolist())
            ]
            for (layer, channel), top in tops.items()
        },
    }
    output = Path(arguments["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    files.write_file(output, lambda handle: handle.write(json.dumps(data).encode()))
    return f"{read} pictures read" + (f", {len(scan.skipped)} skipped" if scan.skipped else "")


def _shard_key(settings: MicroscopeSettings, layers, names) -> dict:
    """What a shard's responses depend on: the network, the folder's pictures in the shard, how they are seen."""
    return {
        "model": settings.model,
        "weights": settings.weights,
        "folder": os.path.abspath(settings.exemplar_folder),
        "side": settings.side,
        "count": settings.exemplar_count,
        "layers": list(layers),
        "files": list(names),
    }


@batch.task
def shard_complete(item: batch.Item) -> bool:
    data = json.loads(Path(item.output).read_text())
    settings = MicroscopeSettings.from_json(item.arguments["settings"])
    number, count = item.arguments["shard"]
    names = [path.relative_to(settings.exemplar_folder).as_posix() for path in folders.picture_files(settings.exemplar_folder)]
    return data.get("key") == _shard_key(settings, item.arguments["layers"], names[number::count])


def merge_exemplars(plan: Plan) -> tuple[dict[str, list], dict]:
    """The shards' responses joined: each channel's `exemplar_count` strongest pictures over the whole folder
    (ties to the earlier picture, as one pass would give), and what was read and skipped."""
    settings = plan.settings
    order = {
        path.relative_to(settings.exemplar_folder).as_posix(): number
        for number, path in enumerate(folders.picture_files(settings.exemplar_folder))
    }
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
    best = {
        unit: sorted(entries, key=lambda e: (-e[0], order.get(e[1], len(order))))[: settings.exemplar_count]
        for unit, entries in joined.items()
    }
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
        square = imaging.centre_square(images.load_image(root / file, "picture"), side)
        for unit, rank, score, position in wanted[file]:
            layer, _, channel = unit.rpartition(":")
            grid = facts["grids"][layer]
            row, col = divmod(position, grid[1])
            box = folders.patch_box(row, col, tuple(grid), side, folders.patch_size(plan.strides[layer], side))
            relative = f"{site.layer_folder(layer)}/exemplars/{channel}-{rank + 1}.jpg"
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
    batch: batch.BatchResult = field(repr=False)  # an outcome per block: hundreds for a whole network
    channels: int  # channels drawn
    exemplars: dict  # what the exemplar search read and skipped (empty without a folder)


def microscope_iter(
    settings: MicroscopeSettings | None = None,
    output: str | os.PathLike = "microscope",
    *,
    engine: batch.Engine | None = None,
    threads: int | None = None,
    **fields,
) -> Run:
    """Draw a microscope into the folder `output`: events over all its work, the last with a MicroscopeResult.
    Work already done there with the same settings is kept (resume); `engine` runs the items (default: this
    machine's processes) with `threads` each (default: the engine's)."""
    settings = MicroscopeSettings.build(settings, fields)
    work = plan(settings, output)
    run = batch.run_batch(
        work.items,
        engine,
        threads=threads,
        summary=work.root / batch.SUMMARY,
        describe={"command": "microscope", "settings": settings.to_json()},
    )

    def events() -> Iterator[Event]:
        work.root.mkdir(parents=True, exist_ok=True)
        site.placeholder(work.root, work.model)  # marks the folder as a microscope's: a rerun continues it
        done = yield from nest(run, Stage("part", 1, 2, "drawing"), 0.0, 0.9)
        found, facts = {}, {}
        if work.shards:
            best, facts = merge_exemplars(work)
            found = yield from nest(cut_exemplars(work, best, facts), Stage("part", 2, 2, "exemplars"), 0.9, 0.08)
        drawn = site.write_site(work, [(o.name, o.message) for o in done.failures], found, facts)
        yield finish(MicroscopeResult(work.root, work, done, drawn, facts))

    return Run(events(), settings, None, None)


def microscope_job(job, *, model=None, device: str | None = None, describe=None, engine: batch.Engine | None = None) -> Run:
    """A microscope job: its settings drawn into the job's output folder on `engine`."""
    if job.output is None:
        raise SettingsError("output", "is required: name the folder for the site")
    return microscope_iter(job.settings, job.output, engine=engine)


def microscope(
    settings: MicroscopeSettings | None = None, output: str | os.PathLike = "microscope", **options
) -> MicroscopeResult:
    """Like `microscope_iter`, but returns the finished MicroscopeResult."""
    return microscope_iter(settings, output, **options).result()
