"""The activation atlas as work: its collection in shards on any engine (batch.py) or in this process, joined, laid
out and drawn (`recipes/atlas.py`), then written as a page (`pages/atlas.py`); and one shard's collection alone
(`atlas FOLDER --shard I/N`), for collections made on several machines."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish, nest
from ..io import files, folders, provenance
from ..pages.atlas import check_atlas_folder
from ..recipes import atlas, base
from ..recipes.atlas import Collection
from ..settings import AtlasSettings
from . import batch, catalogue


def default_name(settings: AtlasSettings, inputs) -> str:
    """NAME-atlas/ in the current folder, NAME being the pictures' folder (the collections'); a class atlas or a
    comparison adds its classes."""
    collections = inputs.get("collections")
    name = Path(Collection.load(collections[0]).root).name if collections else Path(inputs["folder"]).resolve().name
    classes = settings.class_name or (settings.compare or "").replace(",", "-vs-")
    suffix = "-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in classes) if classes else ""
    return f"{name or 'pictures'}-atlas{suffix}"


def atlas_job(job, *, model=None, device: str | None = None, describe=None, engine: batch.Engine | None = None) -> Run:
    """An atlas of a folder's pictures (collected here, or on `engine` in shards kept beside the atlas until it is
    written) or of collections made before, written as a page folder; the last event's result is the folder."""
    recipe = catalogue.get("atlas")
    folder, collections = job.inputs.get("folder"), job.inputs.get("collections")
    if bool(folder) == bool(collections):
        raise SettingsError("folder", "or collections: give one folder of pictures, or one or more collections (.npz), not both")
    if engine is not None and collections:
        raise DreamscopeError("these collections are already made: an engine runs the collection of a folder's pictures")
    collection = Collection.concatenate([Collection.load(path) for path in collections]) if collections else None
    settings = job.settings
    if collection is not None:  # what the collection was made with, unless the settings say otherwise
        defaults = AtlasSettings.defaults()
        settings = settings.replace(
            **{name: getattr(collection, name) for name in ("model", "layer") if getattr(settings, name) == defaults[name]}
        )
    check_atlas_folder(job.output)  # before the work, not after it
    settings, net = base.prepare(AtlasSettings, settings, {}, model, device)
    job = type(job)(settings, job.output, job.inputs, job.names)
    atlas.check(settings, net)
    atlas.check_layout_available()
    if collection is not None:  # a min_count no cell can reach, refused before the collection and the layout
        atlas.check_counts(settings, vectors=len(collection))
    else:
        pictures = len(folders.picture_files(folder))
        if pictures:  # none: the collection says so, naming the folder
            atlas.check_counts(settings, pictures=pictures)
    write = catalogue.function(recipe.output.write)

    def events() -> Iterator[Event]:
        made, parts = collection, None
        if made is None and engine is not None:
            made, parts = yield from _collected(Path(folder), settings, job.output, engine)
        run = atlas.atlas_iter(None if made is not None else folder, settings, collection=made, model=net)
        result = yield from nest(run)  # after a collection made elsewhere, its events start where that one's share ends
        write(
            result,
            job.output,
            metadata={provenance.KEY: result.record.to_text()},
            source="pictures",
            command=describe(job) if describe else None,
        )
        if parts is not None:
            shutil.rmtree(parts, ignore_errors=True)  # the collection is in the atlas now
        for note in skipped_notes(result.collection.skipped, "(reasons in the page)"):
            yield Event(fraction=1.0, note=note)
        yield finish(
            job.output,
            note=f"{result.kind} of {len(result.cells)} cells from {len(result.selected):,} vectors of "
            f"{len(result.collection.files) - len(result.collection.skipped):,} pictures",
        )

    return Run(events(), settings, None, net)


def _collected(folder: Path, settings: AtlasSettings, output: str, engine: batch.Engine):
    """An atlas's collection as batch work, in shards kept beside the atlas until it is written (a rerun after an
    interruption keeps the shards already made); events over the collection's share of the atlas's progress."""
    parts = Path(output).resolve().parent / f".{Path(output).resolve().name}.collection"
    items = collection_items(folder, settings, parts)
    run = batch.run_batch(
        items,
        engine,
        summary=parts / batch.SUMMARY,
        describe={"command": "atlas collection", "folder": str(folder.resolve()), "settings": settings.to_json()},
    )
    result = yield from nest(run, Stage("collect", 1, 4, "in shards"), 0.0, atlas.COLLECT_SHARE)
    if result.failures:
        first = result.failures[0]
        raise DreamscopeError(
            f"{len(result.failures)} of {len(items)} collection shards failed ({first.name}: {first.message}); "
            f"run the same command again to retry them (the others are kept in {files.shown(parts)})"
        )
    return join_parts(items), parts


