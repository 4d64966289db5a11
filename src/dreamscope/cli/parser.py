"""The command line's parser, built from the recipe catalogue: a command per recipe (its inputs, output, settings
and run options, each flag typed as `work/flags.py` says), the few words a command adds of its own (`EXTRAS`), and
the commands that are not recipes (batch, redo, layers, classes, models, sample, studio)."""

from __future__ import annotations

import argparse
import dataclasses

from .. import runtime
from .. import settings as S
from ..errors import UsageError
from ..version import __version__
from ..work import catalogue
from ..work.flags import CHOICES, EXTRA_HELP, PRESETS, flag, real, whole
from . import commands

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error:` line on stderr (no usage block), exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _whole_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else whole(text)


def add_settings(parser, cls, exclude=(), only=None) -> None:
    """A flag per settings field of `cls`, with its help and default; typed values only reach the namespace."""
    for f in dataclasses.fields(cls):
        spelled = flag(cls.recipe, f.name)
        if spelled is None or f.name in exclude or (only is not None and f.name not in only):
            continue
        if any(f.name == action.dest for action in parser._actions):
            continue
        name, options = spelled
        default = "off" if f.name == "tile" and f.default is None else f.default
        text = EXTRA_HELP.get(f.name, f.metadata.get("help", ""))
        shown = "" if default is None else f" (default {default})"
        parser.add_argument(name, dest=f.name, default=argparse.SUPPRESS, help=text.replace("%", "%%") + shown, **options)


def add_run_options(parser, device: bool = True, threads: bool = True) -> None:
    if device:
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    if threads:
        parser.add_argument(
            "--threads",
            type=whole,
            metavar="N",
            help=f"CPU threads (default: ${runtime.ENV}, else one per core this process may use)",
        )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_engine_options(parser, run_options: bool = True) -> None:
    """Where batch work runs: this machine's processes (the default) or a Ray cluster."""
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="run on a Ray cluster: auto (the one this machine joined with `ray start`), local (a Ray instance "
        "started here for this run) or the head's HOST:PORT; inputs and outputs must be on storage every "
        "node sees at the same path",
    )
    engine.add_argument(
        "--workers",
        type=_whole_or_zero,
        metavar="N",
        help="worker processes on this machine (default: one per core; 0: in this process)",
    )
    if not run_options:
        return
    parser.add_argument(
        "--threads",
        type=whole,
        metavar="N",
        default=1,
        help="CPU threads per worker (default 1); the same on any engine, so outputs are identical",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# -- what some commands add to what their recipes' records give -------------------------------------------------


def _visualize_extras(parser) -> None:
    parser.add_argument(
        "--score",
        action="store_true",
        help="judge each class picture with a held-out network (its probability "
        "of the class on the picture, its mirror and a centre crop) and "
        "measure its colourfulness",
    )


def _zoom_extras(parser) -> None:
    parser.add_argument(
        "--resume", metavar="VIDEO", help="continue this zoom, in place, with its own settings, to --frames frames"
    )


def _atlas_extras(parser) -> None:
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="FOLDER|COLLECTION",
        help="folder of pictures, searched recursively (files that cannot be read are skipped and listed); or the "
        "collection.npz of an earlier atlas, or the shards written with --shard, to lay them out without "
        "reading the pictures",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="only collect, from every N-th picture starting at the I-th (0-based), and "
        "write the vectors to a .npz: N such jobs, on any machines, give the folder's "
        "whole collection",
    )


def _live_extras(parser) -> None:
    parser.add_argument(
        "input",
        nargs="?",
        help="video to replay as a camera, at its own frame rate in real time (MP4, MOV, MKV, WebM, GIF, ...)",
    )
    parser.add_argument(
        "--camera", type=_whole_or_zero, metavar="N", help="dream local camera N (through OpenCV) instead of a clip"
    )
    parser.add_argument("--seconds", type=real, metavar="S", help="with --camera: how long to dream it (default 10)")


def _classify_extras(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


# command -> (adds its own arguments, whether those include its inputs)
EXTRAS = {
    "visualize": (_visualize_extras, False),
    "zoom": (_zoom_extras, False),
    "atlas": (_atlas_extras, True),
    "classify": (_classify_extras, False),
    "live": (_live_extras, True),
}


def _recipe_commands() -> dict[str, list[catalogue.Recipe]]:
    """Commands in catalogue order, each with the recipes it runs (zoom runs zoom and, with --morph, morph)."""
    found: dict[str, list[catalogue.Recipe]] = {}
    for recipe in catalogue.RECIPES.values():
        found.setdefault(recipe.cli_command, []).append(recipe)
    return found


def _add_recipe_command(commands_parser, command: str, recipes: list[catalogue.Recipe]) -> None:
    first = recipes[0]
    sub = commands_parser.add_parser(command, help=first.help, description=first.description or None)
    extras, own_inputs = EXTRAS.get(command, (None, False))
    for recipe in recipes:
        choice = CHOICES.get(recipe.name)
        if choice is not None:
            group = sub.add_mutually_exclusive_group(required=True)
            for name, _value, dest, metavar, text in choice.flags:
                group.add_argument(name, dest=dest, metavar=metavar, help=text)
    specs = {spec.role: spec for recipe in recipes for spec in recipe.inputs}  # a role once, from its first recipe
    if not own_inputs:
        for spec in specs.values():
            if spec.flag is None:
                nargs = "+" if spec.many else "?" if len(recipes) > 1 or not spec.required else None
                sub.add_argument(spec.role, nargs=nargs, metavar=spec.metavar, help=spec.help)
    if first.output.kind != "none":
        sub.add_argument("-o", "--output", required=first.output.required, help=first.output.help)
    if not own_inputs:
        for spec in specs.values():
            if spec.flag is not None:
                options = dict(action="append", default=[]) if spec.many else dict(required=spec.required and len(recipes) == 1)
                sub.add_argument(spec.flag, dest=spec.role, metavar=spec.metavar, help=spec.help, **options)
    for recipe in recipes:
        for preset in PRESETS.get(recipe.name, ()):
            sub.add_argument(preset.flag, dest=preset.dest, action="store_true", help=preset.help)
    if extras is not None:
        extras(sub)
    for recipe in recipes:
        add_settings(sub, recipe.settings)
    if not first.engine:
        add_run_options(sub)
    elif first.job is not None and first.output.required:  # all its work is batch work: threads per worker
        add_engine_options(sub)
    else:  # its own work here, part of it batch work
        add_run_options(sub)
        add_engine_options(sub, run_options=False)
    sub.set_defaults(run=commands.HANDLERS.get(command, commands.run_recipe), recipes=[recipe.name for recipe in recipes])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dreamscope", description="Look inside image networks by making them dream.")
    parser.add_argument("--version", action="version", version=f"dreamscope {__version__}")
    commands_parser = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands_parser.required = True

    for command, recipes in _recipe_commands().items():
        _add_recipe_command(commands_parser, command, recipes)

    batch_recipes = [recipe for recipe in catalogue.RECIPES.values() if recipe.batch]
    ba = commands_parser.add_parser(
        "batch",
        help=f"{' or '.join(recipe.name for recipe in batch_recipes)} every picture of a folder, on this machine's "
        "cores or a Ray cluster",
        description="Run one recipe with one set of settings over every picture of a folder (recursively). Outputs are named "
        "after their inputs; a picture that fails is recorded and the batch goes on; running it again skips what is "
        "complete (by the record inside each output).",
    )
    recipes = ba.add_subparsers(dest="recipe", metavar="RECIPE", parser_class=Parser)
    recipes.required = True
    for recipe in batch_recipes:
        each = recipes.add_parser(recipe.name, help=recipe.batch_help)
        each.add_argument("folder", help="folder of pictures, searched recursively")
        each.add_argument(
            "-o", "--output", required=True, help="folder for the outputs (created if missing; may hold an earlier run's)"
        )
        add_settings(each, recipe.settings)
        add_engine_options(each)
    ba.set_defaults(run=commands.run_batch)

    redo = commands_parser.add_parser(
        "redo",
        help="make a picture (or video, or report) again from the record inside it",
        description="Re-run what made OUTPUT, from the settings, seed, model and input digests it "
        "carries; on the same machine the result has the same bytes.",
    )
    redo.add_argument("original", metavar="OUTPUT", help="a picture, video, frames folder or probe report dreamscope wrote")
    redo.add_argument("-o", "--output", help="where to write (default: NAME_redo.EXT beside it)")
    for role in ("input", "guide", "init"):
        redo.add_argument(f"--{role}", dest=f"given_{role}", metavar="PATH", help=f"the {role} file, if it moved")
    add_run_options(redo)
    redo.set_defaults(run=commands.redo)

    lay = commands_parser.add_parser("layers", help="list a model's dreamable layers")
    add_settings(lay, S.Settings, only=("model", "weights"))
    lay.add_argument("--json", action="store_true", help="machine-readable output")
    lay.set_defaults(run=commands.layers)

    cl = commands_parser.add_parser("classes", help="list the class names --class and --morph accept")
    add_settings(cl, S.Settings, only=("model", "weights"))
    cl.add_argument("--search", metavar="TEXT", help="only classes whose name contains TEXT")
    cl.add_argument("--json", action="store_true", help="machine-readable output")
    cl.set_defaults(run=commands.classes)

    mod = commands_parser.add_parser("models", help="list registered models and whether their weights are present")
    mod.add_argument("--json", action="store_true", help="machine-readable output")
    mod.add_argument("--download", metavar="NAME", help="fetch a model's weights into the cache folder (e.g. googlenet)")
    mod.add_argument(
        "--url", help="with --download: fetch from this address instead (default: $DREAMSCOPE_<MODEL>_URL or the known one)"
    )
    mod.add_argument(
        "--sha256", metavar="HEX", help="with --download: the SHA-256 the file must have (replaces the known digest)"
    )
    add_run_options(mod, device=False, threads=False)
    mod.set_defaults(run=commands.models)

    smp = commands_parser.add_parser("sample", help="write one of scikit-image's sample photos, to try things on")
    smp.add_argument("name", choices=SAMPLES, help="which photo")
    smp.add_argument("output", help="where to write it (.png, .jpg, ...)")
    smp.set_defaults(run=commands.sample)

    std = commands_parser.add_parser(
        "studio",
        help="a local web app: dream, zoom and probe in your browser",
        description="Serve dreamscope studio, a web page for every recipe with live previews and a "
        "queue of jobs, on this machine (127.0.0.1 unless --host says otherwise).",
    )
    std.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; "
        "any other needs a token, made up when --token is not given)",
    )
    std.add_argument("--port", type=whole, default=8765, metavar="N", help="port (default 8765; 0: any free one)")
    std.add_argument(
        "--data",
        metavar="DIR",
        help="folder for uploads, results and the job queue "
        "(default $XDG_DATA_HOME/dreamscope/studio, else ~/.local/share/dreamscope/studio)",
    )
    std.add_argument("--open", action="store_true", help="open the page in a browser")
    std.add_argument("--token", metavar="T", help="require this token (opening the printed address once sets it)")
    add_settings(std, S.Settings, only=("model", "weights"))
    std.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    std.add_argument(
        "--threads",
        type=whole,
        metavar="N",
        help=f"CPU threads (default: ${runtime.ENV}, else one per core this process may use)",
    )
    std.add_argument(
        "--max-upload-mb", type=real, metavar="N", help="largest upload in MB (default: 50 for pictures, 500 for videos)"
    )
    std.set_defaults(run=commands.studio)
    return parser
