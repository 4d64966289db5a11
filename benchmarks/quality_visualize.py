"""Quality of `visualize`'s class pictures: recognized by a network that did not make them, and coloured like photos?

Run from the repository root: `.venv/bin/python benchmarks/quality_visualize.py` (dreamscope only), or with the
peers installed (see benchmarks/peers.py) `.venv-peers/bin/python benchmarks/quality_visualize.py --makers all`.

For each class of fixed lists (CLASSES: the 24 of the first benchmark; NEW_CLASSES: 24 more, fixed on
2026-12-02 before any picture of them was made) each maker grows one picture of the class on the same model
(efficientnet-lite0) with the same number of steps, timed with `time.perf_counter` after one untimed warm-up.
Makers: `maco`, `fft` (dreamscope's parameterizations, `--param`), `pixels` (no priors: plain pixels, no
transforms, the contrast case), `accentuate` (the class strengthened in scikit-image's coffee photo, `--accentuate`), and the peers `torch-lucent`, `horama`, `faccent` when installed.

`dreamscope.recipes.quality.score` judges each picture with efficientnet-lite2 on three views (as made, mirrored
left-right, centre 75% crop scaled back), measures Hasler and Suesstrunk's colourfulness and MaCo's plausibility
(the rank of the class's own sample photo among one per class in the judge's feature space, and the similarities). Summary per maker:
per view the judge's top-1 rate and mean probability of the class, the classes recognized on all three views,
median and minimum colourfulness, median seconds. `--photos FOLDER` adds the colourfulness of real photos (the
first 300 of ../shared/data/imagenet-sample by name): the target for the pictures' median.

`--sheet PATH` writes the pictures side by side, a row per class and a column per maker (JPEG at quality 85
for .jpg). `--json PATH` writes every figure.
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
from PIL import Image, ImageDraw

import dreamscope
from dreamscope.io import folders, images
from dreamscope.models import DEFAULT_MODEL, load_model
from dreamscope.models.classes import resolve_class
from dreamscope.pages.sheets import contact_sheet
from dreamscope.recipes import colour, quality
from dreamscope.recipes.visualize import visualize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

# Fixed before any run: animals, food, objects, buildings, plants and scenes, easy and hard alike.
CLASSES = [
    "banana", "dumbbell", "starfish", "parachute", "goldfish", "volcano", "pineapple", "strawberry",
    "lemon", "flamingo", "ladybug", "zebra", "jellyfish", "pizza", "broccoli", "hourglass",
    "lighthouse", "castle", "daisy", "mushroom", "king penguin", "tarantula", "hummingbird", "school bus",
]  # fmt: skip
# Fixed on 2026-12-02, before any picture of them was made (issue 14), the same mix.
NEW_CLASSES = [
    "peacock", "monarch", "tree frog", "koala", "snail", "bald eagle", "sea anemone", "golden retriever",
    "orange", "cauliflower", "bagel", "ice cream", "violin", "teapot", "umbrella", "tennis ball",
    "acoustic guitar", "church", "barn", "valley", "coral reef", "acorn", "red wine", "fire engine",
]  # fmt: skip
SETS = {"current": CLASSES, "new": NEW_CLASSES, "both": CLASSES + NEW_CLASSES}
OURS = {
    "maco": dict(param="maco"),
    "fft": dict(param="fft"),
    "pixels": dict(param="pixels", robust=False),
    "accentuate": dict(accentuate=True),  # the class strengthened in one fixed photo (ACCENTUATED), its defaults
}


def accentuated_photo() -> Image.Image:
    """The photo every class is accentuated in: scikit-image's coffee cup, a photo of no benchmark class."""
    from skimage import data

    return Image.fromarray(data.coffee())


TILE = 160
PHOTOS = 300


def make(maker: str, model, index: int, steps: int | None, size: int, settings: dict) -> Image.Image:
    if maker in OURS:
        fields = {**OURS[maker], **settings, "size": size}
        if steps is not None:
            fields["steps"] = steps
        if maker == "accentuate":
            fields.pop("learning_rate", None)  # accentuation keeps its own schedule
            return visualize(index, model=model, init=accentuated_photo(), **fields)[0]
        return visualize(index, model=model, **fields)[0]
    return peers.PEERS[maker](model, index, steps or 300, size=size, seed=0)


