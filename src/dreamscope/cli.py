"""The `dreamscope` command: parses arguments into settings, runs a job, shows progress, maps errors to exit codes.

No tensor code and no protocol logic here: each command builds a settings object (settings.py) from the flags
the user typed, hands it to `jobs` with the input and output files, and draws the events as a progress bar.
Flags are the settings' field names (`--octave-scale` is `octave_scale`), so the library's messages, which name
fields, are shown with flags. Only flags the user typed reach the settings: one that does not apply is refused,
never ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from . import __version__, runtime
from .settings import PRECISIONS

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what shells report for a program stopped by SIGPIPE
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
VIDEO_OUTPUTS = ".mp4, .mov, .mkv, .webm, .gif, or a folder of PNG frames (a name ending in /)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error:` line on stderr (no usage block), exit code 2."""

    def error(self, message: str):
        from .errors import UsageError

        raise UsageError(f"{message} (see: {self.prog} --help)")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def _real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def _tile(text: str):
    if text.lower() in ("auto", "off", "none"):
        return text.lower()
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a tile size in px, got '{text}'") from None


# How each settings field is typed on the command line: (flag, argparse options). Fields not here are set by
# other means (visualize's kind and target come from --class, --channel, --neuron or --channels).
FLAGS = {
    "model": ("--model", dict(metavar="NAME")),
    "weights": ("--weights", dict(metavar="FILE")),
    "seed": ("--seed", dict(type=_whole, metavar="N")),
    "layer": ("--layer", dict(action="append", metavar="NAME[=WEIGHT]")),
    "channels": ("--channels", dict(metavar="SPEC")),
    "octaves": ("--octaves", dict(type=_whole, metavar="N")),
    "octave_scale": ("--octave-scale", dict(type=_real, metavar="F")),
    "steps": ("--steps", dict(type=_whole, metavar="N")),
    "step_size": ("--step-size", dict(type=_real, metavar="F")),
    "jitter": ("--jitter", dict(type=_whole, metavar="PX")),
    "max_size": ("--max-size", dict(type=_whole, metavar="PX")),
    "tile": ("--tile", dict(type=_tile, metavar="auto|off|PX")),
    "precision": ("--precision", dict(choices=PRECISIONS, metavar="|".join(PRECISIONS))),
    "grid": ("--grid", dict(type=_whole, metavar="N")),
    "samples": ("--samples", dict(type=_whole, metavar="N")),
    "diversity": ("--diversity", dict(type=_real, metavar="F")),
    "size": ("--size", dict(type=_whole, metavar="PX")),
    "learning_rate": ("--learning-rate", dict(type=_real, metavar="F")),
    "frames": ("--frames", dict(type=_whole, metavar="N")),
    "zoom": ("--zoom", dict(type=_real, metavar="F")),
    "rotate": ("--rotate", dict(type=_real, metavar="DEG")),
    "fps": ("--fps", dict(type=_real, metavar="F")),
    "layers": ("--layers", dict(metavar="A,B,...")),
    "every": ("--every", dict(type=_whole, metavar="N")),
    "classes": ("--morph", dict(metavar="CLASS,CLASS")),
    "warmup": ("--warmup", dict(type=_whole, metavar="N")),
    "frame_steps": ("--frame-steps", dict(type=_whole, metavar="N")),
    "blend": ("--blend", dict(type=_real, metavar="F")),
    "vis_size": ("--vis-size", dict(type=_whole, metavar="PX")),
    "vis_steps": ("--vis-steps", dict(type=_whole, metavar="N")),
    "top": ("--top", dict(type=_whole, metavar="K")),
    "exemplar_folder": ("--exemplars", dict(metavar="FOLDER")),
    "exemplar_count": ("--exemplar-count", dict(type=_whole, metavar="K")),
    "units": ("--channel", dict(action="append", metavar="LAYER:INDEX")),
    "count": ("--count", dict(type=_whole, metavar="K")),
    "side": ("--side", dict(type=_whole, metavar="PX")),
    "block": ("--block", dict(type=_whole, metavar="N")),
    "param": ("--param", dict(choices=("fft", "maco", "pixels"))),
    "accentuate": ("--accentuate", dict(action="store_true")),
    "transparency": ("--transparency", dict(action="store_true")),
    "closeness": ("--closeness", dict(type=_real, metavar="F")),
    "closeness_layer": ("--closeness-layer", dict(metavar="NAME")),
}
ATLAS_FLAGS = {
    "class_name": ("--class", dict(metavar="NAME")),
    "compare": ("--compare", dict(metavar="A,B")),
    "positions": ("--positions", dict(type=_whole, metavar="K")),
    "min_count": ("--min-count", dict(type=_whole, metavar="N")),
    "keep": ("--keep", dict(type=_real, metavar="F")),
    "icon_size": ("--icon-size", dict(type=_whole, metavar="PX")),
    "icon_steps": ("--icon-steps", dict(type=_whole, metavar="N")),
    "neighbours": ("--neighbours", dict(type=_whole, metavar="N")),
    "exemplars_per_cell": ("--exemplars-per-cell", dict(type=_whole, metavar="N")),
}
PATCH_FLAGS = {
    "from_class": ("--from", dict(metavar="CLASS")),
    "to_class": ("--to", dict(metavar="CLASS")),
    "place": ("--place", dict(choices=("random", "corner", "centre"))),
    "views": ("--views", dict(type=_whole, metavar="N")),
}
FLAGS.update(ATLAS_FLAGS)
FLAGS.update(PATCH_FLAGS)
# A field typed differently by one recipe: probe's channels is a count, dream's a choice of channels.
RECIPE_FLAGS = {("probe", "channels"): ("--channels", dict(type=_whole, metavar="N")),
                ("atlas", "layer"): ("--layer", dict(metavar="NAME")),
                ("patch", "size"): ("--size", dict(type=_real, metavar="F"))}
TARGET_FLAGS = {"class": "--class", "channel": "--channel", "neuron": "--neuron", "channels": "--channels"}
EXTRA_HELP = {"tile": "process big pictures in tiles so memory stays bounded: auto uses 384 px tiles for octaves over a "
                      "megapixel (a 4K photo dreams in about 2 GiB), PX tiles anything larger, off never tiles",
              "units": "a channel to find exemplars of, as LAYER:INDEX (e.g. stage4.2:17); repeat it, or comma-separate, "
                       "for a row per channel"}


