"""Where a page goes: a folder of its own, which dreamscope replaces only when it holds one of its own pages (or is
empty), checked before any work. Each page marks its index.html with a generator name."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DreamscopeError
from ..io import files


def check_page_folder(path: str | os.PathLike, generator: str, alternative: str = "") -> Path:
    """Refuse a report folder that cannot be written (or must not be replaced), before any work is done. Only a
    folder holding a page made by `generator` (or an empty one) is replaced."""
    shown = os.fspath(path)
    path = Path(os.path.abspath(path))
    if path.exists() and not path.is_dir():
        raise DreamscopeError(f"output path is a file, but the report is a folder: {shown} (give a new folder name{alternative})")
    if path == Path.cwd() or path == path.parent:
        raise DreamscopeError(f"the report needs a folder of its own, not {shown}; give a new folder name such as report/")
    if path.is_dir() and any(path.iterdir()) and not is_page_folder(path, generator):
        raise DreamscopeError(f"output folder is not empty and holds no dreamscope report: {shown} (give a new or empty folder)")
    files.check_folder(path.parent)  # missing, a file, or not writable: said before any work
    return path


def is_page_folder(folder: Path, generator: str) -> bool:
    """Whether `folder` holds an index.html made by `generator` ("dreamscope probe", ...)."""
    try:
        head = (folder / "index.html").read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
    return f'<meta name="generator" content="{generator}' in head


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A new folder beside `folder` to write a page into, moved into its place when the block ends; on any failure it
    is removed, so nothing half-written is left."""
    staging = files.new_folder_beside(folder, "part")
    try:
        yield staging
        files.move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
