"""How a job is spelled on a command line: each settings field's flag and how it is typed, and a Job spelled as the
command that makes it again (`command_line`, what a probe report or an atlas page shows under "Reproduce it").

The command line builds its parser from these tables; the studio spells its jobs with them. Flags are the fields'
names (`--octave-scale` is `octave_scale`) except where the table says otherwise, so the library's messages, which
name fields, are shown with flags (`flag_of`). Torch-free, like the catalogue.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..fields import PRECISIONS, VIEWS, Choice, Flag, Number, Whole
from ..settings import settings_class
from . import catalogue


def whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def tile(text: str):
    if text.lower() in ("auto", "off", "none"):
        return text.lower()
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a tile size in px, got '{text}'") from None


# How each settings field is typed on the command line: (flag, argparse options). A field not here has no flag of
# its own (visualize's kind and target come from --class, --channel, --neuron or --channels: `CHOICES`).
FLAGS = {
    "model": ("--model", dict(metavar="NAME")),
    "weights": ("--weights", dict(metavar="FILE")),
    "seed": ("--seed", dict(type=whole, metavar="N")),
    "layer": ("--layer", dict(action="append", metavar="NAME[=WEIGHT]")),
    "channels": ("--channels", dict(metavar="SPEC")),
    "octaves": ("--octaves", dict(type=whole, metavar="N")),
    "octave_scale": ("--octave-scale", dict(type=real, metavar="F")),
    "steps": ("--steps", dict(type=whole, metavar="N")),
    "step_size": ("--step-size", dict(type=real, metavar="F")),
    "jitter": ("--jitter", dict(type=whole, metavar="PX")),
    "max_size": ("--max-size", dict(type=whole, metavar="PX")),
    "tile": ("--tile", dict(type=tile, metavar="auto|off|PX")),
    "precision": ("--precision", dict(choices=PRECISIONS, metavar="|".join(PRECISIONS))),
    "view": ("--view", dict(choices=VIEWS, metavar="|".join(VIEWS))),
    "grid": ("--grid", dict(type=whole, metavar="N")),
    "samples": ("--samples", dict(type=whole, metavar="N")),
    "diversity": ("--diversity", dict(type=real, metavar="F")),
    "diversity_layer": ("--diversity-layer", dict(metavar="NAME")),
    "size": ("--size", dict(type=whole, metavar="PX")),
    "learning_rate": ("--learning-rate", dict(type=real, metavar="F")),
    "frames": ("--frames", dict(type=whole, metavar="N")),
    "zoom": ("--zoom", dict(type=real, metavar="F")),
    "rotate": ("--rotate", dict(type=real, metavar="DEG")),
    "fps": ("--fps", dict(type=real, metavar="F")),
    "layers": ("--layers", dict(metavar="A,B,...")),
    "every": ("--every", dict(type=whole, metavar="N")),
    "classes": ("--morph", dict(metavar="CLASS,CLASS")),
    "warmup": ("--warmup", dict(type=whole, metavar="N")),
    "frame_steps": ("--frame-steps", dict(type=whole, metavar="N")),
    "blend": ("--blend", dict(type=real, metavar="F")),
    "vis_size": ("--vis-size", dict(type=whole, metavar="PX")),
    "vis_steps": ("--vis-steps", dict(type=whole, metavar="N")),
    "top": ("--top", dict(type=whole, metavar="K")),
    "exemplar_folder": ("--exemplars", dict(metavar="FOLDER")),
    "exemplar_count": ("--exemplar-count", dict(type=whole, metavar="K")),
    "units": ("--channel", dict(action="append", metavar="LAYER:INDEX")),
    "count": ("--count", dict(type=whole, metavar="K")),
    "side": ("--side", dict(type=whole, metavar="PX")),
    "block": ("--block", dict(type=whole, metavar="N")),
    "param": ("--param", dict(choices=("fft", "maco", "pixels"))),
    "accentuate": ("--accentuate", dict(action="store_true")),
    "transparency": ("--transparency", dict(action="store_true")),
    "closeness": ("--closeness", dict(type=real, metavar="F")),
    "closeness_layer": ("--closeness-layer", dict(metavar="NAME")),
    "class_name": ("--class", dict(metavar="NAME")),
    "compare": ("--compare", dict(metavar="A,B")),
    "positions": ("--positions", dict(type=whole, metavar="K")),
    "min_count": ("--min-count", dict(type=whole, metavar="N")),
    "keep": ("--keep", dict(type=real, metavar="F")),
    "icon_size": ("--icon-size", dict(type=whole, metavar="PX")),
    "icon_steps": ("--icon-steps", dict(type=whole, metavar="N")),
    "neighbours": ("--neighbours", dict(type=whole, metavar="N")),
    "exemplars_per_cell": ("--exemplars-per-cell", dict(type=whole, metavar="N")),
    "from_class": ("--from", dict(metavar="CLASS")),
    "to_class": ("--to", dict(metavar="CLASS")),
    "place": ("--place", dict(choices=("random", "corner", "centre"))),
    "views": ("--views", dict(type=whole, metavar="N")),
}
# A field typed differently by one recipe: probe's channels is a count, dream's a choice of channels.
RECIPE_FLAGS = {
    ("probe", "channels"): ("--channels", dict(type=whole, metavar="N")),
    ("microscope", "channels"): ("--channels", dict(metavar="RANGES")),
    ("atlas", "layer"): ("--layer", dict(metavar="NAME")),
    ("patch", "size"): ("--size", dict(type=real, metavar="F")),
    ("explain", "layer"): ("--layer", dict(metavar="NAME")),
    ("explain", "targets"): ("--classes", dict(metavar="top:N|NAME,...")),
    ("explain", "lower_layer"): ("--lower-layer", dict(metavar="NAME|none")),
    ("explain", "microscope"): ("--microscope", dict(metavar="SITE")),
}
# Help in the command line's own words, where the field's does not fit a flag that can be repeated.
EXTRA_HELP = {
    "units": "a channel to find exemplars of, as LAYER:INDEX (e.g. stage4.2:17); repeat it, or comma-separate, "
    "for a row per channel"
}


@dataclass(frozen=True)
class ChosenBy:
    """A setting (`field`) given by one of several flags, each of which also fixes another setting (`by`): visualize's
    --class NAME means kind=class, target=NAME. (flag, its value of `by`, argparse dest, metavar, help) per flag."""

    field: str
    by: str
    flags: tuple[tuple[str, str, str, str, str], ...]


@dataclass(frozen=True)
class Preset:
    """A flag that sets several settings at once (visualize's --no-priors: plain pixels, no transforms). A job whose
    settings have `when` is spelled with it."""

    flag: str
    dest: str
    sets: dict
    when: dict
    help: str


CHOICES = {
    "visualize": ChosenBy(
        "target",
        "kind",
        (
            ("--class", "class", "class_name", "NAME", "class name or index, e.g. banana (see: dreamscope classes)"),
            ("--channel", "channel", "unit_channel", "LAYER:INDEX", "one channel of a layer, e.g. stage5.2:17"),
            ("--neuron", "neuron", "neuron", "LAYER:INDEX", "the centre unit of a channel"),
            ("--channels", "channels", "sheet_layer", "LAYER", "contact sheet of a layer's first --grid channels"),
        ),
    )
}
PRESETS = {
    "visualize": (
        Preset(
            "--no-priors",
            "no_priors",
            {"param": "pixels", "robust": False},
            {"robust": False},
            "plain pixels and no transforms: shows the adversarial noise the priors prevent",
        ),
    )
}


def flag(recipe: str, field: str) -> tuple[str, dict] | None:
    """(flag, argparse options) of a recipe's settings field, or None when it has no flag of its own: the tables'
    spelling, else `--the-name` typed as its check says (a new recipe's new settings need no entry here)."""
    if (recipe, field) in RECIPE_FLAGS or field in FLAGS:
        return RECIPE_FLAGS.get((recipe, field), FLAGS.get(field))
    choice = CHOICES.get(recipe)
    if choice is not None and field in (choice.field, choice.by):
        return None
    found = next((f for f in dataclasses.fields(settings_class(recipe)) if f.name == field), None)
    if found is None:
        return None
    check, spelled = found.metadata.get("check"), "--" + field.replace("_", "-")
    if isinstance(check, Flag):  # a switch that is on by default has no flag to turn it on
        return (spelled, dict(action="store_true")) if found.default is False else None
    if isinstance(check, Whole):
        return spelled, dict(type=whole, metavar="N")
    if isinstance(check, Number):
        return spelled, dict(type=real, metavar="F")
    if isinstance(check, Choice):
        return spelled, dict(choices=check.options)
    return spelled, dict(metavar="TEXT")


def flag_of(field: str) -> str:
    """The flag a settings field (or an input role, or the output) is typed with; how the CLI words the library's
    messages."""
    if field == "input":
        return "INPUT"
    if field == "output":
        return "-o"
    if field in FLAGS:
        return FLAGS[field][0]
    for (_recipe, name), (spelled, _options) in RECIPE_FLAGS.items():
        if name == field:
            return spelled
    for recipe in catalogue.RECIPES.values():  # an input given by a flag (--guide, --icon)
        for spec in recipe.inputs:
            if spec.role == field and spec.flag:
                return spec.flag
    return "--" + field.replace("_", "-")


def argument_path(path: str) -> str:
    """A path that can't be mistaken for an option: `-dash.png` becomes `./-dash.png`."""
    return f"./{path}" if str(path).startswith("-") else str(path)


def command_line(job) -> str:
    """A command that makes the same job again: the recipe's command, its files and every setting not at its default."""
    from ..io.files import shown

    recipe = catalogue.get(job.settings.recipe)
    words = ["dreamscope", recipe.cli_command]
    for spec in recipe.inputs:
        given = job.inputs.get(spec.role)
        if spec.flag is None and given:
            words += [argument_path(path) for path in (given if spec.many else [given])]
    if job.output:
        folder = recipe.output.kind == "folder" and not Path(job.output).suffix and not job.output.endswith("/")
        words += ["-o", argument_path(job.output) + ("/" if folder else "")]
    for spec in recipe.inputs:
        given = job.inputs.get(spec.role)
        if spec.flag is not None and given:
            for path in given if spec.many else [given]:
                words += [spec.flag, argument_path(path)]
    changed = job.settings.changed()
    choice = CHOICES.get(recipe.name)
    if choice is not None:
        chosen = getattr(job.settings, choice.by)
        words += [next(flag for flag, value, *_ in choice.flags if value == chosen), getattr(job.settings, choice.field)]
        changed.pop(choice.by, None), changed.pop(choice.field, None)
    for preset in PRESETS.get(recipe.name, ()):
        if all(getattr(job.settings, name) == value for name, value in preset.when.items()):
            words.append(preset.flag)
            for name in preset.sets:
                changed.pop(name, None)
    for name, value in changed.items():
        if value is True:
            words.append(flag_of(name))
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        words += [flag_of(name), "off" if value is None else str(value)]
    return shown(shlex.join(words))