def flag_of(field: str) -> str:
    """The flag a settings field is typed with; how the CLI words the library's messages."""
    if field == "input":
        return "INPUT"
    return FLAGS[field][0] if field in FLAGS else "--" + field.replace("_", "-")


def _wording(args):
    """flag_of, with visualize's target named by the flag that gave it."""
    typed = {"class_name": "--class", "unit_channel": "--channel", "neuron": "--neuron", "sheet_layer": "--channels"}
    target = next((flag for dest, flag in typed.items() if getattr(args, dest, None) is not None), None)
    return lambda field: target if field in ("kind", "target") and target else flag_of(field)


def _add_settings(parser, cls, exclude=(), only=None) -> None:
    """A flag per settings field of `cls`, with its help and default; typed values only reach the namespace."""
    import dataclasses

    for f in dataclasses.fields(cls):
        if f.name not in FLAGS or f.name in exclude or (only is not None and f.name not in only):
            continue
        if any(f.name == action.dest for action in parser._actions):
            continue
        flag, options = RECIPE_FLAGS.get((cls.recipe, f.name), FLAGS[f.name])
        default = "off" if f.name == "tile" and f.default is None else f.default
        text = EXTRA_HELP.get(f.name, f.metadata.get("help", ""))
        shown = "" if default is None else f" (default {default})"
        parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, help=text.replace("%", "%%") + shown, **options)


def _typed(args, cls) -> dict:
    """The settings fields the user typed, as the settings want them."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    fields = {name: value for name, value in vars(args).items() if name in names}
    if fields.get("tile") == "off":
        fields["tile"] = None
    return fields


def _refuse(args, fields, why: str) -> None:
    """One of `fields` typed is an error: `why` says what to do instead."""
    from .errors import UsageError

    typed = [name for name in fields if name in vars(args)]
    if typed:
        raise UsageError(f"{flag_of(typed[0])} {why}")


def _add_run_options(parser, device: bool = True, threads: bool = True) -> None:
    if device:
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    if threads:
        parser.add_argument("--threads", type=_whole, metavar="N",
                            help=f"CPU threads (default: ${runtime.ENV}, else one per core this process may use)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_engine_options(parser, run_options: bool = True) -> None:
    """Where batch work runs: this machine's processes (the default) or a Ray cluster."""
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--ray", metavar="auto|local|ADDRESS",
                        help="run on a Ray cluster: auto (the one this machine joined with `ray start`), local (a Ray instance "
                             "started here for this run) or the head's HOST:PORT; inputs and outputs must be on storage every "
                             "node sees at the same path")
    engine.add_argument("--workers", type=_whole_or_zero, metavar="N",
                        help="worker processes on this machine (default: one per core; 0: in this process)")
    if not run_options:
        return
    parser.add_argument("--threads", type=_whole, metavar="N", default=1,
                        help="CPU threads per worker (default 1); the same on any engine, so outputs are identical")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _whole_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else _whole(text)


