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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image, ImageDraw

from .. import provenance, render
from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish
from ..models import LoadedModel
from ..settings import ExemplarsSettings, parse_unit
from . import base, folder
from .visualize import font

Unit = tuple[str, int]  # (layer, channel)

SKIPPED_SHOWN = 10  # skipped files named one by one; the rest are counted
SHEET_TILE = 128  # px: a sheet shows the visualization and every patch at this side, whatever the layer's patch size
SHEET_GAP = 4
SHEET_CAPTION = 34  # two lines of 12 px text


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

    def __getitem__(self, unit: str | Unit) -> list[Exemplar]:
        """The exemplars of a unit, by (layer, channel) or "layer:channel"."""
        return self.units[parse_unit(unit) if isinstance(unit, str) else (unit[0], int(unit[1]))]


def parse_units(model: LoadedModel, units: str) -> list[Unit]:
    """'stage4.2:17,stage5.2:3' -> [(layer, channel), ...], each checked against the model before any work."""
    parsed = []
    for text in units.split(","):
        layer, index = parse_unit(text)
        info = model.layer(layer)  # an unknown name fails here, with the closest ones
        if info.stride is None:
            raise SettingsError("units", f"names {layer}, which is not a feature map (it has no positions to cut a patch "
                                         f"from); pick a layer such as {model.spec.default_layer}")
        if not 0 <= index < info.channels:
            raise SettingsError("units", f"names channel {index} of {layer}, which has channels 0-{info.channels - 1}")
        parsed.append((layer, index))
    return parsed


def exemplars_iter(path: str | os.PathLike, units: str | Sequence | None = None, settings: ExemplarsSettings | None = None, *,
                   model: str | LoadedModel | None = None, device: str | None = None, batch_size: int = folder.BATCH,
                   **fields) -> Run:
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
    scan = folder.scan(path, settings.side or net.spec.resolution)  # a missing or empty folder fails now
    record = provenance.make(settings, net)
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


def exemplars(path: str | os.PathLike, units: str | Sequence | None = None, settings: ExemplarsSettings | None = None,
              **options) -> ExemplarsResult:
    """Like `exemplars_iter`, but returns the finished `ExemplarsResult`."""
    return exemplars_iter(path, units, settings, **options).result()


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


def search(model: LoadedModel, scan: folder.Scan, units: Sequence[Unit], count: int,
           batch_size: int = folder.BATCH) -> Iterator[Event]:
    """One pass over the scan's pictures for all `units` at once, then their patches: events, the last with an
    ExemplarsResult (without settings or record). A folder without one readable picture is an error."""
    tops, grids, read = yield from top_responses(model, scan, units, count, batch_size, span=0.9)
    if not read:
        first, why = scan.skipped[0]
        which = "the only picture file" if len(scan.files) == 1 else f"none of the {len(scan.files)} picture files"
        raise DreamscopeError(f"{which} in {scan.root} could{' not' if len(scan.files) == 1 else ''} be read ({first}: {why}); "
                              "give a folder with readable pictures")
    found = yield from _cut(model, scan, units, tops, grids)
    yield finish(ExemplarsResult(scan.root, scan.side, found, read, list(scan.skipped)))


def top_responses(model: LoadedModel, scan: folder.Scan, units: Sequence[Unit], count: int, batch_size: int = folder.BATCH,
                  span: float = 1.0):
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
        for rank, (picture, position, score) in enumerate(zip(top.pictures.tolist(), top.positions.tolist(), top.scores.tolist())):
            wanted.setdefault(picture, []).append((unit, rank, position, score))
    found = {unit: [None] * len(tops[unit].scores) for unit in units}
    for number, picture in enumerate(sorted(wanted), start=1):
        square = scan.square(picture)
        for (layer, index), rank, position, score in wanted[picture]:
            grid = grids[layer]
            row, col = divmod(position, grid[1])
            box = folder.patch_box(row, col, grid, scan.side, folder.patch_size(model.layer(layer).stride, scan.side))
            found[(layer, index)][rank] = Exemplar(scan.files[picture], row, col, score, box, square.crop(box))
        yield Event((Stage("picture", number, len(wanted)),), 0.9 + 0.1 * number / len(wanted))
    return found


def skipped_notes(skipped: Sequence[tuple[str, str]], shown: int = SKIPPED_SHOWN) -> list[str]:
    """A note per skipped file (its path and why), the first `shown` of them, then how many more."""
    notes = [f"skipped {name}: {why}" for name, why in skipped[:shown]]
    if len(skipped) > shown:
        notes.append(f"and {len(skipped) - shown} more files that could not be read were skipped")
    return notes


# -- the sheet ---------------------------------------------------------------------------------------------------


def sheet(result: ExemplarsResult, visualizations: Sequence[Image.Image] | None = None, tile: int = SHEET_TILE) -> Image.Image:
    """A row per unit: its feature visualization (when given, one per unit in order), then its exemplars, each
    captioned (the unit; each patch's file name and activation)."""
    columns = (1 if visualizations else 0) + max(len(found) for found in result.units.values())
    columns = max(columns, 1)
    cell = tile + SHEET_CAPTION
    width = columns * tile + (columns - 1) * SHEET_GAP
    canvas = Image.new("RGB", (width, len(result.units) * cell + (len(result.units) - 1) * SHEET_GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for row, ((layer, index), found) in enumerate(result.units.items()):
        top = row * (cell + SHEET_GAP)
        tiles = [(visualizations[row], f"{layer}:{index}", "feature visualization")] if visualizations else []
        tiles += [(e.patch, Path(e.file).name, f"activation {e.activation:.3g}") for e in found]
        for column, (picture, title, detail) in enumerate(tiles):
            left = column * (tile + SHEET_GAP)
            canvas.paste(picture.resize((tile, tile), Image.LANCZOS), (left, top))
            draw.text((left + 2, top + tile + 3), _fit(draw, title, tile - 4), fill=(40, 40, 40), font=font(12))
            draw.text((left + 2, top + tile + 18), _fit(draw, detail, tile - 4), fill=(110, 110, 110), font=font(12))
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """`text`, shortened in the middle until it fits `width` px (a file name keeps its ending). Three dots, not an
    ellipsis character: Pillow's fallback bitmap font has Latin-1 only."""
    if draw.textlength(text, font=font(12)) <= width:
        return text
    head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    while (head or tail) and draw.textlength(f"{head}...{tail}", font=font(12)) > width:
        head, tail = (head[:-1], tail) if len(head) >= len(tail) else (head, tail[1:])
    return f"{head}...{tail}"
