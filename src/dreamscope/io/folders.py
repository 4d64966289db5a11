"""Folders of pictures: every picture under a folder in a fixed order, and reading them for recipes that learn
from many (atlas, exemplars, patch): batches of centre squares, damaged files skipped and reported, and patches
cut back out of the pictures afterwards.

Every picture is seen as the network is evaluated: scaled so its shorter side is `side` (the model's own
resolution by default), then its centre square. All pictures then have the same size, so they go through the
network in batches, and a position in a layer's grid names the same patch of the picture every time.
Reading the next batch (decoding JPEGs) overlaps with the network's work on this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .. import imaging
from ..errors import DreamscopeError
from . import images

BATCH = 16  # pictures per forward pass: large enough to keep both cores busy, small enough for any machine


# What a folder scan reads: the formats dreamscope decodes. Other files (notes, videos, .DS_Store) are not
# pictures and are passed over silently; a file with one of these names that fails to decode is "skipped".
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def picture_files(folder: str | os.PathLike) -> list[Path]:
    """Every picture file under `folder`, recursively, in a fixed order (sorted by relative path), so a seed and
    a shard number name the same pictures on every machine. Hidden files and folders are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise DreamscopeError(
            f"folder not found: {root} (give a folder of pictures)"
            if not root.exists()
            else f"{root} is a file, not a folder (give the folder that holds the pictures)"
        )
    found = []
    for directory, subfolders, names in os.walk(root, onerror=None, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found += [Path(directory, name) for name in names if not name.startswith(".") and name.lower().endswith(PICTURE_SUFFIXES)]
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


@dataclass
class Scan:
    """The pictures of one folder (or one shard of it), by path relative to `root`, and what was skipped."""

    root: Path
    files: list[str]  # relative paths, in the fixed order of `picture_files`
    side: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why), filled as batches are read

    def path(self, index: int) -> Path:
        return self.root / self.files[index]

    def batches(self, size: int = BATCH) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(indices into `files`, pictures (B, 3, side, side) in [0, 1]) for every readable picture, in order."""
        chunks = [range(start, min(start + size, len(self.files))) for start in range(0, len(self.files), size)]
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(self._read, chunks[0]) if chunks else None
            for number in range(len(chunks)):
                loaded = pending.result()
                pending = reader.submit(self._read, chunks[number + 1]) if number + 1 < len(chunks) else None
                good = [(index, picture) for index, picture in loaded if picture is not None]
                if good:
                    yield [index for index, _ in good], torch.cat([picture for _, picture in good])

    def _read(self, indices: range) -> list[tuple[int, torch.Tensor | None]]:
        out = []
        for index in indices:
            try:
                photo = images.load_image(self.path(index), "picture")
                out.append((index, imaging.to_tensor(imaging.centre_square(photo, self.side))))
            except DreamscopeError as exc:
                self.skipped.append((self.files[index], _why(str(exc), self.path(index))))
                out.append((index, None))
        return out

    def square(self, index: int) -> Image.Image:
        """Picture `index` as the network saw it (for cutting patches out)."""
        return imaging.centre_square(images.load_image(self.path(index), "picture"), self.side)


def _why(message: str, path: Path) -> str:
    """The reason without the path (the report lists the path beside it)."""
    return message.replace(f" {path}", "").replace(f"{path}", "").replace("  ", " ").replace(": (", " (").strip(" :")


def scan(folder: str | os.PathLike | Sequence[str | os.PathLike], side: int, shard: tuple[int, int] | None = None) -> Scan:
    """The pictures to read: every picture under a folder (recursively), or the given files; with `shard`
    (i, n), only every n-th picture starting at the i-th (0-based), so n independent jobs cover the folder."""
    if isinstance(folder, (str, os.PathLike)):
        root = Path(folder)
        files = [path.relative_to(root).as_posix() for path in picture_files(root)]
        if not files:
            raise DreamscopeError(
                f"no pictures in folder {root} (looked for {', '.join(PICTURE_SUFFIXES)} files, in subfolders too)"
            )
    else:
        paths = [Path(p) for p in folder]
        if not paths:
            raise DreamscopeError("no pictures given")
        root = Path(os.path.commonpath([p.resolve().parent for p in paths]))
        files = [p.resolve().relative_to(root).as_posix() for p in paths]
    if shard is not None:
        number, count = shard
        if not (count >= 1 and 0 <= number < count):
            raise DreamscopeError(f"shard {number}/{count} does not exist: give i/n with 0 <= i < n")
        files = files[number::count]
    return Scan(root, files, side)


def patch_box(row: int, col: int, grid: tuple[int, int], side: int, patch: int) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) of a `side` px picture centred on position (row, col) of a layer
    whose grid is `grid` (rows, cols), `patch` px wide, moved inside the picture where it would leave it."""
    patch = min(patch, side)
    centre_y = (row + 0.5) * side / grid[0]
    centre_x = (col + 0.5) * side / grid[1]
    top = round(min(max(centre_y - patch / 2, 0), side - patch))
    left = round(min(max(centre_x - patch / 2, 0), side - patch))
    return left, top, left + patch, top + patch


def patch_size(stride: int, side: int) -> int:
    """How much picture an exemplar shows for a layer of `stride`: four of its positions across (what its
    units respond to most, well inside their theoretical receptive field), at least 32 px, at most the picture."""
    return min(side, max(32, 4 * stride))
