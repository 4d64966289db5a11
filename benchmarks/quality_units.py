"""Quality of `visualize`'s unit pictures (a layer's channel sheet, or one channel's or neuron's samples) under
variants of the settings, side by side: what class pictures' judge cannot tell, since a unit has no class.

Run from the repository root: `.venv/bin/python benchmarks/quality_units.py --sheets stage5.2,stage6.0 --seeds 0,1`
or `--units stage5.2:17,stage6.0:40 --samples 4`. Each variant (`--variant NAME:SETTING=VALUE,...`, repeatable;
default: `whole` = one whole view a step, `crops` = two crops of 0.6) draws the same pictures from the same seeds on
efficientnet-lite0, timed with `time.perf_counter` after one untimed warm-up. Every picture is then measured on the
three held-out views of `dreamscope.recipes.quality` (as made, mirrored left-right, centre 75% crop scaled back),
none of which its optimization saw exactly:

- its unit's activation (a channel: the mean over positions; a neuron: the middle position);
- on a sheet, for how many channels their own picture is the sheet's highest (selectivity), and the mean activation
  of each channel on the sheet's other pictures;
- the nearest photo: its highest cosine similarity to the 1,000 sample photos (one per class) in the judge's
  (efficientnet-lite2's) penultimate features, MaCo's plausibility measure without a class;
- for samples, their mean similarity to each other in those features (1: all alike);
- colourfulness (Hasler and Suesstrunk).

`--json PATH` writes every figure; `--pictures DIR` a strip of each run's pictures (PNG).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from dreamscope import imaging
from dreamscope.errors import DreamscopeError
from dreamscope.fields import parse_unit
from dreamscope.models import DEFAULT_MODEL, load_model
from dreamscope.optvis import render
from dreamscope.pages.sheets import contact_sheet
from dreamscope.recipes import colour, quality
from dreamscope.recipes.visualize import visualize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_visualize import _value as setting_value
from quality_visualize import save_sheet

DEFAULT_VARIANTS = ["whole:views=1,crop=1", "crops:views=2,crop=0.6"]


def variant(text: str) -> tuple[str, dict]:
    """NAME:SETTING=VALUE,... with each value as quality_visualize.py's --option reads it."""
    name, _, rest = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"a variant needs a name before the colon, got {text!r}")
    settings = {}
    for pair in filter(None, rest.split(",")):
        key, _, value = pair.partition("=")
        if not value:
            raise argparse.ArgumentTypeError(f"a variant takes NAME:SETTING=VALUE,..., got {text!r}")
        settings[key.strip()] = setting_value(value.strip())
    return name, settings


