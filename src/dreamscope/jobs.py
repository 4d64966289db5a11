"""Jobs: a recipe's settings, its input files and its output, run to a file that carries its provenance.

This is what every front end calls (the CLI, the studio's worker, a batch task), so the protocols around the
recipes live here and nowhere else: every input and the output are checked before any work; outputs get
default names; files are written atomically with the record inside; a zoom continues where its file ends
(`resume_zoom`); and an output is made again from its own record (`redo`). A Job is plain data: its JSON is
what a studio queue stores and what a cluster task carries.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import images, provenance, videos
from .errors import DreamscopeError, SettingsError
from .events import Event, Run, finish
from .settings import Settings

# The input files each recipe takes, by role; the first is required where REQUIRED says so.
INPUTS = {"dream": ("input", "guide"), "visualize": ("init",), "zoom": ("input", "guide"), "morph": ("init",),
          "video": ("input", "guide"), "probe": ("input",)}
REQUIRED = {"dream": "input", "zoom": "input", "video": "input", "probe": "input"}
WHAT = {"input": "image", "guide": "guide image", "init": "init image"}


@dataclass(frozen=True)
class Job:
    """What to make (settings), from which files (inputs by role: "input", "guide", "init") and where (output).

    `names` gives, by role, the name to show for an input whose file is stored under another name (a studio's
    upload, shown by the name it was uploaded under); names are shown only, never opened.
    """

    settings: Settings
    output: str | None = None
    inputs: Mapping[str, str | None] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def recipe(self) -> str:
        return self.settings.recipe

    def to_json(self) -> dict[str, Any]:
        return {"settings": self.settings.to_json(), "output": self.output,
                "inputs": {role: path for role, path in self.inputs.items() if path is not None}, "names": dict(self.names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Job":
        if not isinstance(data, Mapping) or "settings" not in data:
            raise DreamscopeError("a job is a JSON object with settings, output and inputs")
        return cls(Settings.from_json(data["settings"]), data.get("output"), dict(data.get("inputs") or {}),
                   dict(data.get("names") or {}))


class Interrupted(KeyboardInterrupt):
    """A zoom or morph stopped early (Ctrl-C, SIGTERM): the `frames` done are a playable file at `output`,
    which `resume_zoom` continues (a zoom; a morph cannot continue: its optimizer state is gone)."""

    def __init__(self, output: str, frames: int, resumable: bool):
        super().__init__(output)
        self.output, self.frames, self.resumable = output, frames, resumable


def default_output(settings: Settings, inputs: Mapping[str, str | None]) -> str:
    """Where a job writes when no output is named: beside its input, or in the current folder."""
    recipe = settings.recipe
    source = inputs.get("input")
    if recipe in REQUIRED:
        if source is None:
            raise SettingsError("input", "is required")
        path = Path(source)
        if path.exists() and not path.is_dir() and not provenance.lasting_file(path):  # a pipe, /dev/stdin
            raise DreamscopeError(f"name the output: {source} is a stream, not a file to write beside")
        suffix = {"dream": "_dream.png", "zoom": "_zoom.mp4", "probe": "_probe"}.get(recipe)
        if recipe == "video":
            kept = path.suffix.lower() in videos.CONTAINERS or path.suffix.lower() == ".gif"
            suffix = "_dream" + (path.suffix if kept else ".mp4")
        return str(path.with_name(path.stem + suffix))
    if recipe == "visualize":
        name = {"class": settings.target, "channel": settings.target, "neuron": f"neuron-{settings.target}",
                "channels": f"{settings.target}-channels"}[settings.kind]
        return f"{_safe(name)}.png"
    if recipe == "exemplars":
        return f"{_safe(settings.units.replace(',', '_'))}-exemplars.png"
    return f"morph_{_safe(settings.classes.replace(',', '_'))}.mp4"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "picture"


def run(job: Job, *, model=None, device: str | None = None, describe: Callable[[Job], str] | None = None) -> Run:
    """Check the job's inputs and output, settle its settings and model, and return the Run that makes the
    output as it is consumed; the last event's result is the output's path.

    `describe(job)` gives a command line that makes the same job again, for a probe report's page.
    """
    recipe = job.recipe
    if recipe not in INPUTS:
        raise SettingsError("recipe", f"{recipe} does not write a file")
    inputs = {role: job.inputs.get(role) for role in INPUTS[recipe]}
    unknown = [role for role, path in job.inputs.items() if path is not None and role not in INPUTS[recipe]]
    if unknown:
        raise SettingsError(unknown[0], f"is not an input of {recipe}, which takes {', '.join(INPUTS[recipe])}")
    if recipe in REQUIRED and inputs[REQUIRED[recipe]] is None:
        raise SettingsError(REQUIRED[recipe], "is required")
    output = job.output or default_output(job.settings, inputs)
    job = Job(job.settings, output, {role: path for role, path in inputs.items() if path is not None}, job.names)
    return {"dream": _dream, "visualize": _visualize, "zoom": _zoom, "morph": _morph, "video": _video,
            "probe": _probe}[recipe](job, model, device, describe)


def _picture(job: Job, role: str):
    path = job.inputs.get(role)
    return None if path is None else images.load_image(path, what=WHAT[role])


def _animated_note(photo, path) -> str | None:
    frames = photo.info.get("n_frames", 1)
    if frames > 1:
        return (f"{path} is animated ({frames} frames); this dreams its first frame. To dream every frame use: "
                f"dreamscope video {path} -o dreamed.gif")
    return None


def _written(run: Run, job: Job, write: Callable[[Any, dict], None], notes=()) -> Run:
    """The recipe's events, then its result written to the job's output with the record; the result is the path."""
    record = run.record.with_files(job.inputs, job.output) if run.record is not None else None
    metadata = {provenance.KEY: record.to_text()} if record is not None else {}

    def events() -> Iterator[Event]:
        for note in notes:
            if note:
                yield Event(note=note)
        with _closing(run):
            for event in run:
                if event.done:
                    write(event.result, metadata)
                    yield finish(job.output, picture=event.picture, loss=event.loss, note=event.note)
                else:
                    yield event

    return Run(events(), run.settings, record, run.model)


class _closing:
    """Close a run when the job's generator is closed or fails, so the recipe's own cleanup runs at once."""

    def __init__(self, run: Run):
        self.run = run

    def __enter__(self):
        return self.run

    def __exit__(self, *_):
        self.run.close()
        return False


def _dream(job: Job, model, device, describe) -> Run:
    from .recipes import dream

    photo, guide = _picture(job, "input"), _picture(job, "guide")
    images.check_output_path(job.output)
    run = dream.dream_iter(photo, job.settings, guide=guide, model=model, device=device)
    return _written(run, job, lambda picture, metadata: images.save_image(picture, job.output, metadata=metadata),
                    [_animated_note(photo, job.inputs["input"])])


def _visualize(job: Job, model, device, describe) -> Run:
    from .recipes import visualize

    init = _picture(job, "init")
    images.check_output_path(job.output)
    run = visualize.visualize_iter(None, job.settings, init=init, model=model, device=device)

    def write(pictures, metadata):
        labelled = job.settings.kind == "channels"
        sheet = pictures[0] if len(pictures) == 1 else visualize.contact_sheet(
            pictures, labels=[p.info["label"] for p in pictures] if labelled else None)
        images.save_image(sheet, job.output, metadata=metadata)

    return _written(run, job, write)


def _frames_to(writer: videos.FrameWriter, run: Run, job: Job, notes=(), resumable: bool = True, sound: bool = False) -> Iterator[Event]:
    """Write each finished frame; an interrupt keeps the frames done as a playable file (`Interrupted`). The last
    event's note sums up what was written."""
    for note in notes:
        if note:
            yield Event(note=note)
    try:
        with _closing(run), writer:
            size = None
            for event in run:
                if event.frame is not None:
                    writer.write(event.image)
                    size = event.picture.shape[-1], event.picture.shape[-2]
                if not event.done:
                    yield event
        summary = f"{writer.count} frames" + (f", {size[0]}x{size[1]}" if size else "") + f", {float(writer.fps):g} fps"
        yield finish(job.output, note=summary + (", with sound" if sound else ""))
    except KeyboardInterrupt:
        if writer.partial:
            raise Interrupted(job.output, writer.count, resumable) from None
        raise