def build_parser() -> argparse.ArgumentParser:
    from . import settings as S

    parser = _Parser(prog="dreamscope", description="Look inside image networks by making them dream.")
    parser.add_argument("--version", action="version", version=f"dreamscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    d = commands.add_parser("dream", help="DeepDream a photo", description="Amplify what a layer sees in a photo.")
    d.add_argument("input", help="picture to dream (PNG, JPEG, WebP, ...)")
    d.add_argument("-o", "--output", help="where to write the dream (default: INPUT_dream.png beside the input)")
    d.add_argument("--guide", metavar="IMAGE", help="guide picture: pull the dream toward its features")
    _add_settings(d, S.DreamSettings)
    _add_run_options(d)
    d.set_defaults(run=_cmd_dream)

    v = commands.add_parser("visualize", help="grow a picture of what a class, channel or neuron responds to",
                            description="Grow pictures from noise that maximize a class, a channel or a neuron.")
    target = v.add_mutually_exclusive_group(required=True)
    target.add_argument("--class", dest="class_name", metavar="NAME", help="class name or index, e.g. banana (see: dreamscope classes)")
    target.add_argument("--channel", dest="unit_channel", metavar="LAYER:INDEX", help="one channel of a layer, e.g. stage5.2:17")
    target.add_argument("--neuron", metavar="LAYER:INDEX", help="the centre unit of a channel")
    target.add_argument("--channels", dest="sheet_layer", metavar="LAYER", help="contact sheet of a layer's first --grid channels")
    v.add_argument("-o", "--output", help="where to write the picture, a sheet when there are several (default: named after the target)")
    v.add_argument("--init", metavar="IMAGE", help="start from this photo instead of noise")
    v.add_argument("--no-priors", action="store_true", help="plain pixels and no transforms: shows the adversarial noise the priors prevent")
    v.add_argument("--score", action="store_true", help="judge each class picture with a held-out network (its probability "
                                                        "of the class on the picture, its mirror and a centre crop) and "
                                                        "measure its colourfulness")
    _add_settings(v, S.VisualizeSettings)
    _add_run_options(v)
    v.set_defaults(run=_cmd_visualize)

    pr = commands.add_parser("probe", help="report what each layer sees in a photo (HTML page or contact sheet)",
                             description="Dream a photo at several layers, shallow to deep, with the channels that respond "
                                         "most strongly to it and the network's top classes: an HTML report or a contact sheet.")
    pr.add_argument("input", help="picture to probe")
    pr.add_argument("-o", "--output", help="a folder for the HTML report (default: INPUT_probe/ beside the input), "
                                           "or a picture name (.png, .jpg) for just the contact sheet of the dreams")
    _add_settings(pr, S.ProbeSettings)
    _add_run_options(pr)
    pr.set_defaults(run=_cmd_probe)

    ex = commands.add_parser("exemplars", help="the pictures of a folder that excite a channel most, beside its feature visualization",
                             description="Find the patches of a folder's pictures that excite a channel most (natural exemplars, "
                                         "each from a different picture) and write them beside the channel's feature "
                                         "visualization as one sheet; a row per --channel.")
    ex.add_argument("folder", help="folder of pictures, searched recursively (PNG, JPEG, WebP, ...); files that cannot be read are skipped and named")
    ex.add_argument("-o", "--output", help="the sheet to write, .png or another picture format "
                                           "(default: LAYER_INDEX-exemplars.png in the current folder)")
    _add_settings(ex, S.ExemplarsSettings)
    _add_run_options(ex)
    ex.set_defaults(run=_cmd_exemplars)

    at = commands.add_parser("atlas", help="an activation atlas: a zoomable map of what a layer sees over a folder of pictures",
                             description="Collect a layer's activations from every picture of a folder, lay them out with UMAP, "
                                         "and draw each cell of the map by feature visualization, with the classes it pushes "
                                         "toward and the real patches that fell there: a picture and a page to explore.")
    at.add_argument("folder", nargs="+", metavar="FOLDER|COLLECTION",
                    help="folder of pictures, searched recursively (files that cannot be read are skipped and listed); or the "
                         "collection.npz of an earlier atlas, or the shards written with --shard, to lay them out without "
                         "reading the pictures")
    at.add_argument("-o", "--output", help="folder to write (default: NAME-atlas/ in the current folder, NAME-atlas-CLASS/ for a "
                                           "class); with --shard, the .npz file to write")
    at.add_argument("--shard", metavar="I/N", help="only collect, from every N-th picture starting at the I-th (0-based), and "
                                                   "write the vectors to a .npz: N such jobs, on any machines, give the folder's "
                                                   "whole collection")
    _add_settings(at, S.AtlasSettings)
    _add_run_options(at)
    _add_engine_options(at, run_options=False)
    at.set_defaults(run=_cmd_atlas)

    pa = commands.add_parser("patch", help="the patch experiment: does a feature pasted into photos of one class tip them into another?",
                             description="Paste a feature's icon (a cell of an atlas comparison) or any picture into photos the "
                                         "network calls --from, and count how often its top class becomes --to, against a "
                                         "patch of noise of the same size and any --control pictures, at the same places.")
    pa.add_argument("photos", nargs="+", help="photos of the --from class, or folders of them (searched recursively)")
    pa.add_argument("--icon", required=True, metavar="CELL|IMAGE",
                    help="what to paste: a cell of an atlas as ATLAS_FOLDER:rRR-cCC (or ATLAS_FOLDER:ROW,COL), or a picture file")
    pa.add_argument("--control", action="append", default=[], metavar="CELL|IMAGE",
                    help="another patch to compare with, besides noise (repeatable; default for a cell of a comparison: "
                         "its cell that pushes least toward either class, an unrelated icon)")
    pa.add_argument("-o", "--output", help="a folder for result.json (every trial) and examples.png (one view with each patch)")
    _add_settings(pa, S.PatchSettings)
    _add_run_options(pa)
    pa.set_defaults(run=_cmd_patch)

    ba = commands.add_parser("batch", help="dream or probe every picture of a folder, on this machine's cores or a Ray cluster",
                             description="Run one recipe with one set of settings over every picture of a folder (recursively). "
                                         "Outputs are named after their inputs; a picture that fails is recorded and the batch goes "
                                         "on; running it again skips what is complete (by the record inside each output).")
    recipes = ba.add_subparsers(dest="recipe", metavar="RECIPE", parser_class=_Parser)
    recipes.required = True
    for recipe, cls, made in (("dream", S.DreamSettings, "DeepDream every picture: OUT/NAME.png for FOLDER/NAME.jpg"),
                              ("probe", S.ProbeSettings, "a probe report for every picture: OUT/NAME/index.html")):
        each = recipes.add_parser(recipe, help=made)
        each.add_argument("folder", help="folder of pictures, searched recursively")
        each.add_argument("-o", "--output", required=True, help="folder for the outputs (created if missing; may hold an earlier run's)")
        _add_settings(each, cls)
        _add_engine_options(each)
    ba.set_defaults(run=_cmd_batch)

    ms = commands.add_parser("microscope", help="every channel of a network drawn, as a website: a page per layer and per channel",
                             description="Draw every channel of the model's layers by feature visualization, with diverse samples, "
                                         "the classes each pushes toward and (with --exemplars) the real pictures that excite it "
                                         "most; write a static website that opens from disk. Resumable: run it again to finish.")
    ms.add_argument("-o", "--output", required=True, help="folder for the site (index.html); an earlier microscope there is continued")
    _add_settings(ms, S.MicroscopeSettings)
    _add_engine_options(ms)
    ms.set_defaults(run=_cmd_microscope)

    z = commands.add_parser("zoom", help="endless zoom: dream, zoom in a little, dream again (MP4, GIF or PNG frames)",
                            description="Feed a dream back into itself, zooming and turning a little each frame; or, with "
                                        "--morph, grow a picture from noise whose class glides from one to the next.")
    z.add_argument("input", nargs="?", help="picture to start from (not with --resume or --morph)")
    z.add_argument("-o", "--output", help=f"video to write: {VIDEO_OUTPUTS} (default: INPUT_zoom.mp4)")
    z.add_argument("--guide", metavar="IMAGE", help="guide picture: pull the dream toward its features")
    z.add_argument("--resume", metavar="VIDEO", help="continue this zoom, in place, with its own settings, to --frames frames")
    z.add_argument("--init", metavar="IMAGE", help="with --morph: start from this photo instead of noise")
    _add_settings(z, S.ZoomSettings)
    _add_settings(z, S.MorphSettings)
    _add_run_options(z)
    z.set_defaults(run=_cmd_zoom)

    vid = commands.add_parser("video", help="dream a video, frame by frame, carried along the optical flow",
                              description="Dream every frame of a video; each starts from the previous dream warped along the motion, so it doesn't flicker.")
    vid.add_argument("input", help="video to dream (MP4, MOV, MKV, WebM, GIF, ...)")
    vid.add_argument("-o", "--output", help=f"where to write: {VIDEO_OUTPUTS} (default: INPUT_dream.mp4)")
    vid.add_argument("--guide", metavar="IMAGE", help="guide picture: pull the dream toward its features")
    _add_settings(vid, S.VideoSettings)
    _add_run_options(vid)
    vid.set_defaults(run=_cmd_video)

    redo = commands.add_parser("redo", help="make a picture (or video, or report) again from the record inside it",
                               description="Re-run what made OUTPUT, from the settings, seed, model and input digests it carries; "
                                           "on the same machine the result has the same bytes.")
    redo.add_argument("original", metavar="OUTPUT", help="a picture, video, frames folder or probe report dreamscope wrote")
    redo.add_argument("-o", "--output", help="where to write (default: NAME_redo.EXT beside it)")
    for role in ("input", "guide", "init"):
        redo.add_argument(f"--{role}", dest=f"given_{role}", metavar="PATH", help=f"the {role} file, if it moved")
    _add_run_options(redo)
    redo.set_defaults(run=_cmd_redo)

    lay = commands.add_parser("layers", help="list a model's dreamable layers")
    _add_settings(lay, S.Settings, only=("model", "weights"))
    lay.add_argument("--json", action="store_true", help="machine-readable output")
    lay.set_defaults(run=_cmd_layers)

    cl = commands.add_parser("classes", help="list the class names --class and --morph accept")
    _add_settings(cl, S.Settings, only=("model", "weights"))
    cl.add_argument("--search", metavar="TEXT", help="only classes whose name contains TEXT")
    cl.add_argument("--json", action="store_true", help="machine-readable output")
    cl.set_defaults(run=_cmd_classes)

    mod = commands.add_parser("models", help="list registered models and whether their weights are present")
    mod.add_argument("--json", action="store_true", help="machine-readable output")
    mod.add_argument("--download", metavar="NAME", help="fetch a model's weights into the cache folder (e.g. googlenet)")
    mod.add_argument("--url", help="with --download: fetch from this address instead (default: $DREAMSCOPE_<MODEL>_URL or the known one)")
    mod.add_argument("--sha256", metavar="HEX", help="with --download: the SHA-256 the file must have (replaces the known digest)")
    _add_run_options(mod, device=False, threads=False)
    mod.set_defaults(run=_cmd_models)

    cls = commands.add_parser("classify", help="what the network thinks a picture shows")
    cls.add_argument("input", help="picture to classify")
    _add_settings(cls, S.ClassifySettings)
    cls.add_argument("--json", action="store_true", help="machine-readable output")
    _add_run_options(cls)
    cls.set_defaults(run=_cmd_classify)

    smp = commands.add_parser("sample", help="write one of scikit-image's sample photos, to try things on")
    smp.add_argument("name", choices=SAMPLES, help="which photo")
    smp.add_argument("output", help="where to write it (.png, .jpg, ...)")
    smp.set_defaults(run=_cmd_sample)

    std = commands.add_parser("studio", help="a local web app: dream, zoom and probe in your browser",
                              description="Serve dreamscope studio, a web page for every recipe with live previews and a "
                                          "queue of jobs, on this machine (127.0.0.1 unless --host says otherwise).")
    std.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                                                         "any other needs a token, made up when --token is not given)")
    std.add_argument("--port", type=_whole, default=8765, metavar="N", help="port (default 8765; 0: any free one)")
    std.add_argument("--data", metavar="DIR", help="folder for uploads, results and the job queue "
                                                   "(default $XDG_DATA_HOME/dreamscope/studio, else ~/.local/share/dreamscope/studio)")
    std.add_argument("--open", action="store_true", help="open the page in a browser")
    std.add_argument("--token", metavar="T", help="require this token (opening the printed address once sets it)")
    _add_settings(std, S.Settings, only=("model", "weights"))
    std.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    std.add_argument("--threads", type=_whole, metavar="N",
                     help=f"CPU threads (default: ${runtime.ENV}, else one per core this process may use)")
    std.add_argument("--max-upload-mb", type=_real, metavar="N", help="largest upload in MB (default: 50 for pictures, 500 for videos)")
    std.set_defaults(run=_cmd_studio)
    return parser