def unit_activations(model, layer: str, x: torch.Tensor, neuron: bool) -> torch.Tensor:
    """(pictures, channels): each channel's mean over positions, or its middle position's value for a neuron."""
    act = render.activations(model, [layer], x)[layer].float()
    return act[..., act.shape[-2] // 2, act.shape[-1] // 2] if neuron else act.mean((2, 3))


def measure(model, judge, references, pictures: list[Image.Image], layer: str, channels: list[int], neuron: bool) -> dict:
    """The figures of one run's pictures; picture i shows channel `channels[i]`."""
    x = torch.cat([imaging.to_tensor(p, model.device) for p in pictures])
    index = torch.arange(len(pictures))
    picked = torch.tensor(channels)
    views = {}
    with torch.no_grad():
        for name, view in quality.views(x).items():
            act = unit_activations(model, layer, view, neuron)[:, picked]  # (pictures, their channels)
            own = act[index, index]
            figures = {"own": own.tolist()}
            if len(set(channels)) == len(channels) > 1:  # a sheet: each channel against the sheet's other pictures
                others = act.clone()
                others[index, index] = float("-inf")
                figures["own_highest"] = int((own > others.max(0).values).sum())
                figures["others_mean"] = ((act.sum(0) - own) / (len(channels) - 1)).tolist()
            views[name] = figures
        features = quality.features(judge, x)
        similar = features @ features.T
    n = len(pictures)
    return {
        "views": views,
        "nearest_photo": (features @ references.to(features.device).T).max(1).values.tolist(),
        "between": float((similar.sum() - similar.diagonal().sum()) / (n * (n - 1))) if n > 1 else None,
        "colourfulness": [colour.colourfulness(p) for p in pictures],
    }


def line(run: dict) -> str:
    views = run["views"]
    own = {name: statistics.fmean(v["own"]) for name, v in views.items()}
    text = f"{run['target']:<14} seed {run['seed']}  {run['variant']:<10} {run['seconds']:6.1f} s  activation " + ", ".join(
        f"{name} {value:.2f}" for name, value in own.items()
    )
    if "own_highest" in views["picture"]:
        text += "; own picture highest " + "/".join(str(v["own_highest"]) for v in views.values())
    text += f"; nearest photo {statistics.median(run['nearest_photo']):.3f}"
    if run["between"] is not None and "own_highest" not in views["picture"]:
        text += f"; samples alike {run['between']:.3f}"
    return text + f"; colourfulness {statistics.median(run['colourfulness']):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--sheets", help="comma-separated layers: each layer's channel sheet (its first --grid channels)")
    what.add_argument("--units", help="comma-separated LAYER:INDEX units: each one's --samples pictures")
    parser.add_argument("--kind", choices=("channel", "neuron"), default="channel", help="what --units are (default channel)")
    parser.add_argument("--grid", type=int, default=16, help="channels a sheet (default 16)")
    parser.add_argument("--samples", type=int, default=4, help="pictures of each unit (default 4)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--variant", type=variant, action="append", help="NAME:SETTING=VALUE,... (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    parser.add_argument("--pictures", type=Path, help="a folder for a strip of each run's pictures")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    variants = dict(args.variant or [variant(v) for v in DEFAULT_VARIANTS])
    seeds = [int(s) for s in args.seeds.split(",")]
    model = load_model(DEFAULT_MODEL)
    judge = quality.judge_for(model)
    references = quality.references(judge.name)
    if args.sheets:
        targets = [(layer, dict(kind="channels", grid=args.grid)) for layer in args.sheets.split(",")]
    else:
        targets = [(unit, dict(kind=args.kind, samples=args.samples)) for unit in args.units.split(",")]
        for unit, _ in targets:  # a typo fails here, before any work
            try:
                parse_unit(unit)
            except DreamscopeError as exc:
                parser.error(str(exc))
    load = os.getloadavg()
    print(f"model {DEFAULT_MODEL}, judge {judge.name}; variants {variants}; load average {load[0]:.2f}", flush=True)
    visualize(targets[0][0], model=model, steps=2, **{**targets[0][1], **({"grid": 2} if args.sheets else {})})  # warm-up

    runs = []
    for target, kind in targets:
        layer, unit = (target, None) if args.sheets else parse_unit(target)
        for seed in seeds:
            for name, settings in variants.items():
                start = time.perf_counter()
                pictures = visualize(target, model=model, seed=seed, **kind, **settings)
                seconds = time.perf_counter() - start
                channels = list(range(len(pictures))) if unit is None else [unit] * len(pictures)
                run = {"target": target, "seed": seed, "variant": name, "settings": settings, "seconds": seconds}
                run.update(
                    measure(model, judge, references, pictures, layer, channels, args.kind == "neuron" and unit is not None)
                )
                runs.append(run)
                print(line(run), flush=True)
                if args.pictures:  # a strip of the run's pictures, as quality_visualize.py writes its sheet
                    tiles = [p.convert("RGB").resize((112, 112), Image.LANCZOS) for p in pictures]
                    save_sheet(
                        contact_sheet(tiles, columns=len(tiles)),
                        args.pictures / f"{target.replace(':', '_')}_seed{seed}_{name}.png",
                    )
    load_end = os.getloadavg()
    print(f"load average at the end {load_end[0]:.2f}")
    if args.json:
        record = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "model": DEFAULT_MODEL,
            "judge": judge.name,
            "variants": variants,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average": {"start": load[0], "end": load_end[0]},
            "runs": runs,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1))
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
