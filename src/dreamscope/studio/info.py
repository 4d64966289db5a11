"""What GET /api/info tells the page: the model, each recipe's fields (from the settings classes, so a setting
added to the library shows up in the form), the presets, and the server's limits."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import settings as S
from ..models.custom import block_chain, is_block
from ..version import __version__
from ..work import catalogue

# What a recipe's output is, as the page shows it: a picture, a video (with a GIF beside it) or a report folder.
SHOWN_AS = {"picture": "picture", "video": "video", "folder": "report"}
FIXED = ("model", "weights")  # the server's own model: not a field of any form
# A folder on the server's disk (a probe's exemplar pictures, explain's microscope site) is not for a web page to
# name: the page could read any folder the server can. Not a field of any form, and refused when a request sets it
# (app.Studio.checked_settings).
SERVER_ONLY = ("exemplar_folder", "exemplar_count", "microscope")
PROBE_PRESET = {"channels": 0, "max_size": 192, "octaves": 2, "steps": 15}  # "what each layer sees": a fast probe


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def field_json(field: dataclasses.Field) -> dict[str, Any]:
    """One settings field for a form: name, default, help, kind (whole, number, flag, choice, text, tile, size)
    and, where they apply, min, max, options and optional."""
    check = field.metadata.get("check")
    data: dict[str, Any] = {"name": field.name, "default": _json_value(field.default), "help": field.metadata.get("help", "")}
    if isinstance(check, S.Whole):
        data.update(kind="whole", min=check.low, max=check.high, optional=check.optional)
    elif isinstance(check, S.Number):
        data.update(
            kind="number",
            min=check.low,
            max=check.high,
            min_exclusive=check.above,
            max_exclusive=check.below,
            optional=check.optional,
        )
    elif isinstance(check, S.Flag):
        data.update(kind="flag")
    elif isinstance(check, S.Choice):
        data.update(kind="choice", options=list(check.options))
    elif check is S.tile_size:
        data.update(kind="tile", optional=True)
    elif check is S.picture_size:
        data.update(kind="size", min=64, max=2048)
    else:
        data.update(kind="text", optional=getattr(check, "optional", True))
    return data


def offered() -> dict[str, catalogue.Recipe]:
    """The recipes the studio offers: those whose record has a form (their inputs are uploads, their output a file)."""
    return {name: recipe for name, recipe in catalogue.RECIPES.items() if recipe.form is not None}


def output_kind(recipe: str) -> str:
    """ "picture", "video" or "report": how the page shows a recipe's result."""
    return SHOWN_AS[catalogue.get(recipe).output.kind]


def recipes_json() -> dict[str, Any]:
    recipes = {}
    for name, recipe in offered().items():
        cls = recipe.settings
        required = [spec.role for spec in recipe.inputs if spec.required]
        recipes[name] = {
            "help": (cls.__doc__ or "").strip().splitlines()[0],
            "fields": [field_json(f) for f in dataclasses.fields(cls) if f.name not in FIXED + SERVER_ONLY],
            "inputs": list(recipe.roles),
            "required": required[0] if required else None,
            "input_kinds": {spec.role: spec.kind for spec in recipe.inputs},
            "input_labels": {spec.role: spec.label for spec in recipe.inputs},
            "output": output_kind(name),
            "form": {"tab": recipe.form.tab, "verb": recipe.form.verb, "lead": recipe.form.lead, "main": list(recipe.form.main)},
        }
    return recipes


def model_json(model) -> dict[str, Any]:
    return {
        "name": model.name,
        "default_layer": model.spec.default_layer,
        "layers": [{"name": info.name, "channels": info.channels, "stride": info.stride} for info in model.layers.values()],
        "not_dreamable": dict(model.not_dreamable),
        "classes": model.spec.num_classes if model.spec.logits_module is not None else 0,
        "class_names": model.class_names(),
    }


def presets(model) -> list[dict[str, Any]]:
    """Named dream settings, from the model's own layers (a shallow one for strokes, a deep one for objects), and
    the fast probe the page runs to show what each layer sees."""
    layers = [name for name, info in model.layers.items() if info.stride is not None]
    modules = dict(model.net.named_modules())
    blocks = [name for name in layers if name in modules and is_block(modules[name])]
    layers = blocks if len(blocks) >= 4 else layers  # a network of blocks: its blocks, not a block's insides
    strokes = deep = None
    chain = block_chain(model.layers)  # a transformer: its blocks, not the modules inside them
    if chain:
        strokes, deep = chain[len(chain) // 4], chain[round(0.8 * (len(chain) - 1))]
    elif layers:
        shallow = [name for name in layers if model.layers[name].stride <= 8]
        strokes = shallow[-1] if shallow else layers[len(layers) // 4]
        deep = layers[round(0.8 * (len(layers) - 1))]
    dream = [
        ("gentle", "Gentle", "a light touch: fewer, smaller steps", {"octaves": 3, "steps": 6, "step_size": 0.01}),
        ("default", "Default", "the library's defaults", {}),
        ("deep", "Deep", f"a deep layer ({deep}): eyes, faces, objects", {"layer": deep, "steps": 20} if deep else {"steps": 20}),
        ("strokes", "Strokes", f"a shallow layer ({strokes}): brush strokes and textures", {"layer": strokes} if strokes else {}),
    ]
    listed = [
        {"name": name, "label": label, "recipe": "dream", "help": text, "settings": changes}
        for name, label, text, changes in dream
    ]
    listed.append(
        {
            "name": "layers",
            "label": "What each layer sees",
            "recipe": "probe",
            "help": "a fast probe: the photo dreamed at each layer, small and quick",
            "settings": dict(PROBE_PRESET),
        }
    )
    return listed


def info_json(studio) -> dict[str, Any]:
    import torch

    from .uploads import samples_available

    return {
        "version": __version__,
        "model": model_json(studio.model),
        "recipes": recipes_json(),
        "presets": presets(studio.model),
        "samples": list(samples_available()),
        "limits": studio.limits.to_json(),
        "device": str(studio.model.device),
        "threads": torch.get_num_threads(),
        "live": {"fields": live_fields(), "busy": studio.live_room.busy},
    }


def live_fields() -> list[dict[str, Any]]:
    """The live view's controls: LiveSettings' fields, but the server's model."""
    return [field_json(f) for f in dataclasses.fields(S.LiveSettings) if f.name not in FIXED]