# -- running a job and drawing its events --------------------------------------------------------------------------


def _shown(path) -> str:
    """A path for a message: bytes that are not UTF-8 (a file name from another system) shown as U+FFFD."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def _say(text: str, bar=None) -> None:
    if bar is not None and not bar.disable:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _follow(run, args, desc: str) -> tuple[object, str]:
    """Consume a run's events with a progress bar (fraction done, time left, where it is); print its notes.
    Returns the result and the last event's summary (", 5 frames, 96x64, 10 fps"), if any."""
    from tqdm import tqdm  # imported on first use: `dreamscope --help` stays quick

    result, summary = None, ""
    # disable=None: off when stderr is not a terminal (logs, pipes)
    with tqdm(total=1000, disable=True if args.quiet else None, file=sys.stderr, leave=False, desc=desc,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}") as bar:
        for event in run:
            if event.done:
                result, summary = event.result, f" ({event.note})" if event.note else ""
                continue
            if event.note:
                _say(f"note: {event.note}", bar)
            if event.stages:
                bar.set_postfix_str(event.stage + (f", loss {event.loss:.3g}" if event.loss is not None else ""), refresh=False)
            bar.update(round(event.fraction * 1000) - bar.n)
    return result, summary


def _prepare(args) -> None:
    """Once per process, before any tensor work: the thread count."""
    runtime.configure(getattr(args, "threads", None))


def _job(args, settings, inputs: dict, desc: str, describe=None, on_done=None) -> int:
    """Run a recipe's job with a progress bar and say what it wrote; `on_done(last event)` after it is written."""
    from . import jobs

    _prepare(args)
    job = jobs.Job(settings, args.output, {role: path for role, path in inputs.items() if path is not None})
    run = jobs.run(job, device=getattr(args, "device", None), describe=describe)
    last = []  # the last event, for on_done

    def kept(events):
        for event in events:
            last[:] = [event]
            yield event

    output, summary = _follow(kept(run), args, desc)
    page = os.path.join(output, "index.html")
    print(f"wrote {_shown(page if os.path.isfile(page) else output)}{summary}", file=sys.stderr)
    if on_done is not None:
        on_done(last[0])
    return 0