def _metadata(run: Run, job: Job) -> dict[str, str]:
    return {provenance.KEY: run.record.with_files(job.inputs, job.output).to_text()}


def _zoom(job: Job, model, device, describe) -> Run:
    from .recipes import zoom

    photo, guide = _picture(job, "input"), _picture(job, "guide")
    videos.check_output(job.output)
    run = zoom.zoom_iter(photo, job.settings, guide=guide, model=model, device=device)
    writer = videos.FrameWriter(job.output, run.settings.fps, keep_partial=True, metadata=_metadata(run, job))
    return Run(_frames_to(writer, run, job, [_animated_note(photo, job.inputs["input"])]), run.settings, run.record, run.model)


def _morph(job: Job, model, device, describe) -> Run:
    from .recipes import morph

    init = _picture(job, "init")
    videos.check_output(job.output)
    run = morph.morph_iter(job.settings, init=init, model=model, device=device)
    writer = videos.FrameWriter(job.output, run.settings.fps, keep_partial=True, metadata=_metadata(run, job))
    return Run(_frames_to(writer, run, job, resumable=False), run.settings, run.record, run.model)


def _video(job: Job, model, device, describe) -> Run:
    from .recipes import video

    info = videos.open_video(job.inputs["input"])  # decodes it all once: a damaged clip fails now, not hours later
    guide = _picture(job, "guide")
    kind = videos.output_kind(job.output)
    videos.check_output(job.output)
    run = video.video_iter(videos.read_frames(info.path), job.settings, count=info.frames, guide=guide, model=model, device=device)
    keep_audio = info.audio is not None and kind == "video"
    note = None
    if info.audio is not None and not keep_audio:
        note = f"the sound ({info.audio}) is dropped: {'a GIF' if kind == 'gif' else 'a folder of PNG frames'} cannot carry it"
    writer = videos.FrameWriter(job.output, info.fps, audio_from=info.path if keep_audio else None, metadata=_metadata(run, job))
    return Run(_frames_to(writer, run, job, [note], sound=keep_audio), run.settings, run.record, run.model)


