"""The README's option tables, made from the recipe catalogue and the settings themselves (defaults, limits, help),
so they cannot drift. A recipe gets a table where README.md has its marker, `<!-- options:NAME -->`.

    .venv/bin/python docs/option_tables.py          # rewrites the tables in README.md between their markers
    .venv/bin/python docs/option_tables.py --check  # exit 1 if README.md is out of date (tests/test_readme.py)
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from dreamscope import settings as S
from dreamscope.work import catalogue
from dreamscope.work.flags import EXTRA_HELP, flag

README = Path(__file__).resolve().parent.parent / "README.md"

# The fields a recipe's table shows, in this order, where it is not every field that has a flag; "differs": those
# that are new or have another default than dream's, so a table only lists what differs.
SHOWN = {
    "dream": [
        "layer",
        "channels",
        "octaves",
        "octave_scale",
        "steps",
        "step_size",
        "jitter",
        "max_size",
        "tile",
        "precision",
        "seed",
        "model",
        "weights",
    ],
    "visualize": [
        "param",
        "decay",
        "samples",
        "diversity",
        "grid",
        "size",
        "steps",
        "learning_rate",
        "transparency",
        "accentuate",
        "closeness",
        "closeness_layer",
        "view",
        "views",
        "crop",
        "confidence",
        "skip_gradient",
        "precision",
        "seed",
    ],
    "zoom": "differs",
    "morph": ["classes", "size", "steps", "warmup", "learning_rate", "score", "precision"],
    "video": "differs",
    "probe": [
        "layers",
        "channels",
        "octaves",
        "steps",
        "max_size",
        "precision",
        "vis_size",
        "vis_steps",
        "exemplar_folder",
        "exemplar_count",
    ],
    "atlas": [
        "layer",
        "grid",
        "positions",
        "side",
        "min_count",
        "class_name",
        "compare",
        "keep",
        "icon_size",
        "icon_steps",
        "precision",
        "neighbours",
        "exemplars_per_cell",
        "seed",
        "model",
        "weights",
    ],
    "patch": ["from_class", "to_class", "size", "place", "views", "side", "seed", "model", "weights"],
    "exemplars": ["units", "count", "side", "vis_size", "vis_steps", "precision", "seed", "model", "weights"],
    "microscope": [
        "layers",
        "channels",
        "size",
        "steps",
        "learning_rate",
        "samples",
        "diversity",
        "block",
        "precision",
        "top",
        "exemplar_folder",
        "exemplar_count",
        "side",
        "seed",
        "model",
        "weights",
    ],
}


# Defaults that mean "decided at run time", said in words.
DEFAULT_WORDS = {
    "layer": "the model's",
    "channels": "all",
    "grid": "16",
    "every": "an equal share",
    "classes": "",
    ("probe", "layers"): "the last of each stage (6)",
    ("exemplars", "units"): "required",
    ("patch", "from_class"): "required",
    ("patch", "to_class"): "required",
    ("microscope", "layers"): "all",
    ("atlas", "layer"): "the model's default",
    ("atlas", "grid"): "20",
    ("probe", "channels"): "4",
    "side": "the model's",
    ("visualize", "learning_rate"): "0.1 (0.05 for pixels)",
    ("visualize", "closeness_layer"): "stage3.1 (stride 8)",
    ("visualize", "param"): "fft (maco with --accentuate)",
    ("visualize", "views"): "2 (1 for a sheet, a unit's samples, --accentuate)",
    ("visualize", "crop"): "0.6 (1 for a sheet, a unit's samples, --accentuate)",
    ("visualize", "confidence"): "0.99 for one class picture (else 0)",
    ("visualize", "skip_gradient"): "0.5 for one class picture (else 1)",
    ("explain", "lower_layer"): "the last layer at half the stride",
}


def limits(check) -> str:
    if isinstance(check, S.Whole):
        high = "2**63-1" if check.high == S.MAX_SEED else f"{check.high}"
        return f"{check.low}-{high}" + (" or none" if check.optional else "")
    if isinstance(check, S.Number):
        low = f">{check.low:g}" if check.above else f"{check.low:g}"
        return f"{low} to {'<' if check.below else ''}{check.high:g}"
    if isinstance(check, S.Choice):
        return ", ".join(map(str, check.options))
    if check is S.tile_size:
        return "auto, off, 64-8192"
    if check is S.picture_size:
        return "64-2048"
    return ""


def shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return f"`{value}`" if isinstance(value, str) else str(value)


def table(name: str) -> str:
    cls = catalogue.get(name).settings
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = SHOWN.get(name)
    if names == "differs":
        dream = S.DreamSettings.defaults()
        names = [n for n, f in fields.items() if flag(name, n) is not None and (n not in dream or dream[n] != f.default)]
    elif names is None:
        names = [n for n in fields if flag(name, n) is not None]
    rows = ["| option | default | limits | meaning |", "| --- | --- | --- | --- |"]
    for field_name in names:
        f = fields[field_name]
        spelled, options = flag(cls.recipe, field_name)
        metavar = options.get("metavar", "").replace("|", "\\|")
        words = DEFAULT_WORDS.get((cls.recipe, field_name), DEFAULT_WORDS.get(field_name))
        default = words if words is not None else shown(f.default)
        text = EXTRA_HELP.get(field_name, f.metadata["help"]).replace("|", "\\|")
        usage = f"{spelled} {metavar}" if metavar else spelled
        rows.append(f"| `{usage}` | {default} | {limits(f.metadata['check'])} | {text} |".replace("|  |", "| |"))
    return "\n".join(rows)


def render(readme: str) -> str:
    def replace(match):
        return f"{match.group(1)}\n{table(match.group(2))}\n{match.group(4)}"

    # Each block runs from its marker to the nearest end marker (empty at first: then only a newline between).
    return re.sub(r"(<!-- options:(\w+) -->)\n(.*?)(<!-- /options -->)", replace, readme, flags=re.S)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    made = render(text)
    if "--check" in sys.argv:
        if made != text:
            print("README.md's option tables are out of date: run .venv/bin/python docs/option_tables.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(made, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