def command_line(job) -> str:
    """A command that makes the same job again: the recipe's command, its files and every setting not at its default."""
    recipe = job.settings.recipe
    words = ["dreamscope", "zoom" if recipe == "morph" else recipe]
    input_path = job.inputs.get("input")
    if input_path is not None:
        words.append(_argument_path(input_path))
    if job.output:
        folder = recipe == "probe" and not Path(job.output).suffix and not job.output.endswith("/")
        words += ["-o", _argument_path(job.output) + ("/" if folder else "")]
    for role in ("guide", "init"):
        if job.inputs.get(role):
            words += [f"--{role}", _argument_path(job.inputs[role])]
    changed = job.settings.changed()
    if recipe == "visualize":
        kind, target = job.settings.kind, job.settings.target
        words += [TARGET_FLAGS[kind], target]
        changed.pop("kind", None), changed.pop("target", None)
        param, robust = changed.pop("param", None), changed.pop("robust", True)
        if robust is False:  # the CLI turns the transforms off only with --no-priors, which also means pixels
            words.append("--no-priors")
        elif param is not None:
            words += ["--param", param]
    for name, value in changed.items():
        if value is True:
            words.append(flag_of(name))
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        words += [flag_of(name), "off" if value is None else str(value)]
    return _shown(shlex.join(words))


def _argument_path(path: str) -> str:
    """A path that can't be mistaken for an option: `-dash.png` becomes `./-dash.png`."""
    return f"./{path}" if str(path).startswith("-") else str(path)


def _cmd_dream(args) -> int:
    from .settings import DreamSettings

    settings = DreamSettings.build(None, _typed(args, DreamSettings))
    return _job(args, settings, {"input": args.input, "guide": args.guide}, "dreaming")


def _cmd_visualize(args) -> int:
    from .settings import VisualizeSettings

    fields = _typed(args, VisualizeSettings)
    if args.class_name is not None:
        fields.update(kind="class", target=args.class_name)
    elif args.sheet_layer is not None:
        fields.update(kind="channels", target=args.sheet_layer)
    else:
        fields.update(kind="neuron" if args.neuron else "channel", target=args.neuron or args.unit_channel)
    if args.no_priors:
        _refuse(args, ("param",), "cannot be combined with --no-priors, which means plain pixels")
        fields.update(param="pixels", robust=False)
    settings = VisualizeSettings.build(None, fields)
    on_done = _scores(args, settings) if args.score else None
    return _job(args, settings, {"init": args.init}, "visualizing", on_done=on_done)


def _scores(args, settings):
    """--score: the judge is loaded before the work (a missing one fails at once); after it, one line a picture."""
    from .quality import scorer

    _prepare(args)
    judge = scorer(settings, device=getattr(args, "device", None))

    def say(event):
        for number, result in enumerate(judge(event.picture), start=1):
            print(f"score{f' {number}' if event.picture.shape[0] > 1 else ''}: {result.summary()}", file=sys.stderr)

    return say


def _cmd_probe(args) -> int:
    from .images import OUTPUT_FORMATS
    from .settings import ProbeSettings

    settings = ProbeSettings.build(None, _typed(args, ProbeSettings))
    if args.output and Path(args.output).suffix.lower() in OUTPUT_FORMATS:
        shown = ("vis_size", "vis_steps", "exemplar_folder", "exemplar_count") + (("channels",) if settings.channels and "channels" in vars(args) else ())
        _refuse(args, shown, "does not apply to a contact sheet, which shows the dreams only")
    return _job(args, settings, {"input": args.input}, "probing", describe=command_line)


def _cmd_exemplars(args) -> int:
    from . import jobs
    from .settings import ExemplarsSettings

    settings = ExemplarsSettings.build(None, _typed(args, ExemplarsSettings))
    _prepare(args)
    run = jobs.exemplar_sheet(args.folder, settings, args.output, device=args.device)
    output, summary = _follow(run, args, "finding exemplars")
    print(f"wrote {_shown(output)}{summary}", file=sys.stderr)
    return 0


def _cmd_atlas(args) -> int:
    from . import atlas_report
    from .errors import UsageError
    from .recipes import atlas
    from .settings import AtlasSettings

    fields = _typed(args, AtlasSettings)
    sources = [Path(given) for given in args.folder]
    saved = [p for p in sources if p.suffix.lower() == ".npz"]
    if saved and len(saved) < len(sources) or len(sources) > 1 and not saved:
        raise UsageError("give one folder of pictures, or one or more collections (.npz), not both")
    if (args.ray is not None or args.workers is not None) and (args.shard is not None or saved):
        raise UsageError(f"{'--ray' if args.ray is not None else '--workers'} runs the collection of a folder's pictures; "
                         f"{'--shard collects one part itself' if args.shard is not None else 'these collections are already made'}")
    if args.shard is not None:
        return _atlas_shard(args, sources, fields)
    collection = atlas.Collection.concatenate([atlas.Collection.load(p) for p in saved]) if saved else None
    if collection is not None:
        fields.setdefault("model", collection.model)
        fields.setdefault("layer", collection.layer)
    settings = AtlasSettings.build(None, fields)
    output = args.output or _atlas_name(sources[0], collection, settings)
    atlas_report.check_atlas_folder(output)  # before the work, not after it
    _prepare(args)
    parts = None
    if collection is None and (args.ray is not None or args.workers is not None):
        collection, parts = _atlas_collection(args, sources[0], settings, output)
    run = atlas.atlas_iter(None if collection else sources[0], settings, collection=collection, device=args.device)
    result, _ = _follow(run, args, "atlas")
    words = ["dreamscope", "atlas", *(_argument_path(str(p)) for p in sources), "-o", _argument_path(output.rstrip("/") + "/")]
    for name, value in settings.changed().items():
        words += [flag_of(name), str(value)]
    atlas_report.write_atlas(result, output, command=" ".join(words))
    if parts is not None:
        import shutil

        shutil.rmtree(parts, ignore_errors=True)  # the collection is in the atlas now
    _skipped_note(result.collection.skipped, "(reasons in the page)")
    print(f"wrote {_shown(os.path.join(output, 'index.html'))} ({result.kind} of {len(result.cells)} cells from "
          f"{len(result.selected):,} vectors of {len(result.collection.files) - len(result.collection.skipped):,} pictures)",
          file=sys.stderr)
    return 0


def _atlas_collection(args, folder: Path, settings, output: str):
    """An atlas's collection as batch work, in shards kept beside the atlas until it is written (a rerun after
    an interruption keeps the shards already made)."""
    from . import batch
    from .errors import DreamscopeError
    from .recipes import atlas

    parts = Path(output).resolve().parent / f".{Path(output).resolve().name}.collection"
    items = atlas.collection_items(folder, settings, parts)
    run = batch.run_batch(items, batch.engine_for(args.ray, args.workers), summary=parts / batch.SUMMARY,
                          describe={"command": "atlas collection", "folder": str(folder.resolve()), "settings": settings.to_json()})
    result = _follow_batch(run, args, "collecting")
    if result.failures:
        first = result.failures[0]
        raise DreamscopeError(f"{len(result.failures)} of {len(items)} collection shards failed ({first.name}: {first.message}); "
                              f"run the same command again to retry them (the others are kept in {_shown(parts)})")
    return atlas.join_parts(items), parts


