"""Jobs: a recipe's settings, its input files and its output, checked once and run to a file that carries its
provenance.

This is what every front end calls (the command line, the studio's worker, a batch task), so the protocols around
the recipes live here and nowhere else: a job is checked before any work (`check`: its inputs by role, their sizes
against the settings and the model, its output); outputs get default names; files are written atomically with the
record inside, in the way the recipe's output kind says (`catalogue.Output`). Continuing a zoom and making an
output again from its record are in `redo.py`. A Job is plain data: its JSON is what a studio queue stores and
what a cluster task carries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import runtime
from ..errors import DreamscopeError, OutOfMemory, SettingsError
from ..events import Event, Run, finish
from ..io import files, images, provenance, videos
from ..settings import Settings
from . import catalogue
from .catalogue import Recipe, function


@dataclass(frozen=True)
class Job:
    """What to make (settings), from which files (inputs by role: "input", "guide", "init", ...) and where (output).

    `names` gives, by role, the name to show for an input whose file is stored under another name (a studio's
    upload, shown by the name it was uploaded under); names are shown only, never opened.
    """

    settings: Settings
    output: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def recipe(self) -> str:
        return self.settings.recipe

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "output": self.output,
            "inputs": {role: path for role, path in self.inputs.items() if path is not None},
            "names": dict(self.names),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        if not isinstance(data, Mapping) or "settings" not in data:
            raise DreamscopeError("a job is a JSON object with settings, output and inputs")
        return cls(
            Settings.from_json(data["settings"]),
            data.get("output"),
            dict(data.get("inputs") or {}),
            dict(data.get("names") or {}),
        )


class Interrupted(KeyboardInterrupt):
    """A zoom or morph stopped early (Ctrl-C, SIGTERM): the `frames` done are a playable file at `output`,
    which `resume_zoom` continues (a zoom; a morph cannot continue: its optimizer state is gone)."""

    def __init__(self, output: str, frames: int, resumable: bool):
        super().__init__(output)
        self.output, self.frames, self.resumable = output, frames, resumable


def default_output(settings: Settings, inputs: Mapping[str, Any]) -> str:
    """Where a job writes when no output is named: beside its input, or in the current folder."""
    recipe = catalogue.get(settings.recipe)
    name = recipe.output.name
    if name is None:
        raise SettingsError("output", f"is required: name where {recipe.name} writes")
    return (function(name) if isinstance(name, str) else name)(settings, inputs)


def settle(job: Job) -> Job:
    """The job with its inputs checked by role (known, required ones given) and its output named: no file is read."""
    recipe = catalogue.get(job.recipe)
    inputs = {role: path for role, path in job.inputs.items() if path is not None and path != []}
    unknown = [role for role in inputs if role not in recipe.roles]
    if unknown:
        raise SettingsError(unknown[0], f"is not an input of {recipe.name}, which takes {', '.join(recipe.roles) or 'none'}")
    for spec in recipe.inputs:
        if spec.required and spec.role not in inputs:
            raise SettingsError(
                spec.role,
                f"is required: give {'a video' if spec.kind == 'video' else 'a picture' if spec.kind == 'picture' else 'it'}",
            )
    output = job.output
    if output is None and recipe.output.kind != "none" and recipe.output.name is not None:
        output = default_output(job.settings, inputs)
    return Job(job.settings, output, inputs, job.names)


# -- the check before any work ----------------------------------------------------------------------------------


def check(job: Job, model=None, *, device: str | None = None, sizes: Mapping[str, tuple[int, int]] | None = None) -> Job:
    """Check a job completely before any work: its inputs (by role; each a readable picture or video of the right
    kind, looked at without decoding it), its output, and its settings against the model and the inputs' sizes
    (layers, classes, channels, octaves). `model` is the LoadedModel it will run on (default: the settings' own,
    loaded). `sizes` gives inputs' (width, height) already known (the studio's uploads), so they are not read.
    Returns the settled job; every mistake is a DreamscopeError naming the field."""
    named = job.output is not None
    job = settle(job)
    recipe = catalogue.get(job.recipe)
    found = dict(sizes or {})
    for spec in recipe.inputs:
        path = job.inputs.get(spec.role)
        if path is None or spec.role in found:
            continue
        if spec.kind == "picture":
            found[spec.role] = images.picture_size(path, spec.what)
        elif spec.kind == "video":
            found[spec.role] = videos.frame_size(path)
    if named:
        job = _check_output(recipe, job, before_inputs=True)
        _check_output(recipe, job)
    check_settings(job.settings, model, device=device, sizes=found)
    return job


def check_settings(
    settings: Settings, model=None, *, device: str | None = None, sizes: Mapping[str, tuple[int, int]] | None = None
):
    """The part of `check` that reads no file: the settings against the model (layers, classes, channels, tiles) and
    against the inputs' sizes that `sizes` gives (role -> (width, height)), by the recipe's own `check`. Batch calls
    it once for a whole folder before any work (each picture's size is then checked as it runs). Returns the
    LoadedModel when the recipe has a check (`model` as given when loaded, else the one the settings name)."""
    recipe = catalogue.get(settings.recipe)
    if recipe.check is None:
        return None
    model = _model(settings, model, device)
    function(recipe.check)(settings, model, dict(sizes or {}))
    return model


def _model(settings: Settings, model, device):
    """The LoadedModel a job runs on: `model` when given loaded, else the one its settings (or `model`'s name) name."""
    from ..models import LoadedModel, load_model

    if isinstance(model, LoadedModel):
        return model
    return load_model(model or settings.model, device, weights=settings.weights)


def _check_output(recipe: Recipe, job: Job, before_inputs: bool = False) -> Job:
    """Refuse an output that cannot be written, before any work. `before_inputs`: only what its name tells (a
    report named as a page file, a contact sheet's settings), which is said before the inputs are read."""
    output, kind = job.output, recipe.output.kind
    if kind == "folder" and before_inputs:
        path = Path(output)
        sheet = recipe.output.sheet
        if path.suffix.lower() in (".html", ".htm"):
            raise DreamscopeError(
                f"the report is a folder, not a file: name it {path.with_suffix('')}/ (it holds index.html)"
                + (", or give a .png name for just the contact sheet" if sheet else "")
            )
        if sheet is not None and path.suffix.lower() in images.OUTPUT_FORMATS:
            defaults = type(job.settings).defaults()
            for name in sheet.refused:
                if getattr(job.settings, name) != defaults[name]:
                    raise SettingsError(
                        name, "does not apply to a contact sheet, which shows the dreams only; give a folder name for the report"
                    )
            return replace(job, settings=job.settings.replace(**sheet.reset))
        return job
    if before_inputs:
        return job
    if kind == "picture" or (kind == "folder" and recipe.output.sheet and is_sheet(recipe, output)):
        images.check_output_path(output)
    elif kind == "video":
        videos.check_output(output)
    elif kind == "folder" and recipe.output.generator is not None:
        from ..pages.output import check_page_folder

        check_page_folder(
            output, recipe.output.generator, ", or a .png name for just the contact sheet" if recipe.output.sheet else ""
        )
    for spec in recipe.inputs:  # compared as files, not names: `-o ./photo.jpg` or a link is the photo too
        given = job.inputs.get(spec.role)
        for path in given if spec.many and isinstance(given, (list, tuple)) else [given]:
            if isinstance(path, (str, os.PathLike)):
                files.refuse_writing_over(output, _input_words(spec), path)
    return job


def _input_words(spec: catalogue.Input) -> str:
    """How an input is named when the output would replace it."""
    by_kind = {"video": "input video", "folder": "input folder", "pictures": "input", "collections": "collection"}
    if spec.kind in by_kind:
        return by_kind[spec.kind]
    return {"image": "input picture", "guide image": "guide picture", "init image": "init picture"}.get(spec.what, spec.what)


def out_of_memory(exc: BaseException, recipe: str | None) -> DreamscopeError | None:
    """Running out of memory, anywhere in a job, as one error naming the recipe's settings to lower (its record's
    `lower`); None for any other exception."""
    if not runtime.is_out_of_memory(exc) and not isinstance(exc, OutOfMemory):
        return None
    where = str(exc) if isinstance(exc, OutOfMemory) else "out of memory"
    lower = catalogue.RECIPES[recipe].lower if recipe in catalogue.RECIPES else ()
    advice = " or ".join(f"{{{name}}}" for name in lower)
    where = where.replace("{", "{{").replace("}", "}}")
    return OutOfMemory(template=f"{where}; use a smaller {advice}" if advice else f"{where}; use smaller settings")


def is_sheet(recipe: Recipe, output: str | os.PathLike) -> bool:
    """Whether a report's output names a picture file: then just its contact sheet is written."""
    return recipe.output.sheet is not None and Path(output).suffix.lower() in images.OUTPUT_FORMATS


# -- running --------------------------------------------------------------------------------------------------


def run(job: Job, *, model=None, device: str | None = None, describe: Callable[[Job], str] | None = None, engine=None) -> Run:
    """Check the job's inputs and output, settle its settings and model, and return the Run that makes the output
    as it is consumed; the last event's result is the output's path (the result itself for a recipe that writes no
    file). `describe(job)` gives a command line that makes the same job again, for a page to show; `engine` runs a
    recipe's batch work (the atlas's collection, the microscope)."""
    job = settle(job)
    recipe = catalogue.get(job.recipe)
    if recipe.job is not None:
        return function(recipe.job)(job, model=model, device=device, describe=describe, engine=engine)
    if job.output is not None:
        job = _check_output(recipe, job, before_inputs=True)
    loaded = {spec.role: load(spec, job.inputs[spec.role]) for spec in recipe.inputs if spec.role in job.inputs}
    if job.output is not None:
        _check_output(recipe, job)
    model = _model(job.settings, model, device)
    check_settings(job.settings, model, sizes={role: value.size for role, value in loaded.items() if hasattr(value, "size")})
    made = function(recipe.run)(
        settings=job.settings,
        model=model,
        device=device,
        **{spec.keyword: loaded[spec.role] for spec in recipe.inputs if spec.role in loaded},
    )
    notes = [
        _animated_note(loaded["input"], job.inputs["input"]) if isinstance(loaded.get("input"), images.Image.Image) else None
    ]
    kind = recipe.output.kind
    if kind == "video":
        return _video(recipe, made, job, loaded, notes)
    if kind == "none":
        return Run(noted(notes, made), made.settings, made.record, made.model)
    return _written(recipe, made, job, notes, describe)


def load(spec: catalogue.Input, path):
    """An input as the recipe takes it: a picture decoded, a video checked whole (then streamed), a folder as is."""
    if spec.kind == "picture":
        return images.load_image(path, what=spec.what)
    if spec.kind == "video":
        return videos.open_video(path)  # decodes it all once: a damaged clip fails now, not hours later
    return path


def _animated_note(photo, path) -> str | None:
    frames = photo.info.get("n_frames", 1)
    if frames > 1:
        return (
            f"{path} is animated ({frames} frames); this dreams its first frame. To dream every frame use: "
            f"dreamscope video {path} -o dreamed.gif"
        )
    return None


def shown_name(path: str | os.PathLike) -> str:
    """A file's name for a page or a message: bytes that are not UTF-8 shown as U+FFFD instead of failing."""
    return files.shown(Path(path).name)


def _written(recipe: Recipe, run: Run, job: Job, notes, describe) -> Run:
    """The recipe's events, then its result written to the job's output with the record; the result is the path."""
    record = run.record.with_files(job.inputs, job.output) if run.record is not None else None
    metadata = {provenance.KEY: record.to_text()} if record is not None else {}
    write = function(recipe.output.write) if recipe.output.write else None

    def save(result) -> None:
        if recipe.output.kind == "picture":
            images.save_image(write(result) if write else result, job.output, metadata=metadata)
        else:
            source = job.names.get("input") or shown_name(job.inputs["input"]) if "input" in job.inputs else "pictures"
            write(result, job.output, metadata=metadata, source=source, command=describe(job) if describe else None)

    def events() -> Iterator[Event]:
        for note in notes:
            if note:
                yield Event(note=note)
        with closing(run):
            for event in run:
                if event.done:
                    save(event.result)
                    yield finish(job.output, picture=event.picture, loss=event.loss, note=event.note)
                else:
                    yield event

    return Run(events(), run.settings, record, run.model)


def _video(recipe: Recipe, run: Run, job: Job, loaded: Mapping[str, Any], notes) -> Run:
    """Each finished frame written as it comes (a video, a GIF or PNG frames), at the input video's rate and with its
    sound where the output can carry it, else at the settings' rate."""
    source = next((value for value in loaded.values() if isinstance(value, videos.VideoInfo)), None)
    kind = videos.output_kind(job.output)
    sound = source is not None and source.audio is not None and kind == "video"
    if source is not None and source.audio is not None and not sound:
        notes.append(
            f"the sound ({source.audio}) is dropped: {'a GIF' if kind == 'gif' else 'a folder of PNG frames'} cannot carry it"
        )
    writer = videos.FrameWriter(
        job.output,
        source.fps if source is not None else run.settings.fps,
        keep_partial=recipe.output.keep_partial,
        audio_from=source.path if sound else None,
        metadata={provenance.KEY: run.record.with_files(job.inputs, job.output).to_text()},
    )
    return Run(frames_to(writer, run, job, notes, recipe.output.resumable, sound), run.settings, run.record, run.model)


def frames_to(
    writer: videos.FrameWriter, run: Run, job: Job, notes=(), resumable: bool = True, sound: bool = False
) -> Iterator[Event]:
    """Write each finished frame; an interrupt keeps the frames done as a playable file (`Interrupted`). The last
    event's note sums up what was written."""
    for note in notes:
        if note:
            yield Event(note=note)
    try:
        with closing(run), writer:
            size, said = None, None
            for event in run:
                if event.frame is not None:
                    writer.write(event.image)
                    size = event.picture.shape[-1], event.picture.shape[-2]
                if not event.done:
                    yield event
                elif event.note:
                    said = event.note  # the recipe's own summary (the morph's changes and judge)
        summary = f"{writer.count} frames" + (f", {size[0]}x{size[1]}" if size else "") + f", {float(writer.fps):g} fps"
        yield finish(job.output, note=summary + (", with sound" if sound else "") + (f"; {said}" if said else ""))
    except KeyboardInterrupt:
        if writer.partial:
            raise Interrupted(job.output, writer.count, resumable) from None
        raise


def run_camera(settings: Settings, camera, output: str, *, model=None, device: str | None = None, describe=None) -> Run:
    """`dreamscope live --camera N`: a local camera (`recipes.live.Camera`) dreamed live and written as a viewer saw
    it, at the camera's rate, with the record (which names no input: a camera is not a file)."""
    from ..recipes import live

    job = Job(settings, output)
    _check_output(catalogue.get("live"), job)
    made = live.live_iter(camera, settings, model=_model(settings, model, device), device=device)
    record = made.record.with_files({}, output)
    writer = videos.FrameWriter(output, camera.fps, metadata={provenance.KEY: record.to_text()})
    return Run(frames_to(writer, made, job, resumable=False), made.settings, record, made.model)


def noted(notes, run: Run) -> Iterator[Event]:
    for note in notes:
        if note:
            yield Event(note=note)
    with closing(run):
        yield from run


# Names that lived in jobs.py before the package was split into layers (0.2). One that moved to a module of this layer
# or a lower one still works, with a DeprecationWarning (looked up by module name: redo.py imports this module);
# one that became part of a recipe's record says where to look.
_MOVED = {
    "redo": "dreamscope.work.redo",
    "resume_zoom": "dreamscope.work.redo",
    "redo_output": "dreamscope.work.redo",
    "compare": "dreamscope.work.redo",
    "MAX_SHEET_UNITS": "dreamscope.recipes.exemplars",
}
_INPUTS = "each recipe's inputs are in its record: dreamscope.work.catalogue.get(RECIPE).inputs (role, required, what)"
_GONE = {
    "INPUTS": _INPUTS,
    "REQUIRED": _INPUTS,
    "WHAT": _INPUTS,
    "exemplar_sheet": "an exemplars sheet is a job of the exemplars recipe: "
    "dreamscope.work.jobs.run(Job(ExemplarsSettings(...), OUTPUT, {'folder': FOLDER}))",
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"{__name__}.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}" + (f": {_GONE[name]}" if name in _GONE else ""))
