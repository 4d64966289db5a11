"""Making an output again from the record inside it (`redo`), continuing a zoom where its file ends (`resume_zoom`),
and telling how a redo matches its original (`compare`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import DreamscopeError, SettingsError
from ..events import Run
from ..io import files, images, provenance, videos
from ..models import precision
from ..recipes import zoom
from . import catalogue, jobs
from .jobs import Job, frames_to, run


def resume_zoom(path: str | os.PathLike, frames: int | None = None, *, model=None, device: str | None = None) -> Run:
    """Continue the zoom in `path` (a video or a PNG frames folder dreamscope wrote) to `frames` in total (default:
    as many as it was asked for), in place, with the settings recorded in it. The frame after the last one in the
    file is the one the uninterrupted run would have made, up to the file's compression."""
    path = str(path)
    if not os.path.lexists(path):
        raise DreamscopeError(f"nothing to resume: {path} does not exist")
    record = provenance.read(path)
    if record.recipe != "zoom":
        what = (
            "a morph cannot be continued (its optimizer state is not in the file)"
            if record.recipe == "morph"
            else f"it was made by {record.recipe}"
        )
        raise DreamscopeError(f"{path} is not a zoom to continue: {what}")
    settings = record.settings if frames is None else record.settings.replace(frames=frames)
    count, first, last = _first_and_last(path)
    if count >= settings.frames:
        raise SettingsError("frames", f"must be more than the {count} frames {path} already has")
    guide = _recorded_input(record, "guide", path)
    job = Job(settings, path, {role: entry.get("path") for role, entry in record.inputs.items()})
    with precision.auto_means(record.precision or "fp32"):  # a record older than the choice ran in fp32
        run = zoom.zoom_iter(
            last,
            settings,
            guide=guide and images.load_image(guide, what="guide image"),
            model=model,
            device=device,
            start=count,
            first=first,
        )
    _same_weights(run.model, record)
    metadata = {
        provenance.KEY: provenance.Record(
            settings,
            record.model,
            record.inputs,
            record.device,
            record.threads,
            provenance.version(),
            record.torch,
            record.precision,
        ).to_text()
    }
    writer = videos.FrameWriter(path, settings.fps, keep_partial=True, resume=True, metadata=metadata)
    return Run(frames_to(writer, run, job), settings, record, run.model)


def _first_and_last(path: str):
    if Path(path).is_dir():
        files, first, last = videos.check_frames(path)
        return len(files), first, last
    info = videos.open_video(path)
    first = last = None
    for last in videos.read_frames(info.path):
        first = first or last
    return info.frames, first, last


def _recorded_input(record: provenance.Record, role: str, output: str, given: str | None = None) -> str | None:
    """The file for an input of the record: `given`, else the recorded path, else the same place relative to the
    output (a moved or cloned folder); its content is checked against the record's digest, so a moved or edited
    file is caught before any work."""
    entry = record.inputs.get(role)
    if entry is None:
        if given is not None:
            raise DreamscopeError(f"the record has no {role}; leave it out")
        return None
    path = given or entry.get("path")
    if path is None:
        raise DreamscopeError(
            f"the record names no file for its {role} (it was made from Python with a picture in memory); give the {role} file"
        )
    if given is None and not Path(path).exists() and entry.get("relative"):
        beside = os.path.join(os.path.dirname(os.path.abspath(output)), entry["relative"])
        path = beside if Path(beside).exists() else path
    if not Path(path).exists():
        raise DreamscopeError(f"the {role} this was made from is missing: {path}; give its new place")
    if "pixels" in entry:
        found = provenance.pixels_digest(images.load_image(path, what=_what(record, role)))
        expected = entry["pixels"]
    else:
        found, expected = provenance.file_digest(path), entry.get("file")
    if found != expected:
        raise DreamscopeError(
            f"the {role} {path} is not the one this was made from (its digest differs from the record's); "
            f"give the original {role}"
        )
    return path


def _same_weights(model, record: provenance.Record) -> None:
    recorded = record.model.get("weights")
    if recorded and model.weights_digest != recorded:
        raise DreamscopeError(
            f"the weights of {model.name} here differ from the ones that made this ({model.weights_digest[:19]}... "
            f"here, {recorded[:19]}... in the record); give the same weights file"
        )


def _recorded_device(record: provenance.Record) -> str | None:
    """The device that made it, where this machine has one (the same bytes need the same device); else auto."""
    import torch

    kind = record.device.split(":")[0]
    mps = getattr(torch.backends, "mps", None)
    here = (
        kind == "cpu"
        or (kind == "cuda" and torch.cuda.is_available())
        or (kind == "mps" and mps is not None and mps.is_available())
    )
    return record.device if here else None


