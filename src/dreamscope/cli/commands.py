"""What each command does with its parsed flags: build the job (settings from the flags typed, inputs by role), hand
it to `work`, draw its events and say what was written. No tensor code and no protocol logic here.

Only flags the user typed reach the settings: one that does not apply is refused, never ignored. Modules that load
torch (all of work/ and recipes/) are imported inside the handlers, once `main` has loaded torch with Ctrl-C held
back, so `dreamscope --help` answers at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

from .. import runtime
from ..errors import DreamscopeError, UsageError
from ..io.files import shown
from ..work import catalogue
from ..work.flags import CHOICES, PRESETS, command_line, flag_of
from .progress import follow, summary


def typed(args, cls) -> dict:
    """The settings fields the user typed, as the settings want them (a chosen flag and presets included)."""
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {name: value for name, value in vars(args).items() if name in names}
    if fields.get("tile") == "off":
        fields["tile"] = None
    choice = CHOICES.get(cls.recipe)
    if choice is not None:
        for _flag, value, dest, *_ in choice.flags:
            if getattr(args, dest, None) is not None:
                fields.update({choice.by: value, choice.field: getattr(args, dest)})
    for preset in PRESETS.get(cls.recipe, ()):
        if getattr(args, preset.dest, False):
            refuse(
                args,
                [name for name in preset.sets if name in fields],
                f"cannot be combined with {preset.flag}, which means plain pixels",
            )
            fields.update(preset.sets)
    return fields


def refuse(args, fields, why: str) -> None:
    """One of `fields` typed is an error: `why` says what to do instead."""
    given = [name for name in fields if name in vars(args)]
    if given:
        raise UsageError(f"{flag_of(given[0])} {why}")


def wording(args):
    """flag_of, with a setting given by a chosen flag (visualize's --class NAME) named by the flag that gave it."""
    chosen = {}
    for choice in CHOICES.values():
        for name, _value, dest, *_ in choice.flags:
            if getattr(args, dest, None) is not None:
                chosen.update({choice.field: name, choice.by: name})
    return lambda field: chosen.get(field) or flag_of(field)


def _inputs(args, recipe: catalogue.Recipe) -> dict:
    return {spec.role: getattr(args, spec.role, None) for spec in recipe.inputs}


def _prepare(args) -> None:
    """Once per process, before any tensor work: the thread count."""
    runtime.configure(getattr(args, "threads", None))


def _device(args) -> str | None:
    return getattr(args, "device", None)


def _engine(args, always: bool = True):
    """The batch engine the flags ask for (--ray, --workers, --threads per worker); None when neither --ray nor
    --workers is given and the work may run in this process."""
    from ..work import batch

    if not always and args.ray is None and args.workers is None:
        return None
    return batch.engine_for(args.ray, args.workers, getattr(args, "threads", 1) if always else 1)


def _wrote(last, output=None) -> None:
    """The usual last line: what was written (a page folder by its index.html) and the run's summary."""
    written = output if output is not None else last.result
    page = os.path.join(written, "index.html")
    print(f"wrote {shown(page if os.path.isfile(page) else written)}{summary(last)}", file=sys.stderr)


def _run(args, job, desc: str, engine=None):
    """Run a job with a progress bar; its last event."""
    from ..work import jobs

    _prepare(args)
    return follow(jobs.run(job, device=_device(args), describe=command_line, engine=engine), args.quiet, desc)


# -- recipes --------------------------------------------------------------------------------------------------


def run_recipe(args) -> int:
    """A recipe's command: its job from the flags, run, and what it wrote."""
    from ..work.jobs import Job

    recipe = catalogue.get(args.recipes[0])
    settings = recipe.settings.build(None, typed(args, recipe.settings))
    last = _run(args, Job(settings, getattr(args, "output", None), _inputs(args, recipe)), recipe.name)
    if recipe.output.kind == "none":  # data, not a file: on stdout, as JSON
        print(json.dumps(_plain(last.result), indent=2))
        return 0
    _wrote(last)
    return 0


def _plain(value):
    """A result as JSON data: dataclasses as objects, sequences as lists."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return [_plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def classify(args) -> int:
    from ..work.jobs import Job

    recipe = catalogue.get("classify")
    settings = recipe.settings.build(None, typed(args, recipe.settings))
    predictions = _run(args, Job(settings, None, _inputs(args, recipe)), "classifying").result
    if args.json:
        print(json.dumps([{"index": p.index, "label": p.label, "probability": p.probability} for p in predictions], indent=2))
    else:
        for p in predictions:
            print(f"{p.probability:7.2%}  {p.label} ({p.index})")
    return 0


def visualize(args) -> int:
    from ..work.jobs import Job

    recipe = catalogue.get("visualize")
    settings = recipe.settings.build(None, typed(args, recipe.settings))
    score = None
    if args.score:
        from ..recipes.quality import scorer

        _prepare(args)
        score = scorer(settings, device=_device(args))  # the judge is loaded before the work: a missing one fails at once
    last = _run(args, Job(settings, args.output, _inputs(args, recipe)), "visualizing")
    _wrote(last)
    if score is not None:
        for number, result in enumerate(score(last.picture), start=1):
            print(f"score{f' {number}' if last.picture.shape[0] > 1 else ''}: {result.summary()}", file=sys.stderr)
    return 0


def zoom(args) -> int:
    """zoom: an endless zoom from INPUT, a morph (--morph), or more frames of a zoom (--resume)."""
    from ..work.jobs import Job

    zoom_recipe, morph_recipe = catalogue.get("zoom"), catalogue.get("morph")
    zoom_fields, morph_fields = set(zoom_recipe.settings.field_names()), set(morph_recipe.settings.field_names())
    if args.resume:
        from ..work import redo as redoing

        _same_as_recorded(args, zoom_fields, morph_fields)
        _prepare(args)
        last = follow(redoing.resume_zoom(args.resume, vars(args).get("frames"), device=_device(args)), args.quiet, "zooming")
        _wrote(last)
        return 0
    if "classes" in vars(args):
        if args.input or args.guide:
            raise UsageError(
                "--morph grows pictures from noise: it takes no input picture or --guide (--init starts from a photo)"
            )
        refuse(
            args,
            zoom_fields - morph_fields,
            "does not apply to zoom --morph, which grows pictures from noise (see: dreamscope zoom --help)",
        )
        settings = morph_recipe.settings.build(None, typed(args, morph_recipe.settings))
        _wrote(_run(args, Job(settings, args.output, _inputs(args, morph_recipe)), "morphing"))
        return 0
    if not args.input:
        raise UsageError("give a picture to start from, --resume VIDEO or --morph CLASS,CLASS")
    refuse(args, (morph_fields - zoom_fields) - {"classes"}, "applies only with --morph")
    if args.init:
        raise UsageError("--init applies only with --morph (a zoom starts from its INPUT picture)")
    settings = zoom_recipe.settings.build(None, typed(args, zoom_recipe.settings))
    _wrote(_run(args, Job(settings, args.output, _inputs(args, zoom_recipe)), "zooming"))
    return 0


def _same_as_recorded(args, zoom_fields: set, morph_fields: set) -> None:
    """--resume continues a zoom with the settings recorded in it: options equal to those (the command that made
    it, recalled with --resume added) are accepted, as are its photo and its own name as -o; a change is refused,
    naming the recorded value. Only --frames may change."""
    from ..io import files, provenance

    record = None
    if os.path.lexists(args.resume):
        try:
            record = provenance.read(args.resume)
        except DreamscopeError:
            pass  # resume_zoom says why it cannot continue this file
    settings = record.settings if record is not None and record.recipe == "zoom" else None
    recorded_input = record.inputs.get("input", {}).get("path") if settings is not None else None
    same_input = args.input and recorded_input and files.same_file(args.input, recorded_input)
    if (args.input and not same_input) or "classes" in vars(args) or args.guide or args.init:
        raise UsageError(
            "--resume continues its video in place with the settings recorded in it: give only --frames "
            "(and --device, --threads, -q)"
        )
    if args.output and not files.same_file(args.output, args.resume):
        raise UsageError(f"--resume continues {args.resume} in place: -o can only name it, not {args.output}")
    if settings is None:
        return
    refuse(args, morph_fields - zoom_fields, "does not apply to a zoom (see: dreamscope zoom --help)")
    given = {name: value for name, value in typed(args, type(settings)).items() if name != "frames"}
    wanted = settings.replace(**given)
    for name in given:
        if getattr(wanted, name) != getattr(settings, name):
            raise UsageError(
                f"{flag_of(name)} cannot change when resuming: the zoom was made with {_recorded(getattr(settings, name))} "
                "(only --frames can change)"
            )


def _recorded(value) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def probe(args) -> int:
    from ..work.jobs import Job, is_sheet

    recipe = catalogue.get("probe")
    settings = recipe.settings.build(None, typed(args, recipe.settings))
    if args.output and is_sheet(recipe, args.output):  # the report's settings typed for a contact sheet
        sheet = recipe.output.sheet
        resets = [name for name, value in sheet.reset.items() if getattr(settings, name) != value]
        refuse(args, [*sheet.refused, *resets], "does not apply to a contact sheet, which shows the dreams only")
    _wrote(_run(args, Job(settings, args.output, _inputs(args, recipe)), "probing"))
    return 0


def atlas(args) -> int:
    """atlas FOLDER, atlas COLLECTION..., or one shard of a folder's collection (--shard I/N)."""
    from ..work.jobs import Job

    recipe = catalogue.get("atlas")
    fields = typed(args, recipe.settings)
    sources = [Path(given) for given in args.sources]
    saved = [path for path in sources if path.suffix.lower() == ".npz"]
    if (saved and len(saved) < len(sources)) or (len(sources) > 1 and not saved):
        raise UsageError("give one folder of pictures, or one or more collections (.npz), not both")
    if (args.ray is not None or args.workers is not None) and (args.shard is not None or saved):
        raise UsageError(
            f"{'--ray' if args.ray is not None else '--workers'} runs the collection of a folder's pictures; "
            f"{'--shard collects one part itself' if args.shard is not None else 'these collections are already made'}"
        )
    if args.shard is not None:
        return _atlas_shard(args, sources, fields)
    settings = recipe.settings.build(None, fields)
    inputs = {"collections": [str(path) for path in saved]} if saved else {"folder": str(sources[0])}
    _wrote(_run(args, Job(settings, args.output, inputs), "atlas", engine=_engine(args, always=False)))
    return 0


def _atlas_shard(args, sources, fields) -> int:
    """`atlas FOLDER --shard I/N -o shard.npz`: one shard's collection, nothing else."""
    from ..work import atlas as atlas_work

    try:
        number, count = (int(part) for part in args.shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard must be I/N, e.g. 0/8, got {args.shard!r}") from None
    if not 0 <= number < count:
        raise UsageError(f"--shard {args.shard} does not exist: I goes from 0 to N-1")
    if len(sources) != 1 or sources[0].suffix.lower() == ".npz":
        raise UsageError("--shard collects from one folder of pictures")
    refuse(
        args,
        catalogue.get("atlas").settings.LAYOUT_ONLY,
        "does not apply to --shard, which only collects; give it when joining the shards",
    )
    settings = catalogue.get("atlas").settings.build(None, fields)
    _prepare(args)
    run = atlas_work.shard_job(sources[0], settings, (number, count), args.output, device=_device(args))
    _wrote(follow(run, args.quiet, f"shard {number}/{count}"))
    return 0


def patch(args) -> int:
    """The patch experiment: a table of flip rates on stdout, and its result folder with -o."""
    from ..work.jobs import Job

    recipe = catalogue.get("patch")
    settings = recipe.settings.build(None, typed(args, recipe.settings))
    result = _run(args, Job(settings, args.output, _inputs(args, recipe)), "patching").result
    print(
        f"patch experiment: {result.from_label} -> {result.to_label}: {len(result.trials)} view(s) called {result.from_label} "
        f"(of {result.views} tried), patch {settings.size:.0%} of the side, {settings.place} place"
    )
    header = ["patch", f"flips to {result.to_label}", f"mean p({result.to_label})", f"still {result.from_label}"]
    rows = [
        [
            result.label(row["patch"]),
            f"{row['flips']}/{row['trials']} ({row['flip_rate']:.0%})",
            f"{row['mean_probability']:.3f}",
            str(row["still_from_class"]),
        ]
        for row in result.table()
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(4)]
    for line in [header, *rows]:
        print("  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]))
    if args.output:
        print(f"wrote {shown(Path(args.output) / 'result.json')} and examples.png", file=sys.stderr)
    return 0


def microscope(args) -> int:
    from ..work import jobs
    from ..work.jobs import Job

    recipe = catalogue.get("microscope")
    settings = recipe.settings.build(None, _absolute(typed(args, recipe.settings), "weights", "exemplar_folder"))
    _prepare(args)
    result = follow(jobs.run(Job(settings, args.output), engine=_engine(args)), args.quiet, "microscope").result
    code = _batch_summary(result.batch, args.output, f"microscope of {result.channels:,} channels")
    print(f"wrote {shown(os.path.join(args.output, 'index.html'))}", file=sys.stderr)
    return code


def live(args) -> int:
    """live: a clip replayed as a camera (a recipe job like any other), or a local camera (--camera N)."""
    if args.camera is None:
        if args.seconds is not None:
            raise UsageError("--seconds applies only with --camera N (a clip plays to its end)")
        if not args.input:
            raise UsageError("give a clip to replay as a camera, or --camera N to dream a local camera")
        return run_recipe(args)
    if args.input:
        raise UsageError("give a clip or --camera N, not both")
    if not args.output:
        raise UsageError("name the output with -o (what the camera showed is written there)")
    seconds = 10.0 if args.seconds is None else args.seconds
    if not (math.isfinite(seconds) and 0 < seconds <= 86_400):
        raise UsageError(f"--seconds must be above 0 and at most 86400, got {seconds:g}")
    from ..recipes.live import Camera
    from ..settings import LiveSettings
    from ..work import jobs

    settings = LiveSettings.build(None, typed(args, LiveSettings))
    _prepare(args)
    camera = Camera(args.camera, seconds)
    _wrote(follow(jobs.run_camera(settings, camera, args.output, device=_device(args)), args.quiet, "live"))
    return 0


HANDLERS = {
    "visualize": visualize,
    "zoom": zoom,
    "probe": probe,
    "atlas": atlas,
    "patch": patch,
    "microscope": microscope,
    "classify": classify,
    "live": live,
}


# -- batch, redo and the tools ----------------------------------------------------------------------------------


def _absolute(fields: dict, *names: str) -> dict:
    """Paths in settings made absolute: a worker may run in another folder (or on another node)."""
    return {name: os.path.abspath(value) if name in names and isinstance(value, str) else value for name, value in fields.items()}


def _batch_summary(result, output, what: str) -> int:
    done, skipped, failed = result.count("done"), result.count("skipped"), result.failures
    parts = [f"{done} made"] + ([f"{skipped} already done"] if skipped else []) + ([f"{len(failed)} failed"] if failed else [])
    print(
        f"{what} in {shown(output)}: {', '.join(parts)} ({result.engine}, {result.seconds:.0f} s); "
        f"every item in {shown(os.path.join(output, 'batch.json'))}",
        file=sys.stderr,
    )
    return 1 if failed else 0  # each failure was a note as it came; batch.json lists them all


def run_batch(args) -> int:
    from ..work import batch

    recipe = catalogue.get(args.recipe)
    settings = recipe.settings.build(None, _absolute(typed(args, recipe.settings), "weights", "exemplar_folder"))
    _prepare(args)  # before the check loads the model
    items = batch.folder_jobs(args.folder, settings, args.output)  # checked whole before any engine starts
    run = batch.run_batch(
        items,
        _engine(args),
        summary=os.path.join(args.output, batch.SUMMARY),
        describe={"command": f"batch {args.recipe}", "folder": os.path.abspath(args.folder), "settings": settings.to_json()},
    )
    result = follow(run, args.quiet, f"batch {args.recipe}").result
    return _batch_summary(result, args.output, f"{len(items)} {recipe.made or recipe.name + ' outputs'}")


def redo(args) -> int:
    from ..io import provenance
    from ..work import redo as redoing

    # The thread count changes how sums are split, hence the last bits: redo with the recorded one.
    original = provenance.read(args.original)
    runtime.configure(args.threads or original.threads)
    given = {role: getattr(args, f"given_{role}") for role in ("input", "guide", "init") if getattr(args, f"given_{role}")}
    device = None if args.device == "auto" else args.device
    made = redoing.redo(args.original, args.output, inputs=given, device=device, describe=command_line)
    last = follow(made, args.quiet, "redoing")
    output = last.result
    verdict = {
        "identical": "identical to",
        "same pictures": "the same pictures as",
        "a folder": "the same job as",
        "different": "made again from",
    }[redoing.compare(args.original, output)]
    why = "" if verdict != "made again from" else f" (not the same pixels: {redoing.why_different(original, made.record)})"
    print(f"wrote {shown(output)}: {verdict} {shown(args.original)}{why}", file=sys.stderr)
    return 0


def layers(args) -> int:
    from ..models import DEFAULT_MODEL, list_layers

    listing = list_layers(getattr(args, "model", DEFAULT_MODEL), weights=getattr(args, "weights", None))  # structure alone
    rows = [
        {
            "name": info.name,
            "channels": info.channels,
            "stride": info.stride,
            "layout": info.layout.describe(),
            "default": info.name == listing.default_layer,
        }
        for info in listing.layers.values()
    ]
    refused = [{"name": name, "dreamable": False, "reason": reason} for name, reason in listing.not_dreamable.items()]
    if args.json:
        print(json.dumps(rows + refused, indent=2))
    else:
        width = max([12, *(len(row["name"]) + 2 for row in rows)])
        print(f"{'layer':<{width}}{'channels':>9}{'stride':>8}")
        for row in rows:
            notes = [row["layout"]] if row["layout"] else []
            if row["default"]:
                notes.append("default")
            print(f"{row['name']:<{width}}{row['channels']:>9}{row['stride']:>8}" + (f"  ({'; '.join(notes)})" if notes else ""))
        if any("class token" in row["layout"] for row in rows):
            print("\na token layer with a class token has it as a layer of its own: LAYER:cls (e.g. --channel LAYER:cls:12)")
        if refused:
            print("\nnot dreamable:")
            for row in refused:
                print(f"{row['name']:<{width}}{row['reason']}")
    return 0


def classes(args) -> int:
    from ..models import DEFAULT_MODEL, class_names

    name = getattr(args, "model", DEFAULT_MODEL)
    names, count = class_names(name, weights=getattr(args, "weights", None))
    if names is None:
        raise DreamscopeError(
            f"model {name} has {count} classes of its own, without names here: give a class index from 0 to {count - 1}"
        )
    rows = [
        {"index": i, "label": label} for i, label in enumerate(names) if not args.search or args.search.lower() in label.lower()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        raise DreamscopeError(f"no class of {name} contains '{args.search}'")
    else:
        for row in rows:
            print(f"{row['index']:>5}  {row['label']}")
    return 0


def _download(args) -> int:
    from tqdm import tqdm

    from ..models.download import fetch_weights

    with tqdm(
        disable=True if args.quiet else None,
        file=sys.stderr,
        leave=False,
        desc=f"downloading {args.download}",
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
    ) as bar:

        def progress(done: int, total: int | None) -> None:
            if bar.total != total:  # known from the server's first answer
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        fetched = fetch_weights(args.download, url=args.url, sha256=args.sha256, progress=progress)
    state = "already present" if fetched.already_present else "wrote"
    print(f"{state} {fetched.path} ({fetched.size / 2**20:.1f} MiB, SHA-256 {fetched.sha256})", file=sys.stderr)
    return 0


def models(args) -> int:
    from ..models import DEFAULT_MODEL, REGISTRY

    if args.download:
        from ..models import libraries

        if libraries.is_library_name(args.download):  # the library fetches into its own cache
            if args.url or args.sha256:
                raise UsageError(f"--url and --sha256 are for dreamscope's own models; {args.download} comes from its library")
            print(f"weights of {args.download} in {libraries.download(args.download)}", file=sys.stderr)
            return 0
        return _download(args)
    if args.url or args.sha256:
        raise UsageError("--url and --sha256 go with --download NAME (see: dreamscope models --help)")
    rows = [
        {
            "name": spec.name,
            "weights_present": spec.weights.present(),
            "how_to_get": spec.weights.how_to_get(),
            "description": spec.description,
            "default": spec.name == DEFAULT_MODEL,
        }
        for spec in REGISTRY.values()
    ]
    from ..models import libraries

    found = {} if args.json else libraries.versions()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = "weights present" if row["weights_present"] else f"weights missing: {row['how_to_get']}"
            print(f"{row['name']:<20}{row['description']:<38}{state}{'  (default)' if row['default'] else ''}")
        print()
        for library, version in found.items():
            state = f"{version}: --model {library}:NAME" if version else f"not installed ({libraries.INSTALL})"
            print(f"{library + ':NAME':<20}{'networks by name from ' + library:<38}{state}")
    return 0


def sample(args) -> int:
    from PIL import Image

    from ..io import images

    images.check_output_path(args.output)
    try:
        from skimage import data
    except ImportError:
        raise DreamscopeError("sample photos come from scikit-image; run: pip install scikit-image") from None
    images.save_image(Image.fromarray(getattr(data, args.name)()), args.output)
    print(f"wrote {shown(args.output)}", file=sys.stderr)
    return 0


def studio(args) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535 (0: any free one), got {args.port}")
    if args.max_upload_mb is not None and not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise UsageError(f"--max-upload-mb must be a number of megabytes above 0, got {args.max_upload_mb:g}")
    if args.token is not None and not (
        args.token.isascii()
        and args.token.isprintable()
        and args.token.strip() == args.token
        and args.token
        and ";" not in args.token
        and "," not in args.token
    ):
        raise UsageError("--token must be printable ASCII without spaces, commas or semicolons (it goes into a cookie)")
    if args.data is not None and Path(args.data).expanduser().exists() and not Path(args.data).expanduser().is_dir():
        raise UsageError(f"--data must be a folder; {shown(args.data)} is a file")
    from ..studio import server

    return server.serve(
        host=args.host,
        port=args.port,
        data=args.data,
        open_browser=args.open,
        token=args.token,
        model=getattr(args, "model", server.DEFAULT_MODEL),
        weights=getattr(args, "weights", None),
        device=args.device,
        threads=args.threads,
        max_upload_mb=args.max_upload_mb,
    )
