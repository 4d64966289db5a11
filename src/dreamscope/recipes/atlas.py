"""Activation atlases (Carter, Armstrong, Schubert, Johnson and Olah, Distill 2019): what a layer represents
over many real pictures, laid out so that similar features sit together.

Four steps, each a plain function returning data, so a notebook can redraw any of them:

1. `collect`: every picture of a folder through the network (no gradients to the picture), `positions`
   activation vectors kept per picture at random places (seeded by the picture's path, so shards and
   batches give the same vectors), each with its attribution to every class: the class evidence at its place
   (activation x gradient at the last layer's position that covers it, for all classes in one forward-mode
   pass; see `_sample`). Memory holds only the kept vectors.
2. `layout`: UMAP (cosine distance) puts the vectors in 2-D.
3. `bin_cells`: an N x N grid over the layout; each cell with enough vectors gets their mean.
4. `render_icons`: each cell's mean drawn by feature visualization: a picture whose activations point along
   the mean (`objectives.direction` with a cosine term), all cells of a chunk in one batch.

A class atlas keeps only the vectors that push hardest toward a class; a comparison lays out two classes'
vectors together and marks the cells whose features favour one class over the other (the "snorkel or scuba
diver" map that led the paper to its patch attack, `recipes/patch.py`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from PIL import Image

from ..errors import DreamscopeError, SettingsError
from ..events import Event, Run, Stage, finish, nest
from ..io import files, folders, provenance
from ..models import LoadedModel, precision
from ..models.spec import LOGITS
from ..optvis import objectives, params, render, transforms
from ..settings import AtlasSettings
from . import base

TOP_CLASSES = 5  # classes listed per cell
ICON_BATCH = 24  # icons optimized together: one batch keeps both cores busy without holding many pictures
PATCH_PX = 64  # exemplar thumbnails' side
FORMAT = 1  # version of a saved collection's layout


# -- 1. collection ---------------------------------------------------------------------------------------------


@dataclass
class Collection:
    """Activation vectors from a folder of pictures, with where each came from and what it pushes toward."""

    model: str
    layer: str
    side: int  # pictures were seen as side x side centre squares
    grid: tuple[int, int]  # the layer's positions in such a square (rows, cols)
    seed: int
    root: str  # the folder the paths in `files` are relative to
    files: list[str]
    vectors: np.ndarray  # (N, channels) float32
    picture: np.ndarray  # (N,) index into files
    position: np.ndarray  # (N, 2) row, col in the layer's grid
    attributions: np.ndarray | None = None  # (N, classes) float16; None: the model has no classifier
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    def __len__(self) -> int:
        return len(self.vectors)

    def save(self, path: str | os.PathLike) -> Path:
        """One .npz file (no pickled objects): a shard of a large collection, or a collection to lay out again."""
        meta = np.array(
            [str(FORMAT), self.model, self.layer, str(self.side), f"{self.grid[0]},{self.grid[1]}", str(self.seed), self.root]
        )
        arrays = dict(
            meta=meta,
            files=np.array(self.files, dtype=str),
            vectors=self.vectors,
            picture=self.picture,
            position=self.position,
            skipped=np.array(self.skipped, dtype=str).reshape(-1, 2),
        )
        if self.attributions is not None:
            arrays["attributions"] = self.attributions
        path = Path(path)
        return files.write_file(path, lambda stream: np.savez_compressed(stream, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Collection:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = [str(v) for v in data["meta"]]
                if meta[0] != str(FORMAT):
                    raise DreamscopeError(
                        f"{path} is a collection of format {meta[0]}; this dreamscope reads format {FORMAT}: collect again"
                    )
                rows, cols = (int(v) for v in meta[4].split(","))
                return cls(
                    meta[1],
                    meta[2],
                    int(meta[3]),
                    (rows, cols),
                    int(meta[5]),
                    meta[6],
                    [str(f) for f in data["files"]],
                    data["vectors"],
                    data["picture"],
                    data["position"],
                    data.get("attributions", None),
                    [(str(a), str(b)) for a, b in data["skipped"]],
                )
        except (OSError, KeyError, ValueError, IndexError) as exc:
            raise DreamscopeError(
                f"cannot read collection {path} ({files.reason(exc) if isinstance(exc, OSError) else exc}); collect it again"
            ) from None

    @classmethod
    def concatenate(cls, parts: Sequence[Collection]) -> Collection:
        """Shards of one folder (or several folders' collections) as one collection, in the folder's order (files
        sorted by relative path, as a whole folder is read): shards given in any order join into the collection
        of the whole folder, row for row, so its layout is the whole folder's too."""
        if not parts:
            raise DreamscopeError("no collections to join")
        first = parts[0]
        for part in parts[1:]:
            if (part.model, part.layer, part.side) != (first.model, first.layer, first.side):
                raise DreamscopeError(
                    f"cannot join a collection of {part.model} {part.layer} at {part.side} px with one of "
                    f"{first.model} {first.layer} at {first.side} px"
                )
        files, pictures = [], []
        for part in parts:
            root = Path(part.root)
            pictures.append(part.picture + len(files))
            files += [os.path.relpath(root / name, first.root) if part.root != first.root else name for name in part.files]
        attributions = None if any(p.attributions is None for p in parts) else np.concatenate([p.attributions for p in parts])
        order = sorted(range(len(files)), key=files.__getitem__)  # shard i holds every n-th file from the i-th
        rank = np.empty(len(files), dtype=np.int64)
        rank[order] = np.arange(len(files))
        picture = rank[np.concatenate(pictures)]
        rows = np.argsort(picture, kind="stable")  # a picture's rows keep the order they were drawn in
        return cls(
            first.model,
            first.layer,
            first.side,
            first.grid,
            first.seed,
            first.root,
            [files[i] for i in order],
            np.concatenate([p.vectors for p in parts])[rows],
            picture[rows].astype(first.picture.dtype),
            np.concatenate([p.position for p in parts])[rows],
            None if attributions is None else attributions[rows],
            sorted(s for p in parts for s in p.skipped),
        )


def collect_iter(
    folder,
    layer: str | None = None,
    settings: AtlasSettings | None = None,
    *,
    shard: tuple[int, int] | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Collect `positions` activation vectors per picture of `folder` (a path, or a list of picture files) at
    `layer` (default: the model's default layer); the atlas settings give positions, seed, side, model and
    weights. `shard` (i, n) reads only every n-th picture from the i-th: n such jobs, joined with
    `Collection.concatenate`, give exactly the collection of the whole folder."""
    if layer is not None:
        fields["layer"] = layer
    settings, net = base.prepare(AtlasSettings, settings, fields, model, device)
    layer = settings.layer or net.spec.default_layer
    base.known_layer(net, "layer", layer)
    scan = folders.scan(folder, settings.side or net.spec.resolution, shard)
    return Run(_collect(net, layer, scan, settings.positions, settings.seed), settings, None, net)


def _collect(net: LoadedModel, layer: str, scan: folders.Scan, positions: int, seed: int) -> Iterator[Event]:
    grid = _layer_grid(net, layer, scan.side)
    vectors, attributions, pictures, places = [], [], [], []
    done = 0
    for indices, x in scan.batches():
        picks = torch.stack([_positions(seed, scan.files[i], grid, positions) for i in indices])
        # Every batch has the same shape, so a picture's vectors do not depend on which pictures share its batch
        # (oneDNN computes a batch of one another way): shards of a folder give the whole folder's bits.
        spare = folders.BATCH - len(indices)
        if spare > 0:
            x = torch.cat([x, x.new_zeros(spare, *x.shape[1:])])
            picks = torch.cat([picks, picks[-1:].expand(spare, -1)])
        found, pushed = _sample(net, layer, x.to(net.device), picks, grid)
        kept = len(indices) * picks.shape[1]
        found, pushed = found[:kept], None if pushed is None else pushed[:kept]
        picks = picks[: len(indices)]
        vectors.append(found.numpy())
        if pushed is not None:
            attributions.append(pushed.to(torch.float16).numpy())
        pictures.append(np.repeat(np.array(indices, dtype=np.int32), picks.shape[1]))
        places.append(np.stack([picks.flatten() // grid[1], picks.flatten() % grid[1]], axis=1).astype(np.int16))
        done = indices[-1] + 1
        yield Event((Stage("picture", done, len(scan.files)),), done / len(scan.files))
    if not vectors:
        raise DreamscopeError(
            f"none of the {len(scan.files)} pictures in {scan.root} could be read "
            f"(first: {scan.skipped[0][0]}: {scan.skipped[0][1]})"
        )
    yield finish(
        Collection(
            net.name,
            layer,
            scan.side,
            grid,
            seed,
            str(scan.root),
            scan.files,
            np.concatenate(vectors),
            np.concatenate(pictures),
            np.concatenate(places),
            np.concatenate(attributions) if attributions else None,
            list(scan.skipped),
        )
    )


def collect(folder, layer: str | None = None, **options) -> Collection:
    """Like `collect_iter`, but returns the finished Collection."""
    return collect_iter(folder, layer, **options).result()


def _layer_grid(net: LoadedModel, layer: str, side: int) -> tuple[int, int]:
    with torch.no_grad():
        shape = render.activations(net, [layer], torch.zeros(1, 3, side, side, device=net.device))[layer].shape
    return int(shape[-2]), int(shape[-1])


def _positions(seed: int, name: str, grid: tuple[int, int], count: int) -> torch.Tensor:
    """`count` distinct positions (flat indices) for one picture, away from the border where the grid allows
    (zero padding makes border activations unlike any inside a picture). Seeded by the seed and the picture's
    path only, so the same picture gets the same positions in any batch or shard."""
    rows, cols = grid
    margin_y, margin_x = int(rows >= 5), int(cols >= 5)
    inner = torch.tensor([r * cols + c for r in range(margin_y, rows - margin_y) for c in range(margin_x, cols - margin_x)])
    generator = base.generator_for(seed, name)
    return inner[torch.randperm(len(inner), generator=generator)[: min(count, len(inner))]]


_EXPANDS: dict[tuple[int, str], bool] = {}  # (network, layer) -> whether the rest of the network takes a bigger batch


def evidence_layer(net: LoadedModel) -> str:
    """The layer whose positions carry each place's class evidence: the deepest one. Where the logits are a linear
    function of its positions' mean (global average pooling, then a linear classifier, as in EfficientNet and
    GoogLeNet), a position's share of every logit is exact, and the shares add up to the logits."""
    return list(net.layers)[-1]


def _sample(net: LoadedModel, layer: str, x: torch.Tensor, picks: torch.Tensor, grid: tuple[int, int]):
    """The activation vectors at `picks` (B, K flat positions of `layer`'s grid) and, with a classifier, each
    vector's attribution to every class (B*K, classes): the class evidence at its place, that is the derivative
    of the logits along the evidence layer's activation at the position covering it (activation x gradient).

    At the layer itself (what the atlas paper did) this says little for a single vector of EfficientNet-Lite0's
    stage5.2: a vector's own photo's class was among its 5 top classes for 8.6% of vectors of 200 sample photos,
    against 81% for the evidence at its place (docs/benchmarks.md), because one position's vector hardly moves
    the logits through the layers after it. Forward-mode: the layers after the evidence layer run once on K
    copies of each picture's activation there, copy k carrying position k as its tangent, so all classes come
    from one pass; where that layer is not all the rest of the network reads, the copies are made of the picture."""
    if net.spec.logits_module is None:
        with torch.no_grad():
            flat = render.activations(net, [layer], x)[layer].flatten(2)
        return _gather(flat, picks).cpu(), None
    deepest = evidence_layer(net)
    key = (id(net.net), deepest)
    if _EXPANDS.get(key, True):
        try:
            found = _forward_tangents(net, layer, deepest, x, picks, grid, expand=True)
            _EXPANDS[key] = True
            return found
        except RuntimeError:
            if key in _EXPANDS:
                raise
            _EXPANDS[key] = False
    return _forward_tangents(net, layer, deepest, x.repeat_interleave(picks.shape[1], 0), picks, grid, expand=False)


def _gather(flat: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """flat (B, C, HW), picks (B, K) -> vectors (B*K, C)."""
    return (
        flat.gather(2, picks.to(flat.device).unsqueeze(1).expand(-1, flat.shape[1], -1))
        .transpose(1, 2)
        .reshape(-1, flat.shape[1])
    )


def _covering(picks: torch.Tensor, grid: tuple[int, int], rows: int, cols: int) -> torch.Tensor:
    """Positions of a `grid` (rows, cols) mapped to the position of a coarser rows x cols grid that covers them."""
    return (picks // grid[1]) * rows // grid[0] * cols + (picks % grid[1]) * cols // grid[1]


def _forward_tangents(net, layer, deepest, x, picks, grid, expand: bool):
    count = picks.shape[1]
    taken = {}

    def with_tangents(output):
        flat = output.flatten(2)
        places = _covering(picks, grid, *output.shape[-2:])
        if layer == deepest:
            taken[layer] = _gather(flat if expand else flat[::count], picks)
        if expand:
            found = _gather(flat, places)
            flat = flat.repeat_interleave(count, 0)
        else:  # the batch is already K copies of each picture
            found = _gather(flat[::count], places)
        where = places.to(flat.device).reshape(-1, 1, 1).expand(-1, flat.shape[1], 1)
        tangent = torch.zeros_like(flat).scatter_(2, where, found.unsqueeze(2))
        return fwAD.make_dual(flat.view(-1, *output.shape[1:]), tangent.view(-1, *output.shape[1:]))

    wanted = [LOGITS] if layer == deepest else [layer, LOGITS]
    with torch.no_grad(), fwAD.dual_level():
        acts = render.activations(net, wanted, x, replace={deepest: with_tangents})
        pushed = fwAD.unpack_dual(acts[LOGITS]).tangent
    if layer != deepest:
        flat = acts[layer].flatten(2)
        taken[layer] = _gather(flat if expand else flat[::count], picks)
    return taken[layer].cpu(), pushed.float().cpu()


# -- 2. layout and 3. cells ------------------------------------------------------------------------------------


def layout(vectors: np.ndarray, seed: int = 0, neighbours: int = 15, min_dist: float = 0.01) -> np.ndarray:
    """UMAP of the vectors (cosine distance) -> (N, 2) coordinates. Seeded: the same vectors give the same map."""
    umap = _umap()
    count = len(vectors)
    if count < 4:
        raise DreamscopeError(
            f"an atlas needs at least 4 activation vectors to lay out, got {count}: give more pictures or --positions"
        )
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(neighbours, count - 1),
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        n_jobs=1,
        init="spectral" if count > 16 else "random",
    )
    with np.errstate(all="ignore"):
        return reducer.fit_transform(np.asarray(vectors, dtype=np.float32)).astype(np.float32)


def _umap():
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba and sklearn announce deprecations on import
            import umap
        return umap
    except ImportError:
        raise DreamscopeError(
            "the atlas lays out activations with UMAP, which is not installed: "
            "pip install 'dreamscope[atlas]' (or pip install umap-learn)"
        ) from None


def check_layout_available() -> None:
    """Say now, before collecting, when UMAP is missing."""
    import importlib.util

    if importlib.util.find_spec("umap") is None:
        _umap()


@dataclass
class Exemplar:
    """A patch of a real picture whose vector fell in a cell (or excites a unit)."""

    file: str
    box: tuple[int, int, int, int]  # in the picture's centre square, as the network saw it
    patch: Image.Image | None = None


@dataclass
class Cell:
    row: int
    col: int
    members: np.ndarray  # indices into the atlas's vectors
    mean: np.ndarray  # the members' mean activation vector
    icon: Image.Image | None = None
    top_classes: list[tuple[str, float]] = field(default_factory=list)  # (class, mean attribution)
    strength: dict[str, float] = field(default_factory=dict)  # class -> mean attribution (class atlases)
    exemplars: list[Exemplar] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def name(self) -> str:
        return f"r{self.row:02d}-c{self.col:02d}"


def bin_cells(coords: np.ndarray, grid: int, min_count: int = 3) -> list[Cell]:
    """Cells of a grid x grid binning of 2-D coordinates: those holding at least `min_count` points, row by row.
    The grid spans the 0.1-99.9 percentiles of each axis, so a few strays do not squeeze the rest into a corner;
    strays join the edge cells. Means are filled in by `cell_means`."""
    low = np.percentile(coords, 0.1, axis=0)
    high = np.percentile(coords, 99.9, axis=0)
    scaled = (coords - low) / np.maximum(high - low, 1e-9)
    col = np.clip((scaled[:, 0] * grid).astype(int), 0, grid - 1)
    row = np.clip(((1.0 - scaled[:, 1]) * grid).astype(int), 0, grid - 1)  # y up, as in a plot
    order = np.lexsort((col, row))
    keys = row[order] * grid + col[order]
    cells = []
    for key, start, size in zip(*np.unique(keys, return_index=True, return_counts=True)):
        if size >= min_count:
            cells.append(Cell(int(key // grid), int(key % grid), np.sort(order[start : start + size]), np.zeros(0)))
    return cells


def cell_means(cells: list[Cell], vectors: np.ndarray) -> None:
    for cell in cells:
        cell.mean = vectors[cell.members].mean(axis=0)


# -- 4. icons --------------------------------------------------------------------------------------------------


def render_icons_iter(
    net: LoadedModel,
    layer: str,
    directions: np.ndarray,
    *,
    size: int = 80,
    steps: int = 160,
    seed: int = 0,
    batch: int = ICON_BATCH,
    cossim_power: float = 1.0,
) -> Iterator[Event]:
    """Feature visualizations of activation directions at `layer` (one picture each), `batch` at a time; the
    last event's result is the list of PIL pictures. The transformations are scaled to the icon's size."""
    total = len(directions)
    pictures: list[Image.Image] = []
    scale = size / 224
    pad, jitter = max(2, round(12 * scale)), max(1, round(8 * scale))
    for start in range(0, total, batch):
        chunk = torch.as_tensor(np.asarray(directions[start : start + batch]), dtype=torch.float32)
        generator = base.generator(seed + start)
        picture = params.make_param("fft", len(chunk), size, size, generator).to(net.device)
        objective = objectives.direction_sheet(layer, chunk, cossim_power)
        events = render.optimize(
            net,
            objective,
            picture,
            steps=steps,
            generator=generator,
            transform=transforms.standard_transforms(pad=pad, jitter=jitter),
        )
        stage = Stage("icons", min(start + batch, total), total)
        last = None
        for last in events:
            yield last.nested(stage, start / total, len(chunk) / total)
        pictures += last.images
    yield finish(pictures)


# -- the whole atlas -------------------------------------------------------------------------------------------


@dataclass
class AtlasResult:
    settings: AtlasSettings
    model: str
    layer: str
    collection: Collection
    selected: np.ndarray  # indices of the collection's vectors in this atlas (all, or a class's)
    coords: np.ndarray  # (len(selected), 2) layout of the selected vectors
    cells: list[Cell]
    classes: list[str]  # the class (one) or the pair (two) the atlas was made for; empty for a plain atlas
    record: provenance.Record

    @property
    def kind(self) -> str:
        return {0: "atlas", 1: "class atlas", 2: "comparison"}[len(self.classes)]

    def separating(self, towards: str, count: int = 5) -> list[Cell]:
        """A comparison's cells that favour class `towards` over the other most (for the patch experiment)."""
        a, b = self.classes if towards == self.classes[0] else self.classes[::-1]
        return sorted(self.cells, key=lambda c: c.strength[b] - c.strength[a])[:count]

    def cell(self, row: int, col: int) -> Cell:
        for cell in self.cells:
            if (cell.row, cell.col) == (row, col):
                return cell
        raise DreamscopeError(
            f"the atlas has no cell at row {row}, column {col} (it is empty or outside the {self.settings.grid}x"
            f"{self.settings.grid} grid)"
        )


def check(settings: AtlasSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, a layer the model does not have and classes it does not score."""
    base.known_layer(model, "layer", settings.layer or model.spec.default_layer)
    if (settings.class_name or settings.compare) and model.spec.logits_module is None:
        raise DreamscopeError(f"model {model.name} has no classifier, so it has no class atlas; leave out the class")
    if settings.class_name:
        base.known_class(model, "class_name", settings.class_name)
    for name in settings.compare.split(",") if settings.compare else ():
        base.known_class(model, "compare", name)


def atlas_iter(
    folder=None,
    settings: AtlasSettings | None = None,
    *,
    collection: Collection | None = None,
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Make an activation atlas of a folder of pictures (or of a `collection` gathered before, e.g. in shards).

    Everything is checked before any work: the layer, the classes (`class_name`, `compare`), that UMAP is
    installed and that the folder holds pictures. The last event's result is an `AtlasResult`.
    """
    settings, net = base.prepare(AtlasSettings, settings, fields, model, device)
    check(settings, net)
    layer = settings.layer or net.spec.default_layer
    classes = [settings.class_name] if settings.class_name else settings.compare.split(",") if settings.compare else []
    indices = [net.resolve_class(name) for name in classes]
    check_layout_available()
    if collection is not None:
        if (collection.model, collection.layer) != (net.name, layer):
            raise DreamscopeError(f"the collection holds {collection.model} {collection.layer} vectors, not {net.name} {layer}")
        check_counts(settings, vectors=len(collection))
        scan = None
    else:
        if folder is None:
            raise DreamscopeError("give a folder of pictures (or a collection)")
        scan = folders.scan(folder, settings.side or net.spec.resolution)
        check_counts(settings, pictures=len(scan.files))
    record = provenance.make(settings, net, {}, precision=precision.name_of(precision.at(net, settings.precision)))
    return Run(_atlas(net, layer, settings, scan, collection, classes, indices, record), settings, record, net)


def check_counts(settings: AtlasSettings, *, pictures: int | None = None, vectors: int | None = None) -> None:
    """Refuse, before the collection, a `min_count` above all the vectors the atlas can have: those of a collection
    made before (`vectors`) or of `pictures` (`positions` at most each), or a class atlas's share of them."""
    collected = vectors if vectors is not None else pictures * settings.positions
    classes = len(settings.compare.split(",")) if settings.compare else int(bool(settings.class_name))
    most = min(collected, classes * max(8, round(settings.keep * collected))) if classes else collected  # as _select
    if settings.min_count <= most:
        return
    if vectors is None:
        source = f"at most {collected:,} vectors from {pictures:,} picture{'s' * (pictures != 1)} at {{positions}} {settings.positions}"
    else:
        source = f"the collection holds {vectors:,} vectors"
    if most < collected:  # a class atlas's share of them
        share = f"{{keep}} {settings.keep:g}{' per class' if settings.compare else ''}"
        source += f", of which {'a comparison' if settings.compare else 'a class atlas'} keeps at most {most:,} ({share})"
    remedies = ["a smaller {min_count}"] + (["a larger {keep}"] if most < collected and settings.keep < 1 else [])
    remedies += ["a larger {positions}", "more pictures"] if vectors is None else []
    remedy = ", ".join(remedies[:-1]) + " or " + remedies[-1] if len(remedies) > 1 else remedies[0]
    raise SettingsError("min_count", f"of {settings.min_count:,} is more than any cell can hold: {source}; use {remedy}")


# Shares of the progress bar: collection and icons dominate the time.
COLLECT_SHARE, _LAYOUT, _ICONS = 0.35, 0.10, 0.50


def _atlas(net, layer, settings: AtlasSettings, scan, collection, classes, indices, record) -> Iterator[Event]:
    if collection is None:
        collection = yield from nest(
            _collect(net, layer, scan, settings.positions, settings.seed), Stage("collect", 1, 4), 0.0, COLLECT_SHARE
        )
    selected = _select(collection, indices, settings.keep)
    yield Event((Stage("layout", 2, 4, f"{len(selected)} vectors"),), COLLECT_SHARE)
    coords = layout(collection.vectors[selected], settings.seed, settings.neighbours)
    cells = bin_cells(coords, settings.grid, settings.min_count)
    if not cells:
        raise DreamscopeError(
            template=f"no cell of the {settings.grid}x{settings.grid} grid holds {settings.min_count} of the "
            f"{len(selected)} vectors; use a smaller {{grid}} or {{min_count}}"
            + (", a larger {keep}" if indices and settings.keep < 1 else "")  # keep applies to a class atlas only
            + ", or more pictures"
        )
    for cell in cells:
        cell.members = selected[cell.members]
    cell_means(cells, collection.vectors)
    _describe(cells, collection, net, classes, indices)
    means, drawer = np.stack([c.mean for c in cells]), precision.at(net, settings.precision)
    icons = yield from nest(
        render_icons_iter(drawer, layer, means, size=settings.icon_size, steps=settings.icon_steps, seed=settings.seed),
        Stage("icons", 3, 4),
        COLLECT_SHARE + _LAYOUT,
        _ICONS,
    )
    for cell, icon in zip(cells, icons):
        cell.icon = icon
    yield Event((Stage("exemplars", 4, 4),), COLLECT_SHARE + _LAYOUT + _ICONS)
    if settings.exemplars_per_cell:
        add_exemplars(cells, collection, net.layer(layer).stride, settings.exemplars_per_cell)
    yield finish(
        AtlasResult(settings, net.name, layer, collection, selected, coords, cells, [net.class_label(i) for i in indices], record)
    )


def _select(collection: Collection, classes: list[int], keep: float) -> np.ndarray:
    """All vectors, or for each class the share `keep` of all vectors that push toward it hardest (positive
    attribution only), joined for a comparison."""
    if not classes:
        return np.arange(len(collection))
    if collection.attributions is None:
        raise DreamscopeError("this collection has no class attributions (its model has no classifier)")
    chosen = set()
    for index in classes:
        push = collection.attributions[:, index].astype(np.float32)
        order = np.argsort(-push, kind="stable")[: max(8, round(keep * len(collection)))]
        chosen.update(order[push[order] > 0].tolist())
    if len(chosen) < 8:
        raise DreamscopeError(
            template=f"only {len(chosen)} activation vectors push toward the class: too few for an atlas; "
            "give more pictures (of that class or like it)" + (" or a larger {keep}" if keep < 1 else "")
        )
    return np.array(sorted(chosen))


def _describe(cells: list[Cell], collection: Collection, net: LoadedModel, classes: list[str], indices: list[int]) -> None:
    """Each cell's top classes (its members' mean attribution) and, for class atlases, its strength per class."""
    if collection.attributions is None:
        return
    for cell in cells:
        pushed = collection.attributions[cell.members].astype(np.float32).mean(axis=0)
        top = np.argsort(-pushed, kind="stable")[:TOP_CLASSES]
        cell.top_classes = [(net.class_label(int(i)), float(pushed[i])) for i in top]
        cell.strength = {name: float(pushed[i]) for name, i in zip(classes, indices)}


def add_exemplars(cells: list[Cell], collection: Collection, stride: int, count: int) -> None:
    """Each cell's `count` members closest (cosine) to its mean, from different pictures, cut out of the
    pictures as the network saw them; each picture is read once however many cells want it."""
    wanted: dict[int, list[tuple[int, int, int]]] = {}  # picture -> (cell number, rank, member)
    for number, cell in enumerate(cells):
        seen: set[int] = set()
        for member in _ranked_members(cell, collection.vectors):
            picture = int(collection.picture[member])
            if picture not in seen:
                wanted.setdefault(picture, []).append((number, len(seen), member))
                seen.add(picture)
                if len(seen) == count:
                    break
        cell.exemplars = [None] * len(seen)
    scan = folders.Scan(Path(collection.root), collection.files, collection.side)
    size = folders.patch_size(stride, collection.side)
    for picture, uses in sorted(wanted.items()):
        try:
            square = scan.square(picture)
        except DreamscopeError:
            square = None  # moved or deleted since it was collected: listed without its patch
        for number, rank, member in uses:
            row, col = (int(v) for v in collection.position[member])
            box = folders.patch_box(row, col, collection.grid, collection.side, size)
            patch = square.crop(box).resize((PATCH_PX, PATCH_PX), Image.LANCZOS) if square is not None else None
            cells[number].exemplars[rank] = Exemplar(collection.files[picture], box, patch)


def _ranked_members(cell: Cell, vectors: np.ndarray) -> np.ndarray:
    """The cell's members, most like its mean (cosine similarity) first."""
    members = vectors[cell.members]
    unit = members / np.maximum(np.linalg.norm(members, axis=1, keepdims=True), 1e-8)
    similarity = unit @ (cell.mean / max(float(np.linalg.norm(cell.mean)), 1e-8))
    return cell.members[np.argsort(-similarity, kind="stable")]


def atlas(folder=None, settings: AtlasSettings | None = None, **options) -> AtlasResult:
    """Like `atlas_iter`, but returns the finished AtlasResult."""
    return atlas_iter(folder, settings, **options).result()


# Names that lived here before the package was split into layers (0.2): the collection's batch work went to work/,
# a layer above this one, which it may not import, so an old spelling says where.
_MOVED = {
    **{name: f"dreamscope.work.atlas.{name}" for name in ("collect_shard", "collection_items", "join_parts", "shard_complete")},
    "SHARD_PICTURES": "dreamscope.work.batch.SHARD_PICTURES (one shard size for all batch work)",
}


def __getattr__(name: str):
    where = f": it moved to {_MOVED[name]}" if name in _MOVED else ""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{where}")
