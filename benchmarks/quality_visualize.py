"""Quality check of `visualize`: are its class pictures recognized by a network that did not make them?

Run from the repository root: `.venv/bin/python benchmarks/quality_visualize.py` (about 7 minutes on 2 cores).

For each class of a fixed list (chosen before any result was seen; `--classes` overrides it) it grows one
picture with `visualize(cls)` at default settings with the default model (efficientnet-lite0), timed with
`time.perf_counter`, and judges it with a different network, efficientnet-lite2, via
`class_probabilities(judge, x)` (x: the picture as an NCHW tensor in [0, 1]; it resizes to the judge's
resolution) on three views:

- picture: the picture as made;
- mirror:  the picture flipped left-right;
- crop:    the middle 75% of each side, resized back to the picture size (bilinear).

Per class: the judge's top-1 correct (y/n) and the target class's probability per view, the seconds the
picture took (after one untimed warm-up step) and, for contrast, the maker's own probability of the target on
the picture as made. Summary: per view and overall, top-1 rate and mean probability; median and max seconds.

`--no-priors` grows the pictures with plain pixels and no transformation robustness (`param="pixels",
robust=False`): the contrast case, adversarial noise that excites the maker but that the judge should not
recognize. `--sheet PATH` writes a contact sheet of all pictures, labelled with their classes (JPEG at
quality 85 if PATH ends in .jpg/.jpeg, else PNG). `--json PATH` writes every figure.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

import dreamscope
from dreamscope import images
from dreamscope.models import DEFAULT_MODEL, imagenet_labels, load_model
from dreamscope.models.classes import resolve_class
from dreamscope.recipes.classify import class_probabilities
from dreamscope.recipes.visualize import contact_sheet, visualize

# Fixed before any run: animals, food, objects, buildings, plants and scenes, easy and hard alike.
CLASSES = [
    "banana", "dumbbell", "starfish", "parachute", "goldfish", "volcano", "pineapple", "strawberry",
    "lemon", "flamingo", "ladybug", "zebra", "jellyfish", "pizza", "broccoli", "hourglass",
    "lighthouse", "castle", "daisy", "mushroom", "king penguin", "tarantula", "hummingbird", "school bus",
]  # fmt: skip
JUDGE = "efficientnet-lite2"
VIEWS = ("picture", "mirror", "crop")
CROP = 0.75
TILE = 160


def views(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three views of an NCHW picture: as is, mirrored left-right, centre crop resized back (bilinear)."""
    height, width = x.shape[-2:]
    crop_h, crop_w = round(height * CROP), round(width * CROP)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = x[..., top : top + crop_h, left : left + crop_w]
    crop = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    return {"picture": x, "mirror": x.flip(-1), "crop": crop}


def judge_picture(judge, picture: Image.Image, index: int) -> dict[str, dict]:
    labels = imagenet_labels()
    x = images.to_tensor(picture, judge.device)
    result = {}
    with torch.no_grad():
        for name, view in views(x).items():
            probabilities = class_probabilities(judge, view)[0]
            top = int(probabilities.argmax())
            result[name] = {
                "top1": top == index,
                "probability": float(probabilities[index]),
                "judge_top1": labels[top],
                "judge_top1_probability": float(probabilities[top]),
            }
    return result


def label(picture: Image.Image, text: str, size: int = TILE) -> Image.Image:
    tile = picture.convert("RGB").resize((size, size), Image.LANCZOS)
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, 6 * len(text) + 6, 13), fill="black")
    draw.text((3, 1), text, fill="white")
    return tile