def collection_items(folder: str | os.PathLike, settings: AtlasSettings, parts: str | os.PathLike) -> list[batch.Item]:
    """The collection of `folder` as batch items: shard i of n writes `parts/part-I-of-N.npz`; joined with
    `Collection.concatenate` (`join_parts`), they are the collection of the whole folder."""
    count = max(1, -(-len(folders.picture_files(folder)) // batch.SHARD_PICTURES))
    payload = {"settings": settings.to_json(), "folder": os.path.abspath(folder)}
    outputs = [str(Path(parts, f"part-{number}-of-{count}.npz").resolve()) for number in range(count)]
    return [
        batch.Item(
            f"pictures, part {number + 1} of {count}",
            batch.task_name(collect_shard),
            {**payload, "shard": [number, count], "output": output},
            output,
            batch.task_name(shard_complete),
        )
        for number, output in enumerate(outputs)
    ]


@batch.task
def collect_shard(arguments) -> str:
    """A worker's task: one shard's collection, saved."""
    settings = AtlasSettings.from_json(arguments["settings"])
    found = atlas.collect_iter(arguments["folder"], settings=settings, shard=tuple(arguments["shard"])).result()
    Path(arguments["output"]).parent.mkdir(parents=True, exist_ok=True)
    found.save(arguments["output"])
    return f"{len(found):,} vectors"


@batch.task
def shard_complete(item) -> bool:
    """A saved shard is complete when it holds the same pictures, seen the same way, by the same network and layer."""
    part = Collection.load(item.output)
    settings = AtlasSettings.from_json(item.arguments["settings"])
    number, count = item.arguments["shard"]
    names = [p.relative_to(item.arguments["folder"]).as_posix() for p in folders.picture_files(item.arguments["folder"])]
    return (
        part.files == names[number::count]
        and part.seed == settings.seed
        and settings.layer in (None, part.layer)
        and settings.side in (None, part.side)
        and part.root == item.arguments["folder"]
    )


def join_parts(items) -> Collection:
    """The shards' collections as one, in shard order (the same vectors as one pass over the folder)."""
    return Collection.concatenate([Collection.load(item.output) for item in items])


def shard_job(
    folder: str | os.PathLike,
    settings: AtlasSettings,
    shard: tuple[int, int],
    output: str | None = None,
    *,
    device: str | None = None,
) -> Run:
    """Collect only shard `shard` (i, n) of the folder's pictures and save it as a .npz (default:
    FOLDER-shard-I-of-N.npz in the current folder): N such jobs, on any machines, give the folder's whole collection.
    The last event's result is the file."""
    number, count = shard
    path = Path(output or f"{Path(folder).resolve().name}-shard-{number}-of-{count}.npz")
    if path.suffix.lower() != ".npz":
        raise SettingsError("output", f"names the .npz file a shard's collection is written to, got {files.shown(path)}")
    files.check_folder(path.parent)
    run = atlas.collect_iter(folder, settings=settings, shard=shard, device=device)

    def events() -> Iterator[Event]:
        collection = yield from nest(run, Stage("shard", number + 1, count), 0.0, 1.0)
        collection.save(path)
        for note in skipped_notes(collection.skipped):
            yield Event(fraction=1.0, note=note)
        yield finish(
            str(path),
            note=f"{len(collection):,} vectors of {len(collection.files) - len(collection.skipped):,} "
            f"pictures, shard {number} of {count}",
        )

    return Run(events(), run.settings, None, run.model)


def skipped_notes(skipped, where: str = "") -> list[str]:
    """One note naming the files that could not be read (the first ten, then how many more)."""
    if not skipped:
        return []
    names = ", ".join(files.shown(name) for name, _ in skipped[:10]) + (
        f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    )
    return [f"skipped {len(skipped)} file(s) that could not be read: {names}" + (f" {where}" if where else "")]