def _probe(job: Job, model, device, describe) -> Run:
    from . import report
    from .recipes import probe

    output = Path(job.output)
    if output.suffix.lower() in (".html", ".htm"):
        raise DreamscopeError(f"the report is a folder, not a file: name it {output.with_suffix('')}/ (it holds index.html), "
                              "or give a .png name for just the contact sheet")
    sheet_only = output.suffix.lower() in images.OUTPUT_FORMATS
    if sheet_only and job.settings.exemplar_folder is not None:
        raise SettingsError("exemplar_folder", "does not apply to a contact sheet, which shows the dreams only; "
                                               "give a folder name for the report")
    if sheet_only and job.settings.channels != 0:
        job = Job(job.settings.replace(channels=0), job.output, job.inputs, job.names)  # a sheet shows dreams only
    photo = _picture(job, "input")
    if sheet_only:
        images.check_output_path(output)
    else:
        report.check_report_folder(output)  # fail before any work, never after it
    run = probe.probe_iter(photo, job.settings, model=model, device=device)
    source = job.names.get("input") or _shown_name(job.inputs["input"])

    def write(result, metadata):
        if sheet_only:
            report.write_sheet(result, output, metadata=metadata)
        else:
            report.write_report(result, output, source=source, command=describe(job) if describe else None, metadata=metadata)

    return _written(run, job, write)


def _shown_name(path: str) -> str:
    """A file's name for a page or a message: bytes that are not UTF-8 shown as U+FFFD instead of failing."""
    return os.fsencode(Path(path).name).decode("utf-8", "replace")


# -- natural exemplars: a sheet from a folder of pictures ---------------------------------------------------------