def redo_output(path: str | os.PathLike) -> str:
    """`NAME_redo.EXT` (or `NAME_redo/`) beside the original."""
    path = Path(path)
    return str(path.with_name(f"{path.stem}_redo{path.suffix}") if not path.is_dir() else path.with_name(f"{path.name}_redo"))


def redo(
    path: str | os.PathLike,
    output: str | None = None,
    *,
    inputs: Mapping[str, str | None] | None = None,
    model=None,
    device: str | None = None,
    describe: Callable[[Job], str] | None = None,
) -> Run:
    """Make the output at `path` again from the record inside it, into `output` (default `NAME_redo.EXT`).

    Its inputs are the recorded files (or `inputs`, by role), checked against the record's digests, and the
    model's weights must be the recorded ones: then, on the same machine, the result has the same bytes.
    """
    record = provenance.read(path)
    if record.recipe == "microscope":
        raise DreamscopeError(
            f"redo cannot make {path} again alone: it is one channel of a microscope, drawn with its block; "
            "run the microscope command again into the same folder (it redraws only what is missing)"
        )
    if record.recipe == "live":
        raise DreamscopeError(
            f"redo cannot make {path} again: a live dream depends on how fast the machine dreamed at that moment "
            "(which camera frames it dropped); run dreamscope live again with the recorded settings"
        )
    if any(spec.kind != "picture" and spec.kind != "video" for spec in catalogue.get(record.recipe).inputs):
        raise DreamscopeError(
            f"redo cannot make {path} again: dreamscope {record.recipe} reads a folder of pictures, which "
            "its record does not hold; run that command again (the record has its settings)"
        )
    if output is not None and files.same_file(output, path):
        raise DreamscopeError(
            f"the output {files.shown(output)} is the original itself; name another output, so it is kept to compare"
        )
    given = dict(inputs or {})
    found = {role: _recorded_input(record, role, str(path), given.pop(role, None)) for role in record.inputs}
    if given:
        raise DreamscopeError(f"the record has no {next(iter(given))}; it has {', '.join(record.inputs) or 'no inputs'}")
    job = Job(record.settings, output or redo_output(path), found)
    # "auto" chose for the CPU the original ran on: choose the same (a record older than the choice ran in fp32)
    with precision.auto_means(record.precision or "fp32"):
        made = run(job, model=model, device=device or _recorded_device(record), describe=describe)
    _same_weights(made.model, record)
    notes = []
    if made.record is not None and (made.record.threads, made.record.device) != (record.threads, record.device):
        notes.append(
            f"this runs on {made.record.device} with {made.record.threads} threads, the original on {record.device} with "
            f"{record.threads}: the pictures will match but not to the last bit"
        )
    return Run(jobs.noted(notes, made), made.settings, made.record, made.model)


def compare(original: str | os.PathLike, made: str | os.PathLike) -> str:
    """How a redo's output matches the original: "identical" (the same bytes), "same pictures" (every pixel of
    every frame equal; the records differ, e.g. in where the inputs lie relative to each output), "a folder"
    (a report, compared by its sheet elsewhere) or "different" (another machine, device or version rounds
    differently)."""
    original, made = Path(original), Path(made)
    if original.is_dir() or made.is_dir():
        return "a folder"
    if original.read_bytes() == made.read_bytes():
        return "identical"
    try:
        if original.suffix.lower() in videos.CONTAINERS or original.suffix.lower() == ".gif":
            pairs = zip(videos.read_frames(original), videos.read_frames(made), strict=True)
        else:
            pairs = [(images.load_image(original), images.load_image(made))]
        same = all(a.size == b.size and a.tobytes() == b.tobytes() for a, b in pairs)
    except (ValueError, DreamscopeError):  # zip(strict=True): a different number of frames
        same = False
    return "same pictures" if same else "different"


def why_different(original: provenance.Record, made: provenance.Record | None) -> str:
    """Why a redo's pixels may differ from the original's: what the two records say ran differently, or, where
    they agree, that they should not have (a bug to report)."""
    if made is None:
        return "no record to compare with"
    pairs = [
        ("dreamscope", original.dreamscope, made.dreamscope),
        ("torch", original.torch, made.torch),
        ("device", original.device, made.device),
        ("threads", original.threads, made.threads),
        ("precision", original.precision or "fp32", made.precision or "fp32"),
    ]
    changed = [f"{name} {before or 'unknown'} then, {now} now" for name, before, now in pairs if before != now]
    if changed:
        return "; ".join(changed)
    return "the records agree (same version, torch, device, threads and precision): another CPU rounds differently, or it is a bug to report"


def _what(record: provenance.Record, role: str) -> str:
    """How messages name an input of the recipe that made `record` ("guide image")."""
    recipe = catalogue.RECIPES.get(record.recipe)
    return next((spec.what for spec in recipe.inputs if spec.role == role), role) if recipe else role