def save_sheet(sheet: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        sheet.save(path, quality=85, optimize=True, progressive=True)  # progressive: about 8% smaller
    else:
        sheet.save(path)


def summarize(rows: list[dict]) -> dict:
    summary = {}
    for name in VIEWS:
        summary[name] = {
            "top1_rate": sum(r["views"][name]["top1"] for r in rows) / len(rows),
            "mean_probability": statistics.fmean(r["views"][name]["probability"] for r in rows),
        }
    summary["overall"] = {
        "top1_rate": sum(r["views"][v]["top1"] for r in rows for v in VIEWS) / (len(rows) * len(VIEWS)),
        "mean_probability": statistics.fmean(r["views"][v]["probability"] for r in rows for v in VIEWS),
    }
    summary["maker_mean_probability"] = statistics.fmean(r["maker_probability"] for r in rows)
    seconds = [r["seconds"] for r in rows]
    summary["seconds"] = {"median": statistics.median(seconds), "max": max(seconds), "total": sum(seconds)}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", help="comma-separated class names or indices (default: the fixed list of 24)")
    parser.add_argument("--steps", type=int, help="optimization steps (default: visualize's default)")
    parser.add_argument("--size", type=int, help="picture side in px (default: visualize's default)")
    parser.add_argument("--no-priors", action="store_true", help='param="pixels", robust=False (the contrast case)')
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of all pictures (PNG, or JPEG for .jpg)")
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else list(CLASSES)
    indices = [resolve_class(name) for name in names]  # unknown names fail before any work
    labels = imagenet_labels()
    settings: dict = {}
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.size is not None:
        settings["size"] = args.size
    if args.no_priors:
        settings.update(param="pixels", robust=False)

    maker = load_model(DEFAULT_MODEL)
    judge = load_model(JUDGE)
    load = os.getloadavg()
    print(f"dreamscope {getattr(dreamscope, '__version__', '?')}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}")
    print(f"maker {DEFAULT_MODEL}, judge {JUDGE}; settings: {settings or 'defaults'}; "
          f"{len(names)} classes; load average {load[0]:.2f}")
    print(f"{'class':<22} {'s':>6} {'maker p':>7}  " + "  ".join(f"{v:>13}" for v in VIEWS)
          + "  judge's top-1 on the picture")
    sys.stdout.flush()

    # Untimed warm-up (one step): the first call pays one-off costs (about 4 s) that are not the picture's.
    visualize(indices[0], model=maker, **{**settings, "steps": 1})
    rows, tiles = [], []
    for name, index in zip(names, indices):
        start = time.perf_counter()
        picture = visualize(name, model=maker, **settings)[0]
        seconds = time.perf_counter() - start
        judged = judge_picture(judge, picture, index)
        with torch.no_grad():  # the maker's own view, for contrast: does the picture excite the network that made it?
            maker_p = float(class_probabilities(maker, images.to_tensor(picture, maker.device))[0, index])
        rows.append({"class": name, "index": index, "label": labels[index], "seconds": seconds,
                     "maker_probability": maker_p, "views": judged})
        cells = "  ".join(f"{'y' if judged[v]['top1'] else 'n'} {judged[v]['probability']:11.3f}" for v in VIEWS)
        top = f"{judged['picture']['judge_top1']} ({judged['picture']['judge_top1_probability']:.2f})"
        print(f"{name:<22} {seconds:6.1f} {maker_p:7.3f}  {cells}  {top}")
        sys.stdout.flush()
        if args.sheet:
            tiles.append(label(picture, name))

    summary = summarize(rows)
    print()
    print(f"{'view':<10} {'top-1':>8} {'mean p':>8}")
    for name in (*VIEWS, "overall"):
        s = summary[name]
        print(f"{name:<10} {s['top1_rate']:8.0%} {s['mean_probability']:8.3f}")
    print(f"maker's own mean probability of the target (picture as made): {summary['maker_mean_probability']:.3f}")
    sec = summary["seconds"]
    print(f"seconds per picture: median {sec['median']:.1f}, max {sec['max']:.1f}, total {sec['total']:.0f}")
    load_end = os.getloadavg()
    print(f"load average at the end {load_end[0]:.2f}")

    if args.sheet:
        save_sheet(contact_sheet(tiles, columns=min(6, len(tiles))), args.sheet)
        print("wrote", args.sheet)
    if args.json:
        record = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "maker": DEFAULT_MODEL,
            "judge": JUDGE,
            "settings": settings,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average": {"start": load[0], "end": load_end[0]},
            "classes": rows,
            "summary": summary,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
