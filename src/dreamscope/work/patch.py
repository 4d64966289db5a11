"""The patch experiment as work: its patches read (a cell of an atlas folder, or a picture file), a control chosen
when none is given (the comparison's most unrelated cell), its photos found, the experiment run
(`recipes/patch.py`) and, with an output folder, its result written (`pages/patch.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from ..errors import SettingsError
from ..events import Event, Run, finish, nest
from ..io import files, folders, images
from ..pages import atlas as atlas_page
from ..recipes import patch
from . import catalogue
from .atlas import skipped_notes


def patch_source(text: str) -> tuple[str, Image.Image, str | None]:
    """(name, picture, atlas folder or None) for a patch given as ATLAS_FOLDER:CELL or as a picture file."""
    folder, _, cell = text.rpartition(":")
    if folder and not os.path.exists(text) and os.path.isdir(folder):
        found, icon = atlas_page.cell_icon(folder, cell)
        return f"cell {found['name']}", icon, folder
    return os.path.basename(text), images.load_image(text, "patch picture"), None


def patch_job(job, *, model=None, device: str | None = None, describe=None, engine=None) -> Run:
    """Run the experiment of `job` (its photos, icon and controls by role) and write its result folder when the job
    names one; the last event's result is the PatchResult."""
    settings = job.settings
    name, icon, atlas_folder = patch_source(job.inputs["icon"])
    given = list(job.inputs.get("controls") or ())
    controls = dict(patch_source(text)[:2] for text in given)
    if not given and atlas_folder is not None:
        other = atlas_page.unrelated(atlas_folder, settings.from_class, settings.to_class)
        if other is not None and f"cell {other}" != name:
            controls[f"cell {other}"] = atlas_page.cell_icon(atlas_folder, other)[1]
    if job.output:
        out = Path(job.output)
        if out.exists() and not out.is_dir():
            raise SettingsError(
                "output", f"must be a folder (for result.json and examples.png), but {files.shown(out)} is a file"
            )
        files.check_folder(out.parent if not out.exists() else out)
    photos = []
    for path in job.inputs["photos"]:
        photos += folders.picture_files(path) if os.path.isdir(path) else [Path(path)]
    run = patch.patch_iter(photos, icon, settings, controls=controls, icon_name=name, model=model, device=device)
    write = catalogue.function(catalogue.get("patch").output.write)

    def events() -> Iterator[Event]:
        result = yield from nest(run)
        for note in skipped_notes(result.skipped):
            yield Event(fraction=1.0, note=note)
        if job.output:
            write(result, job.output)
        yield finish(result)

    return Run(events(), run.settings, None, run.model)