def _atlas_shard(args, sources, fields) -> int:
    """`atlas FOLDER --shard I/N -o shard.npz`: one shard's collection, nothing else."""
    from . import images
    from .errors import UsageError
    from .recipes import atlas
    from .settings import AtlasSettings

    try:
        number, count = (int(part) for part in args.shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard must be I/N, e.g. 0/8, got {args.shard!r}") from None
    if not 0 <= number < count:
        raise UsageError(f"--shard {args.shard} does not exist: I goes from 0 to N-1")
    if len(sources) != 1 or sources[0].suffix.lower() == ".npz":
        raise UsageError("--shard collects from one folder of pictures")
    only_layout = [name for name in ("grid", "min_count", "class_name", "compare", "keep", "icon_size", "icon_steps", "neighbours",
                                     "exemplars_per_cell") if name in fields]
    if only_layout:
        raise UsageError(f"{flag_of(only_layout[0])} does not apply to --shard, which only collects; give it when joining the shards")
    output = Path(args.output or f"{sources[0].resolve().name}-shard-{number}-of-{count}.npz")
    if output.suffix.lower() != ".npz":
        raise UsageError(f"with --shard, -o names the .npz file to write, got {_shown(output)}")
    images.check_folder(output.parent)
    settings = AtlasSettings.build(None, fields)
    _prepare(args)
    collection, _ = _follow(atlas.collect_iter(sources[0], settings=settings, shard=(number, count), device=args.device), args,
                            f"shard {number}/{count}")
    collection.save(output)
    _skipped_note(collection.skipped)
    print(f"wrote {_shown(output)} ({len(collection):,} vectors of {len(collection.files) - len(collection.skipped):,} pictures, "
          f"shard {number} of {count})", file=sys.stderr)
    return 0


def _skipped_note(skipped, where: str = "") -> None:
    if skipped:
        names = ", ".join(_shown(name) for name, _ in skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        _say(f"note: skipped {len(skipped)} file(s) that could not be read: {names}" + (f" {where}" if where else ""))


def _atlas_name(source: Path, collection, settings) -> str:
    """NAME-atlas/ in the current folder; a class atlas or a comparison adds its classes."""
    name = Path(collection.root).name if collection is not None else source.resolve().name
    classes = settings.class_name or (settings.compare or "").replace(",", "-vs-")
    suffix = "-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in classes) if classes else ""
    return f"{name or 'pictures'}-atlas{suffix}"


def _patch_source(text: str):
    """(name, picture, atlas folder or None) for --icon / --control: ATLAS:CELL or a picture file."""
    from . import atlas_report, images

    folder, _, cell = text.rpartition(":")
    if folder and not os.path.exists(text) and os.path.isdir(folder):
        found, icon = atlas_report.cell_icon(folder, cell)
        return f"cell {found['name']}", icon, folder
    return os.path.basename(text), images.load_image(text, "patch picture"), None


def _cmd_patch(args) -> int:
    from . import images
    from .recipes import patch
    from .settings import PatchSettings

    settings = PatchSettings.build(None, _typed(args, PatchSettings))
    name, icon, atlas_folder = _patch_source(args.icon)
    controls = dict(_patch_source(text)[:2] for text in args.control)
    if not args.control and atlas_folder is not None:
        from . import atlas_report

        other = atlas_report.unrelated(atlas_folder, settings.from_class, settings.to_class)
        if other is not None and f"cell {other}" != name:
            controls[f"cell {other}"] = atlas_report.cell_icon(atlas_folder, other)[1]
    if args.output:
        out = Path(args.output)
        if out.exists() and not out.is_dir():
            from .errors import UsageError

            raise UsageError(f"-o must be a folder (for result.json and examples.png), but {_shown(out)} is a file")
        images.check_folder(out.parent if not out.exists() else out)
    photos = []
    for given in args.photos:
        photos += images.picture_files(given) if os.path.isdir(given) else [Path(given)]
    _prepare(args)
    run = patch.patch_iter(photos, icon, settings, controls=controls, device=args.device)
    result, _ = _follow(run, args, "patching")
    labels = {"icon": f"{name} (the icon)", patch.NOISE: "noise (control)", **{c: f"{c} (control)" for c in controls}}
    print(f"patch experiment: {result.from_label} -> {result.to_label}: {len(result.trials)} view(s) called {result.from_label} "
          f"(of {result.views} tried), patch {settings.size:.0%} of the side, {settings.place} place")
    header = ["patch", f"flips to {result.to_label}", f"mean p({result.to_label})", f"still {result.from_label}"]
    rows = [[labels[row["patch"]], f"{row['flips']}/{row['trials']} ({row['flip_rate']:.0%})", f"{row['mean_probability']:.3f}",
             str(row["still_from_class"])] for row in result.table()]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(4)]
    for line in [header, *rows]:
        print("  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]))
    _skipped_note(result.skipped)
    if args.output:
        _write_patch_result(result, labels, Path(args.output))
        print(f"wrote {_shown(Path(args.output) / 'result.json')} and examples.png", file=sys.stderr)
    return 0


def _write_patch_result(result, labels: dict, folder: Path) -> None:
    import json

    from . import images
    from .recipes.visualize import contact_sheet

    folder.mkdir(exist_ok=True)
    data = {"from": result.from_label, "to": result.to_label, "settings": result.settings.to_json(), "views_tried": result.views,
            "rates": result.table(), "skipped": [{"file": f, "why": w} for f, w in result.skipped],
            "trials": [{"file": t.file, "view": t.view, "box": list(t.box), "before": round(t.before, 4),
                        "after": {k: {"top": top, "p_to": round(p, 4)} for k, (top, p) in t.after.items()}} for t in result.trials]}
    images.write_file(folder / "result.json", lambda handle: handle.write(json.dumps(data, indent=1, ensure_ascii=False).encode()))
    names = list(result.examples)
    sheet = contact_sheet([result.examples[n] for n in names], columns=len(names), labels=[labels[n] for n in names])
    images.save_image(sheet, folder / "examples.png")


def _engine(args):
    from . import batch

    return batch.engine_for(args.ray, args.workers, args.threads)


def _absolute(fields: dict, *names: str) -> dict:
    """Paths in settings made absolute: a worker may run in another folder (or on another node)."""
    return {name: os.path.abspath(value) if name in names and isinstance(value, str) else value for name, value in fields.items()}


def _follow_batch(run, args, desc: str):
    """A batch's events with one bar over all items; failures are printed as they come."""
    from . import batch

    try:
        result, _ = _follow(run, args, desc)
    except KeyboardInterrupt:
        raise batch.Stopped() from None
    return result


def _batch_summary(result, output, what: str) -> int:
    done, skipped, failed = result.count("done"), result.count("skipped"), result.failures
    parts = [f"{done} made"] + ([f"{skipped} already done"] if skipped else []) + ([f"{len(failed)} failed"] if failed else [])
    print(f"{what} in {_shown(output)}: {', '.join(parts)} ({result.engine}, {result.seconds:.0f} s); "
          f"every item in {_shown(os.path.join(output, 'batch.json'))}", file=sys.stderr)
    return 1 if failed else 0  # each failure was a note as it came; batch.json lists them all


def _cmd_batch(args) -> int:
    from . import batch
    from .settings import DreamSettings, ProbeSettings

    cls = {"dream": DreamSettings, "probe": ProbeSettings}[args.recipe]
    settings = cls.build(None, _absolute(_typed(args, cls), "weights", "exemplar_folder"))
    items = batch.folder_jobs(args.folder, settings, args.output)
    _prepare(args)
    run = batch.run_batch(items, _engine(args), threads=args.threads, summary=os.path.join(args.output, batch.SUMMARY),
                          describe={"command": f"batch {args.recipe}", "folder": os.path.abspath(args.folder), "settings": settings.to_json()})
    result = _follow_batch(run, args, f"batch {args.recipe}")
    return _batch_summary(result, args.output, f"{len(items)} {'dreams' if args.recipe == 'dream' else 'probe reports'}")


def _cmd_microscope(args) -> int:
    from .recipes import microscope
    from .settings import MicroscopeSettings

    settings = MicroscopeSettings.build(None, _absolute(_typed(args, MicroscopeSettings), "weights", "exemplar_folder"))
    run = microscope.microscope_iter(settings, args.output, engine=_engine(args), threads=args.threads)
    result = _follow_batch(run, args, "microscope")
    code = _batch_summary(result.batch, args.output, f"microscope of {result.channels:,} channels")
    print(f"wrote {_shown(os.path.join(args.output, 'index.html'))}", file=sys.stderr)
    return code


def _cmd_zoom(args) -> int:
    from . import jobs
    from .errors import UsageError
    from .settings import MorphSettings, ZoomSettings

    zoom_only = set(ZoomSettings.field_names()) - set(MorphSettings.field_names())
    morph_only = (set(MorphSettings.field_names()) - set(ZoomSettings.field_names())) - {"classes"}
    if args.resume:
        if args.input or args.output or "classes" in vars(args) or args.guide or args.init:
            raise UsageError("--resume continues its video in place with the settings recorded in it: give only --frames "
                             "(and --device, --threads, -q)")
        _refuse(args, (set(ZoomSettings.field_names()) | set(MorphSettings.field_names())) - {"frames"},
                "cannot change when resuming: the zoom continues with the settings recorded in its video (only --frames can)")
        _prepare(args)
        run = jobs.resume_zoom(args.resume, vars(args).get("frames"), device=args.device)
        output, summary = _follow(run, args, "zooming")
        print(f"wrote {_shown(output)}{summary}", file=sys.stderr)
        return 0
    if "classes" in vars(args):
        if args.input or args.guide:
            raise UsageError("--morph grows pictures from noise: it takes no input picture or --guide (--init starts from a photo)")
        _refuse(args, zoom_only, "does not apply to zoom --morph, which grows pictures from noise (see: dreamscope zoom --help)")
        settings = MorphSettings.build(None, _typed(args, MorphSettings))
        return _job(args, settings, {"init": args.init}, "morphing")
    if not args.input:
        raise UsageError("give a picture to start from, --resume VIDEO or --morph CLASS,CLASS")
    _refuse(args, morph_only, "applies only with --morph")
    if args.init:
        raise UsageError("--init applies only with --morph (a zoom starts from its INPUT picture)")
    settings = ZoomSettings.build(None, _typed(args, ZoomSettings))
    return _job(args, settings, {"input": args.input, "guide": args.guide}, "zooming")


def _cmd_video(args) -> int:
    from .settings import VideoSettings

    settings = VideoSettings.build(None, _typed(args, VideoSettings))
    return _job(args, settings, {"input": args.input, "guide": args.guide}, "dreaming video")


def _cmd_redo(args) -> int:
    from . import jobs, provenance

    # The thread count changes how sums are split, hence the last bits: redo with the recorded one.
    runtime.configure(args.threads or provenance.read(args.original).threads)
    given = {role: getattr(args, f"given_{role}") for role in ("input", "guide", "init") if getattr(args, f"given_{role}")}
    device = None if args.device == "auto" else args.device
    run = jobs.redo(args.original, args.output, inputs=given, device=device, describe=command_line)
    output, _ = _follow(run, args, "redoing")
    verdict = {"identical": "identical to", "same pictures": "the same pictures as", "a folder": "the same job as",
               "different": "made again from"}[jobs.compare(args.original, output)]
    print(f"wrote {_shown(output)}: {verdict} {_shown(args.original)}" + ("" if verdict != "made again from" else
          " (not the same pixels: another machine, device or library version rounds differently)"), file=sys.stderr)
    return 0


def _cmd_layers(args) -> int:
    from .models import DEFAULT_MODEL, list_layers

    listing = list_layers(getattr(args, "model", DEFAULT_MODEL), weights=getattr(args, "weights", None))  # structure alone
    rows = [
        {"name": info.name, "channels": info.channels, "stride": info.stride, "default": info.name == listing.default_layer}
        for info in listing.layers.values()
    ]
    refused = [{"name": name, "dreamable": False, "reason": reason} for name, reason in listing.not_dreamable.items()]
    if args.json:
        print(json.dumps(rows + refused, indent=2))
    else:
        width = max([12, *(len(row["name"]) + 2 for row in rows)])
        print(f"{'layer':<{width}}{'channels':>9}{'stride':>8}")
        for row in rows:
            print(f"{row['name']:<{width}}{row['channels']:>9}{row['stride']:>8}{'  (default)' if row['default'] else ''}")
        if refused:
            print("\nnot dreamable:")
            for row in refused:
                print(f"{row['name']:<{width}}{row['reason']}")
    return 0


def _cmd_classes(args) -> int:
    from .errors import DreamscopeError
    from .models import DEFAULT_MODEL, class_names

    name = getattr(args, "model", DEFAULT_MODEL)
    names, count = class_names(name, weights=getattr(args, "weights", None))
    if names is None:
        raise DreamscopeError(f"model {name} has {count} classes of its own, without names here: give a class index from 0 to {count - 1}")
    rows = [{"index": i, "label": label} for i, label in enumerate(names)
            if not args.search or args.search.lower() in label.lower()]
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

    from .models.download import fetch_weights

    with tqdm(disable=True if args.quiet else None, file=sys.stderr, leave=False, desc=f"downloading {args.download}",
              unit="B", unit_scale=True, unit_divisor=1024) as bar:
        def progress(done: int, total: int | None) -> None:
            if bar.total != total:  # known from the server's first answer
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        fetched = fetch_weights(args.download, url=args.url, sha256=args.sha256, progress=progress)
    state = "already present" if fetched.already_present else "wrote"
    print(f"{state} {fetched.path} ({fetched.size / 2**20:.1f} MiB, SHA-256 {fetched.sha256})", file=sys.stderr)
    return 0


def _cmd_models(args) -> int:
    from .errors import UsageError
    from .models import DEFAULT_MODEL, REGISTRY

    if args.download:
        return _download(args)
    if args.url or args.sha256:
        raise UsageError("--url and --sha256 go with --download NAME (see: dreamscope models --help)")
    rows = [
        {"name": spec.name, "weights_present": spec.weights.present(), "how_to_get": spec.weights.how_to_get(),
         "description": spec.description, "default": spec.name == DEFAULT_MODEL}
        for spec in REGISTRY.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = "weights present" if row["weights_present"] else f"weights missing: {row['how_to_get']}"
            print(f"{row['name']:<20}{row['description']:<38}{state}{'  (default)' if row['default'] else ''}")
    return 0


def _cmd_classify(args) -> int:
    from . import images
    from .recipes.classify import classify
    from .settings import ClassifySettings

    settings = ClassifySettings.build(None, _typed(args, ClassifySettings))
    _prepare(args)
    predictions = classify(images.load_image(args.input), settings, device=args.device)
    if args.json:
        print(json.dumps([{"index": p.index, "label": p.label, "probability": p.probability} for p in predictions], indent=2))
    else:
        for p in predictions:
            print(f"{p.probability:7.2%}  {p.label} ({p.index})")
    return 0


def _cmd_sample(args) -> int:
    from PIL import Image

    from . import images
    from .errors import DreamscopeError

    images.check_output_path(args.output)
    try:
        from skimage import data
    except ImportError:
        raise DreamscopeError("sample photos come from scikit-image; run: pip install scikit-image") from None
    images.save_image(Image.fromarray(getattr(data, args.name)()), args.output)
    print(f"wrote {_shown(args.output)}", file=sys.stderr)
    return 0


def _cmd_studio(args) -> int:
    import math

    from .errors import UsageError

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535 (0: any free one), got {args.port}")
    if args.max_upload_mb is not None and not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise UsageError(f"--max-upload-mb must be a number of megabytes above 0, got {args.max_upload_mb:g}")
    if args.token is not None and not (args.token.isascii() and args.token.isprintable() and args.token.strip() == args.token
                                       and args.token and ";" not in args.token and "," not in args.token):
        raise UsageError("--token must be printable ASCII without spaces, commas or semicolons (it goes into a cookie)")
    if args.data is not None and Path(args.data).expanduser().exists() and not Path(args.data).expanduser().is_dir():
        raise UsageError(f"--data must be a folder; {_shown(args.data)} is a file")
    from .studio import server

    return server.serve(host=args.host, port=args.port, data=args.data, open_browser=args.open, token=args.token,
                        model=getattr(args, "model", server.DEFAULT_MODEL), weights=getattr(args, "weights", None),
                        device=args.device, threads=args.threads, max_upload_mb=args.max_upload_mb)


def _terminate(_signum, _frame):
    """SIGTERM is handled like Ctrl-C: temporary files are removed, a zoom keeps its frames and says how to resume."""
    raise KeyboardInterrupt


def _load_torch() -> None:
    """Import torch with Ctrl-C and SIGTERM held back: an interrupt inside a C extension's start-up leaves it half
    initialized (a SystemError, not a KeyboardInterrupt). One that arrives meanwhile is raised once it is loaded."""
    if "torch" in sys.modules:
        return
    arrived = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: arrived.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        import torch  # noqa: F401
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    wording = flag_of
    try:
        args = build_parser().parse_args(argv)
        wording = _wording(args)
        if args.command not in ("models", "sample"):
            _load_torch()
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not as a traceback at exit
        return code
    except KeyboardInterrupt as exc:
        from .jobs import Interrupted

        from .batch import Stopped

        if isinstance(exc, Stopped):
            print("error: interrupted; the outputs finished so far are kept: run the same command again to do the rest",
                  file=sys.stderr)
        elif isinstance(exc, Interrupted):
            how = (f"finish it with: dreamscope zoom --resume {_argument_path(_shown(exc.output))}" if exc.resumable
                   else "a morph cannot be resumed")
            print(f"error: interrupted; wrote the {exc.frames} frames done to {_shown(exc.output)}; {how}", file=sys.stderr)
        else:
            print("error: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped early (`dreamscope layers | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - a user's mistake is one line; anything else is a real bug
        from .errors import DreamscopeError

        if isinstance(exc, DreamscopeError):
            print(f"error: {exc.worded(wording)}", file=sys.stderr)
            return exc.exit_code
        if isinstance(exc, MemoryError):
            print("error: out of memory; use a smaller --tile or --max-size", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