def label(picture: Image.Image, text: str, size: int = TILE) -> Image.Image:
    tile = picture.convert("RGB").resize((size, size), Image.LANCZOS)
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, 6 * len(text) + 6, 13), fill="black")
    draw.text((3, 1), text, fill="white")
    return tile


def save_sheet(sheet: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        sheet.save(path, quality=85, optimize=True, progressive=True)
    else:
        sheet.save(path)


def summarize(rows: list[dict]) -> dict:
    summary = {}
    for name in quality.VIEWS:
        summary[name] = {
            "top1_rate": sum(r["views"][name]["top1"] for r in rows) / len(rows),
            "mean_probability": statistics.fmean(r["views"][name]["probability"] for r in rows),
        }
    summary["all_views"] = sum(all(r["views"][v]["top1"] for v in quality.VIEWS) for r in rows)
    summary["classes"] = len(rows)
    summary["overall_mean_probability"] = statistics.fmean(r["views"][v]["probability"] for r in rows for v in quality.VIEWS)
    values = [r["colourfulness"] for r in rows]
    summary["colourfulness"] = {"median": statistics.median(values), "min": min(values)}
    summary["saturation_median"] = statistics.median(r["saturation"] for r in rows)
    seconds = [r["seconds"] for r in rows]
    summary["seconds"] = {"median": statistics.median(seconds), "max": max(seconds), "total": sum(seconds)}
    near = [r["plausibility"] for r in rows if r.get("plausibility")]
    if near:
        summary["plausibility"] = {
            "median_rank": statistics.median(p["rank"] for p in near),
            "rank_1": sum(p["rank"] == 1 for p in near),
            "top_10": sum(p["rank"] <= 10 for p in near),
            "median_similarity": statistics.median(p["similarity"] for p in near),
            "mean_others": statistics.fmean(p["others"] for p in near),
        }
    return summary


def photo_colours(folder: Path, count: int = PHOTOS) -> dict:
    files = folders.picture_files(folder)[:count]
    values = sorted(colour.colourfulness(images.load_image(path)) for path in files)
    return {"photos": len(values), "median": statistics.median(values), "p10": values[len(values) // 10]}


def _value(text: str):
    """A setting's value as typed: a whole number, a number, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=SETS, default="current", help="which fixed classes (default: current)")
    parser.add_argument("--classes", help="comma-separated class names or indices instead of a set")
    parser.add_argument(
        "--makers",
        default="maco,fft",
        help="comma-separated: maco, fft, pixels, accentuate, torch-lucent, horama, faccent; 'all': ours and every peer installed",
    )
    parser.add_argument("--steps", type=int, help="optimization steps for every maker (default: visualize's default)")
    parser.add_argument("--size", type=int, default=224, help="picture side in px (default 224)")
    parser.add_argument("--learning-rate", type=float, help="dreamscope's learning rate (default: visualize's)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other visualize setting for dreamscope's makers (repeatable): precision=fp32, view=padded, seed=1",
    )
    parser.add_argument("--photos", type=Path, help="a folder of photos: their colourfulness, for reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    parser.add_argument("--sheet", type=Path, help="write the pictures side by side (PNG, or JPEG for .jpg)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else list(SETS[args.set])
    indices = [resolve_class(name) for name in names]  # unknown names fail before any work
    installed = {name: version for name, version in peers.available().items() if version}
    makers = [*OURS.keys() - {"pixels"}, *installed] if args.makers == "all" else args.makers.split(",")
    makers = sorted(makers, key=lambda m: list(OURS).index(m) if m in OURS else 10)
    for maker in makers:
        if maker not in OURS and maker not in installed:
            parser.error(f"maker {maker!r} is not available here ({', '.join([*OURS, *installed])}); {peers.install_hint()}")
    settings = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
    for option in args.option:
        name, _, value = option.partition("=")
        if not value:
            parser.error(f"--option takes NAME=VALUE, got {option!r}")
        settings[name.strip()] = _value(value.strip())

    model = load_model(DEFAULT_MODEL)
    judge = quality.judge_for(model)
    load = os.getloadavg()
    print(
        f"dreamscope {dreamscope.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}; peers: {installed or 'none installed'}"
    )
    print(
        f"model {DEFAULT_MODEL}, judge {judge.name}; makers {makers}; steps {args.steps or 'default'}; "
        f"{args.size} px; {len(names)} classes; load average {load[0]:.2f}"
    )
    photos = photo_colours(args.photos) if args.photos else None
    if photos:
        print(
            f"photos: colourfulness median {photos['median']:.1f}, 10th percentile {photos['p10']:.1f} "
            f"({photos['photos']} photos)"
        )
    sys.stdout.flush()

    rows = {maker: [] for maker in makers}
    tiles = []
    for maker in makers:  # untimed warm-up: the first call pays one-off costs that are not the picture's
        make(maker, model, indices[0], 2, args.size, settings)
    print(f"{'maker':<13} {'class':<18} {'s':>6}  " + "  ".join(f"{v:>9}" for v in quality.VIEWS) + "  colour  judge's top-1")
    for name, index in zip(names, indices):
        for maker in makers:
            start = time.perf_counter()
            picture = make(maker, model, index, args.steps, args.size, settings)
            seconds = time.perf_counter() - start
            result = quality.score(picture, index, judge)
            views = {
                v: {"top1": s.top1, "probability": s.probability, "judge_top1": s.judge_top1} for v, s in result.views.items()
            }
            rows[maker].append(
                {
                    "class": name,
                    "index": index,
                    "seconds": seconds,
                    "views": views,
                    "colourfulness": result.colourfulness,
                    "saturation": result.saturation,
                    # plausibility: the rank of the class's own sample photo among the 1,000 by similarity in the
                    # judge's feature space, that similarity, and the mean similarity to the other classes' photos
                    "plausibility": vars(result.plausibility) if result.plausibility is not None else None,
                }
            )
            cells = "  ".join(f"{'y' if s.top1 else 'n'} {s.probability:7.3f}" for s in result.views.values())
            print(
                f"{maker:<13} {name:<18} {seconds:6.1f}  {cells}  {result.colourfulness:6.1f}  "
                f"{result.views['picture'].judge_top1}"
            )
            sys.stdout.flush()
            if args.sheet:
                tiles.append(label(picture, f"{name} ({maker})"))

    summaries = {maker: summarize(rows[maker]) for maker in makers}
    print()
    print(
        f"{'maker':<13} "
        + " ".join(f"{v + ' top-1':>13}" for v in quality.VIEWS)
        + f" {'all views':>10} {'mean p':>7} {'colour med':>10} {'min':>5} {'s med':>6}"
    )
    for maker, s in summaries.items():
        print(
            f"{maker:<13} "
            + " ".join(f"{s[v]['top1_rate']:7.0%} {s[v]['mean_probability']:5.2f}" for v in quality.VIEWS)
            + f" {s['all_views']:>4} of {s['classes']:<3} {s['overall_mean_probability']:7.3f}"
            + f" {s['colourfulness']['median']:10.1f} {s['colourfulness']['min']:5.1f} {s['seconds']['median']:6.1f}"
        )
    for maker, s in summaries.items():
        near = s.get("plausibility")
        if near:
            print(
                f"{maker:<13} plausibility: its class's photo nearest for {near['rank_1']} of {s['classes']}, in the "
                f"nearest 10 for {near['top_10']}, median rank {near['median_rank']:g}; similarity median "
                f"{near['median_similarity']:.3f}, {near['mean_others']:.3f} to the others"
            )
    load_end = os.getloadavg()
    print(f"load average at the end {load_end[0]:.2f}")

    if args.sheet:
        save_sheet(contact_sheet(tiles, columns=len(makers)), args.sheet)
        print("wrote", args.sheet)
    if args.json:
        record = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "model": DEFAULT_MODEL,
            "judge": judge.name,
            "steps": args.steps,
            "size": args.size,
            "settings": settings,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "peers": installed,
            "photos": photos,
            "load_average": {"start": load[0], "end": load_end[0]},
            "makers": {maker: {"summary": summaries[maker], "classes": rows[maker]} for maker in makers},
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
