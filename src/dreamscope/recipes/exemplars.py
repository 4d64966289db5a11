"""Natural exemplars: the pictures of a folder that excite a channel most, and the patch of each where it fires.

A feature visualization shows what a channel looks for in a picture grown from noise; its exemplars show what
it responds to in real pictures. Every picture of the folder is seen as the network is evaluated (its centre
square at the model's resolution, see `folder.py`) and goes through the network once, in batches, for all the
channels asked at once. A picture's score for a channel is the channel's activation at its strongest position
there, so a channel's k exemplars come from k different pictures. Each channel keeps only its running top k,
so memory does not grow with the folder; the patches are cut afterwards, re-reading only the pictures that
made a top k, each once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish, nest
from ..fields import parse_unit
from ..io import folders, provenance
from ..models import LoadedModel, precision
from ..optvis import objectives, render
from ..settings import ExemplarsSettings
from . import base
from .visualize import visualize_iter

Unit = tuple[str, int]  # (layer, channel)
MAX_SHEET_UNITS = 64  # rows of one exemplars sheet: the channels' pictures are one batched visualization

SKIPPED_SHOWN = 10  # skipped files named one by one; the rest are counted


@dataclass(frozen=True)
class Exemplar:
    """One picture's strongest response of a channel: where (a position of the layer's grid), how strongly, and
    the patch of the picture around it."""

    file: str  # path relative to the folder
    row: int
    col: int
    activation: float  # the channel's activation at (row, col)
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the patch in the picture's centre square
    patch: Image.Image


@dataclass(frozen=True)
class ExemplarsResult:
    """The exemplars of each unit, strongest first, and what was read. `units` keeps the order asked."""

    folder: Path
    side: int  # the pictures' centre squares are this many px across
    units: dict[Unit, list[Exemplar]]
    read: int  # pictures read
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why) of files that could not be read
    settings: ExemplarsSettings | None = None
    record: provenance.Record | None = None
    visualizations: list[Image.Image] | None = None  # each unit's feature visualization, in order (`sheet_iter`)

    def __getitem__(self, unit: str | Unit) -> list[Exemplar]:
        """The exemplars of a unit, by (layer, channel) or "layer:channel"."""
        return self.units[parse_unit(unit) if isinstance(unit, str) else (unit[0], int(unit[1]))]


def parse_units(model: LoadedModel, units: str) -> list[Unit]:
    """'stage4.2:17,stage5.2:3' -> [(layer, channel), ...], each checked against the model before any work."""
    parsed = []
    for text in units.split(","):
        layer, index = parse_unit(text)
        info = base.known_layer(model, "units", layer, pseudo=True)  # with the closest names; "logits" is not a map
        if info.stride is None:
            raise SettingsError(
                "units",
                f"names {layer}, which is not a feature map (it has no positions to cut a patch "
                f"from); pick a layer such as {model.spec.default_layer}",
            )
        if not 0 <= index < info.channels:
            raise SettingsError("units", f"names channel {index} of {layer}, which has channels 0-{info.channels - 1}")
        parsed.append((layer, index))
    return parsed


def check(settings: ExemplarsSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, units the model does not have, and more than one sheet shows."""
    units = parse_units(model, settings.units)
    if len(units) > MAX_SHEET_UNITS:
        raise SettingsError("units", f"names {len(units)} channels; one sheet shows at most {MAX_SHEET_UNITS}")


def exemplars_iter(
    path: str | os.PathLike,
    units: str | Sequence | None = None,
    settings: ExemplarsSettings | None = None,
    *,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    batch_size: int = folders.BATCH,
    **fields,
) -> Run:
    """Find the natural exemplars of `units` ("layer:channel", comma-separated, or (layer, channel) pairs) in the
    pictures under the folder `path`: a Run of events; the last has the ExemplarsResult.

    `count` exemplars per unit; the pictures are seen at `side` px (default: the model's resolution). The
    units, the folder and the model are checked before any work. `batch_size` pictures go through the network
    at a time (the results do not depend on it, up to float rounding).
    """
    if units is not None:
        fields = {**fields, "units": units}
    settings, net = base.prepare(ExemplarsSettings, settings, fields, model, device)
    chosen = parse_units(net, settings.units)
    scan = folders.scan(path, settings.side or net.spec.resolution)  # a missing or empty folder fails now
    record = provenance.make(settings, net, precision=precision.name_of(precision.at(net, settings.precision)))
    return Run(_exemplars(net, scan, chosen, settings, record, batch_size), settings, record, net)