MAX_SHEET_UNITS = 64  # rows of one exemplars sheet: the channels' pictures are one batched visualization


def exemplar_sheet(folder: str | os.PathLike, settings: Settings, output: str | None = None, *, model=None,
                   device: str | None = None) -> Run:
    """Find the natural exemplars of `settings.units` (ExemplarsSettings) in the pictures under `folder` and write
    one sheet: a row per channel, its feature visualization beside its exemplars, with the record inside.

    Not a `Job`: its input is a folder, which neither a record nor the studio's uploads hold. Everything is
    checked before any work. Each file that could not be read is a note; the last event's result is the output's
    path, and its note says how many pictures were read and skipped.
    """
    from .events import Stage, nest
    from .recipes import exemplars

    if settings.units is not None and len(settings.units.split(",")) > MAX_SHEET_UNITS:
        raise SettingsError("units", f"names {len(settings.units.split(','))} channels; one sheet shows at most {MAX_SHEET_UNITS}")
    output = output or default_output(settings, {})
    images.check_output_path(output)
    run = exemplars.exemplars_iter(folder, settings=settings, model=model, device=device)
    metadata = {provenance.KEY: run.record.to_text()}

    def events() -> Iterator[Event]:
        with _closing(run):
            found = yield from nest(run, Stage("part", 1, 2, "exemplars"), 0.0, 0.5)
        pictures = yield from nest(_unit_pictures(run, list(found.units)), Stage("part", 2, 2, "visualization"), 0.5, 0.5)
        images.save_image(exemplars.sheet(found, pictures), output, metadata=metadata)
        yield finish(output, note=f"{_count(found.read, 'picture')} read, {len(found.skipped)} skipped")

    return Run(events(), run.settings, run.record, run.model)


def _unit_pictures(run: Run, units) -> Run:
    """The units' feature visualizations as one batched optimization: picture i maximizes unit i."""
    from . import objectives
    from .recipes import visualize

    objective = sum((objectives.channel(layer, index, sample=i) for i, (layer, index) in enumerate(units)),
                    objectives.Objective(terms=()))
    return visualize.visualize_iter(objective, model=run.model, size=run.settings.vis_size, steps=run.settings.vis_steps,
                                    seed=run.settings.seed, samples=len(units))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -- continuing a zoom, and making an output again from its record -----------------------------------------------


def resume_zoom(path: str | os.PathLike, frames: int | None = None, *, model=None, device: str | None = None) -> Run:
    """Continue the zoom in `path` (a video or a PNG frames folder dreamscope wrote) to `frames` in total (default:
    as many as it was asked for), in place, with the settings recorded in it. The frame after the last one in the
    file is the one the uninterrupted run would have made, up to the file's compression."""
    from .models import precision
    from .recipes import zoom

    path = str(path)
    if not os.path.lexists(path):
        raise DreamscopeError(f"nothing to resume: {path} does not exist")
    record = provenance.read(path)
    if record.recipe != "zoom":
        what = "a morph cannot be continued (its optimizer state is not in the file)" if record.recipe == "morph" else \
            f"it was made by {record.recipe}"
        raise DreamscopeError(f"{path} is not a zoom to continue: {what}")
    settings = record.settings if frames is None else record.settings.replace(frames=frames)
    count, first, last = _first_and_last(path)
    if count >= settings.frames:
        raise SettingsError("frames", f"must be more than the {count} frames {path} already has")
    guide = _recorded_input(record, "guide", path)
    job = Job(settings, path, {role: entry.get("path") for role, entry in record.inputs.items()})
    with precision.auto_means(record.precision):
        run = zoom.zoom_iter(last, settings, guide=guide and images.load_image(guide, what="guide image"), model=model,
                             device=device, start=count, first=first)
    _same_weights(run.model, record)
    metadata = {provenance.KEY: provenance.Record(settings, record.model, record.inputs, record.device, record.threads,
                                                   provenance.version(), record.torch, record.precision).to_text()}
    writer = videos.FrameWriter(path, settings.fps, keep_partial=True, resume=True, metadata=metadata)
    return Run(_frames_to(writer, run, job), settings, record, run.model)


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
        raise DreamscopeError(f"the record names no file for its {role} (it was made from Python with a picture in memory); "
                              f"give the {role} file")
    if given is None and not Path(path).exists() and entry.get("relative"):
        beside = os.path.join(os.path.dirname(os.path.abspath(output)), entry["relative"])
        path = beside if Path(beside).exists() else path
    if not Path(path).exists():
        raise DreamscopeError(f"the {role} this was made from is missing: {path}; give its new place")
    if "pixels" in entry:
        found = provenance.pixels_digest(images.load_image(path, what=WHAT.get(role, role)))
        expected = entry["pixels"]
    else:
        found, expected = provenance.file_digest(path), entry.get("file")
    if found != expected:
        raise DreamscopeError(f"the {role} {path} is not the one this was made from (its digest differs from the record's); "
                              f"give the original {role}")
    return path