def _exemplars(net, scan, chosen, settings, record, batch_size) -> Iterator[Event]:
    found = None
    for event in search(net, scan, chosen, settings.count, batch_size):
        if event.done:
            found = event.result
        else:
            yield event
    for note in skipped_notes(found.skipped):
        yield Event(fraction=1.0, note=note)  # at the end of the bar: a note must not move it back
    yield finish(dataclasses.replace(found, settings=settings, record=record))


def exemplars(
    path: str | os.PathLike, units: str | Sequence | None = None, settings: ExemplarsSettings | None = None, **options
) -> ExemplarsResult:
    """Like `exemplars_iter`, but returns the finished `ExemplarsResult`."""
    return exemplars_iter(path, units, settings, **options).result()


def sheet_iter(
    path: str | os.PathLike,
    settings: ExemplarsSettings | None = None,
    *,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """What an exemplars sheet shows: the units' natural exemplars in the pictures under `path`, then each unit's
    feature visualization (`vis_size`, `vis_steps`), all in one batch. The last event's result is the
    ExemplarsResult with its `visualizations`; its note says how many pictures were read and skipped."""
    settings, net = base.prepare(ExemplarsSettings, settings, fields, model, device)
    check(settings, net)
    run = exemplars_iter(path, settings=settings, model=net)

    def events() -> Iterator[Event]:
        found = yield from nest(run, Stage("part", 1, 2, "exemplars"), 0.0, 0.5)
        drawn = yield from nest(_unit_pictures(net, settings, list(found.units)), Stage("part", 2, 2, "visualization"), 0.5, 0.5)
        yield finish(
            dataclasses.replace(found, visualizations=drawn),
            note=f"{_count(found.read, 'picture')} read, {len(found.skipped)} skipped",
        )

    return Run(events(), run.settings, run.record, net)


def _unit_pictures(net: LoadedModel, settings: ExemplarsSettings, units: Sequence[Unit]) -> Run:
    """The units' feature visualizations as one batched optimization: picture i maximizes unit i."""
    objective = sum(
        (objectives.channel(layer, index, sample=i) for i, (layer, index) in enumerate(units)), objectives.Objective(terms=())
    )
    return visualize_iter(
        objective,
        model=net,
        size=settings.vis_size,
        steps=settings.vis_steps,
        seed=settings.seed,
        samples=len(units),
        precision=settings.precision,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -- the search --------------------------------------------------------------------------------------------------


class _TopK:
    """The k best (score, picture, position) of one unit so far. Ties go to the earlier picture, so the result
    does not depend on how the pictures were batched."""

    def __init__(self, k: int):
        self.k = k
        self.scores = torch.empty(0)
        self.pictures = torch.empty(0, dtype=torch.long)
        self.positions = torch.empty(0, dtype=torch.long)

    def add(self, scores: torch.Tensor, pictures: torch.Tensor, positions: torch.Tensor) -> None:
        scores = torch.cat([self.scores, torch.nan_to_num(scores, nan=float("-inf"))])
        keep = torch.sort(scores, descending=True, stable=True).indices[: self.k]  # stable: earlier pictures first
        self.scores = scores[keep]
        self.pictures = torch.cat([self.pictures, pictures])[keep]
        self.positions = torch.cat([self.positions, positions])[keep]


def search(
    model: LoadedModel, scan: folders.Scan, units: Sequence[Unit], count: int, batch_size: int = folders.BATCH
) -> Iterator[Event]:
    """One pass over the scan's pictures for all `units` at once, then their patches: events, the last with an
    ExemplarsResult (without settings or record). A folder without one readable picture is an error."""
    tops, grids, read = yield from top_responses(model, scan, units, count, batch_size, span=0.9)
    if not read:
        first, why = scan.skipped[0]
        which = "the only picture file" if len(scan.files) == 1 else f"none of the {len(scan.files)} picture files"
        raise DreamscopeError(
            f"{which} in {scan.root} could{' not' if len(scan.files) == 1 else ''} be read ({first}: {why}); "
            "give a folder with readable pictures"
        )
    found = yield from _cut(model, scan, units, tops, grids)
    yield finish(ExemplarsResult(scan.root, scan.side, found, read, list(scan.skipped)))


def top_responses(
    model: LoadedModel, scan: folders.Scan, units: Sequence[Unit], count: int, batch_size: int = folders.BATCH, span: float = 1.0
):
    """The pass itself: yields progress (fractions up to `span`) and returns ({unit: _TopK over indices of
    scan.files}, {layer: its grid (rows, cols)}, pictures read). A shard with no readable picture reads 0."""
    layers = list(dict.fromkeys(layer for layer, _ in units))
    tops = {unit: _TopK(count) for unit in units}
    grids: dict[str, tuple[int, int]] = {}
    read, batches = 0, -(-len(scan.files) // batch_size)
    for indices, x in scan.batches(batch_size):
        x = x.to(model.device)
        with torch.no_grad():
            acts = render.activations(model, layers, x)  # one forward pass, stopping at the deepest layer
        pictures = torch.tensor(indices)
        for layer in layers:
            grids[layer] = tuple(acts[layer].shape[-2:])
        for layer, index in units:
            channel = acts[layer][:, index].flatten(1).float().cpu()
            positions = channel.argmax(dim=1)  # the first strongest position of each picture
            tops[(layer, index)].add(channel.gather(1, positions[:, None])[:, 0], pictures, positions)
        read += len(indices)
        number = indices[-1] // batch_size + 1
        yield Event((Stage("batch", number, batches),), span * (indices[-1] + 1) / len(scan.files), picture=x[:1])
    return tops, grids, read


def _cut(model, scan, units, tops, grids) -> Iterator[Event]:
    """The patches of every unit's top pictures, re-reading each of those pictures once."""
    wanted: dict[int, list] = {}  # picture -> (unit, rank, position, score)
    for unit, top in tops.items():
        for rank, (picture, position, score) in enumerate(
            zip(top.pictures.tolist(), top.positions.tolist(), top.scores.tolist())
        ):
            wanted.setdefault(picture, []).append((unit, rank, position, score))
    found = {unit: [None] * len(tops[unit].scores) for unit in units}
    for number, picture in enumerate(sorted(wanted), start=1):
        square = scan.square(picture)
        for (layer, index), rank, position, score in wanted[picture]:
            grid = grids[layer]
            row, col = divmod(position, grid[1])
            box = folders.patch_box(row, col, grid, scan.side, folders.patch_size(model.layer(layer).stride, scan.side))
            found[(layer, index)][rank] = Exemplar(scan.files[picture], row, col, score, box, square.crop(box))
        yield Event((Stage("picture", number, len(wanted)),), 0.9 + 0.1 * number / len(wanted))
    return found


def skipped_notes(skipped: Sequence[tuple[str, str]], shown: int = SKIPPED_SHOWN) -> list[str]:
    """A note per skipped file (its path and why), the first `shown` of them, then how many more."""
    notes = [f"skipped {name}: {why}" for name, why in skipped[:shown]]
    if len(skipped) > shown:
        notes.append(f"and {len(skipped) - shown} more files that could not be read were skipped")
    return notes


# Names that lived here before the package was split into layers (0.2): the sheet went to pages/, a layer above this
# one, which it may not import, so an old spelling says where.
_MOVED = {
    "sheet": "dreamscope.pages.sheets.exemplar_sheet",
    "SHEET_TILE": "dreamscope.pages.sheets.EXEMPLAR_TILE",
    "SHEET_GAP": "dreamscope.pages.sheets.EXEMPLAR_GAP",
    "SHEET_CAPTION": "dreamscope.pages.sheets.EXEMPLAR_CAPTION",
}


def __getattr__(name: str):
    where = f": it moved to {_MOVED[name]}" if name in _MOVED else ""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{where}")