def _same_weights(model, record: provenance.Record) -> None:
    recorded = record.model.get("weights")
    if recorded and model.weights_digest != recorded:
        raise DreamscopeError(f"the weights of {model.name} here differ from the ones that made this ({model.weights_digest[:19]}... "
                              f"here, {recorded[:19]}... in the record); give the same weights file")


def _recorded_device(record: provenance.Record) -> str | None:
    """The device that made it, where this machine has one (the same bytes need the same device); else auto."""
    import torch

    kind = record.device.split(":")[0]
    mps = getattr(torch.backends, "mps", None)
    here = kind == "cpu" or (kind == "cuda" and torch.cuda.is_available()) or (kind == "mps" and mps is not None and mps.is_available())
    return record.device if here else None


def redo_output(path: str | os.PathLike) -> str:
    """`NAME_redo.EXT` (or `NAME_redo/`) beside the original."""
    path = Path(path)
    return str(path.with_name(f"{path.stem}_redo{path.suffix}") if not path.is_dir() else path.with_name(f"{path.name}_redo"))


def redo(path: str | os.PathLike, output: str | None = None, *, inputs: Mapping[str, str | None] | None = None,
         model=None, device: str | None = None, describe: Callable[[Job], str] | None = None) -> Run:
    """Make the output at `path` again from the record inside it, into `output` (default `NAME_redo.EXT`).

    Its inputs are the recorded files (or `inputs`, by role), checked against the record's digests, and the
    model's weights must be the recorded ones: then, on the same machine, the result has the same bytes.
    """
    record = provenance.read(path)
    if record.recipe == "microscope":
        raise DreamscopeError(f"redo cannot make {path} again alone: it is one channel of a microscope, drawn with its block; "
                              "run the microscope command again into the same folder (it redraws only what is missing)")
    if record.recipe not in INPUTS:
        raise DreamscopeError(f"redo cannot make {path} again: dreamscope {record.recipe} reads a folder of pictures, which "
                              "its record does not hold; run that command again (the record has its settings)")
    given = dict(inputs or {})
    files = {role: _recorded_input(record, role, str(path), given.pop(role, None)) for role in record.inputs}
    if given:
        raise DreamscopeError(f"the record has no {next(iter(given))}; it has {', '.join(record.inputs) or 'no inputs'}")
    job = Job(record.settings, output or redo_output(path), files)
    from .models import precision

    with precision.auto_means(record.precision):  # "auto" chose for the CPU the original ran on: choose the same
        made = run(job, model=model, device=device or _recorded_device(record), describe=describe)
    _same_weights(made.model, record)
    notes = []
    if made.record is not None and (made.record.threads, made.record.device) != (record.threads, record.device):
        notes.append(f"this runs on {made.record.device} with {made.record.threads} threads, the original on {record.device} with "
                     f"{record.threads}: the pictures will match but not to the last bit")
    return Run(_noted(notes, made), made.settings, made.record, made.model)


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


def _noted(notes, run: Run) -> Iterator[Event]:
    for note in notes:
        yield Event(note=note)
    with _closing(run):
        yield from run
