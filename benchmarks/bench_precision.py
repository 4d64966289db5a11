"""Does a bfloat16 network dream the same picture as a float32 one, and how much sooner?

For each photo (every k-th of a folder, scaled so the longer side is --size px), at the model's default dream
layer:

1. Gradient fidelity: the gradient of the dream objective with respect to the photo, bfloat16 network against
   float32: relative L2 error and cosine. For scale, the same figures for float32 with the picture shifted by one
   pixel (and the gradient shifted back): a dream's jitter moves the picture by up to 32 px every step, so an
   error below one pixel's shift changes nothing a dream could notice.
2. Dream fidelity: the whole default dream (octaves, steps, jitter; seed 0) in float32 and in bfloat16, in
   float32 with seed 1, and in float32 with the network in the other memory layout (NCHW instead of
   channels-last: the same arithmetic summed in another order, gradients within 5e-3). Mean absolute
   difference of the pictures (in 1/255) against the float32 dream, and the same after shrinking both 8x (the
   layout of what was dreamed where, without its fine texture). DeepDream is chaotic: any change of rounding
   grows into another dream, so the question is whether bfloat16 differs more than a layout change does, and
   less than a new seed. The objective each result reaches, measured in float32, bfloat16's over float32's.
   Wall time of each dream, the two precisions interleaved photo by photo, as a ratio.

3. With `--class-pictures N`: the first N of quality_visualize.py's 48 benchmark classes drawn by `visualize` at its
   defaults in float32 and in bfloat16, interleaved class by class: wall time of each picture, as a ratio, and
   how often the held-out judge (efficientnet-lite2) names the class on each view, and the plausibility, for
   both. `--count 0` leaves the dreams out.

`--sheet PATH` writes photo | float32 | bfloat16 | float32 seed 1 for the first three photos. Run it alone:

    .venv/bin/python benchmarks/bench_precision.py [--photos FOLDER] [--count 8] [--class-pictures 0] [--json PATH] [--sheet PATH]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import dreamscope
from dreamscope import runtime
from dreamscope.io import images
from dreamscope.models import load_model, precision
from dreamscope.optvis import objectives, render

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"


def photos(folder: Path, count: int, size: int) -> list[tuple[str, Image.Image]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if not files:
        raise SystemExit(f"no photos in {folder}")
    chosen = files[:: max(1, len(files) // count)][:count]
    return [(p.stem, images.limit_size(Image.open(p).convert("RGB"), size)) for p in chosen]


def gradient_fidelity(fp32, bf16, objective, x) -> dict:
    _, g32 = render.objective_gradient(fp32, objective, x)
    _, g16 = render.objective_gradient(bf16, objective, x)
    _, shifted = render.objective_gradient(fp32, objective, torch.roll(x, (1, 1), (-2, -1)))
    shifted = torch.roll(shifted, (-1, -1), (-2, -1))

    def compare(a, b):
        return {
            "relative_error": float((a - b).norm() / b.norm()),
            "cosine": float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)),
        }

    return {"bf16": compare(g16, g32), "one_pixel_shift": compare(shifted, g32)}


def dream(model, photo, seed, chosen) -> tuple[Image.Image, float]:
    start = time.perf_counter()
    picture = dreamscope.dream(photo, model=model, seed=seed, precision=chosen)
    return picture, time.perf_counter() - start


def objective_value(model, objective, picture) -> float:
    with torch.no_grad():
        return float(objective(render.activations(model, objective.layers, images.to_tensor(picture, model.device))))


def mean_difference(a: Image.Image, b: Image.Image, shrink: int = 1) -> float:
    x, y = images.to_tensor(a, "cpu"), images.to_tensor(b, "cpu")
    if shrink > 1:
        x, y = (torch.nn.functional.avg_pool2d(t, shrink) for t in (x, y))
    return float((x - y).abs().mean() * 255)


def nchw_twin(model):
    """The float32 model with its network in the NCHW layout: the same function, another summation order."""
    net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format)
    return dataclasses.replace(model, spec=dataclasses.replace(model.spec, channels_last=False), net=net)


def sheet(rows, path: Path) -> None:
    width, label = 256, 16
    labels = ("photo", "fp32", "bf16", "fp32, seed 1")
    heights = [round(width * pictures[0].height / pictures[0].width) for pictures in rows]
    out = Image.new("RGB", (width * 4, sum(h + label for h in heights)), "white")
    draw = ImageDraw.Draw(out)
    top = 0
    for pictures, height in zip(rows, heights):
        for column, picture in enumerate(pictures):
            out.paste(picture.resize((width, height), Image.LANCZOS), (column * width, top + label))
            draw.text((column * width + 4, top + 2), labels[column], fill="black")
        top += height + label
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path, quality=88)


def dream_part(args, fp32, bf16, nchw):
    """Parts 1 and 2: gradients and whole dreams on the photos."""
    objective = objectives.layer_l2(fp32.spec.default_layer)
    rows, pictures = [], []
    for name, photo in photos(args.photos, args.count, args.size):
        x = images.to_tensor(photo, "cpu")
        grads = gradient_fidelity(fp32, bf16, objective, x)
        a, t32 = dream(fp32, photo, 0, "fp32")
        b, t16 = dream(fp32, photo, 0, "bf16")
        c, _ = dream(fp32, photo, 1, "fp32")
        d, _ = dream(nchw, photo, 0, "fp32")
        row = {
            "photo": name,
            "size": list(photo.size),
            "gradient": grads,
            "bf16_vs_fp32_diff": mean_difference(b, a),
            "seed1_vs_seed0_diff": mean_difference(c, a),
            "layout_vs_fp32_diff": mean_difference(d, a),
            "bf16_vs_fp32_shrunk": mean_difference(b, a, 8),
            "seed1_vs_seed0_shrunk": mean_difference(c, a, 8),
            "layout_vs_fp32_shrunk": mean_difference(d, a, 8),
            "objective_ratio": objective_value(fp32, objective, b) / objective_value(fp32, objective, a),
            "seconds_fp32": t32,
            "seconds_bf16": t16,
        }
        rows.append(row)
        pictures.append((photo, a, b, c))
        print(
            f"{name:32s} grad err {grads['bf16']['relative_error']:.3f} (1 px shift {grads['one_pixel_shift']['relative_error']:.3f}) "
            f"cos {grads['bf16']['cosine']:.3f}; dream diff {row['bf16_vs_fp32_diff']:.1f} (layout {row['layout_vs_fp32_diff']:.1f}, "
            f"seed {row['seed1_vs_seed0_diff']:.1f}), shrunk {row['bf16_vs_fp32_shrunk']:.1f} (layout "
            f"{row['layout_vs_fp32_shrunk']:.1f}, seed {row['seed1_vs_seed0_shrunk']:.1f}); objective x{row['objective_ratio']:.3f}; "
            f"{t16 / t32:.2f} of the time",
            file=sys.stderr,
            flush=True,
        )

    def median(key):
        return statistics.median(key(r) for r in rows)

    summary = {
        "gradient_relative_error_bf16": median(lambda r: r["gradient"]["bf16"]["relative_error"]),
        "gradient_relative_error_one_pixel_shift": median(lambda r: r["gradient"]["one_pixel_shift"]["relative_error"]),
        "gradient_cosine_bf16": median(lambda r: r["gradient"]["bf16"]["cosine"]),
        "dream_diff_bf16": median(lambda r: r["bf16_vs_fp32_diff"]),
        "dream_diff_seed": median(lambda r: r["seed1_vs_seed0_diff"]),
        "dream_diff_layout": median(lambda r: r["layout_vs_fp32_diff"]),
        "shrunk_diff_bf16": median(lambda r: r["bf16_vs_fp32_shrunk"]),
        "shrunk_diff_seed": median(lambda r: r["seed1_vs_seed0_shrunk"]),
        "shrunk_diff_layout": median(lambda r: r["layout_vs_fp32_shrunk"]),
        "objective_ratio": median(lambda r: r["objective_ratio"]),
        "objective_ratio_min": min(r["objective_ratio"] for r in rows),
        "time_ratio": median(lambda r: r["seconds_bf16"] / r["seconds_fp32"]),
    }
    print(f"\n{args.model}, {len(rows)} photos at {args.size} px, default dream; medians:")
    print(
        f"  gradient relative error: bf16 {summary['gradient_relative_error_bf16']:.3f}, fp32 shifted one pixel "
        f"{summary['gradient_relative_error_one_pixel_shift']:.3f}; cosine bf16 {summary['gradient_cosine_bf16']:.3f}"
    )
    print(
        f"  dream difference from fp32 (1/255): bf16 {summary['dream_diff_bf16']:.2f}, fp32 in NCHW {summary['dream_diff_layout']:.2f}, "
        f"seed 1 {summary['dream_diff_seed']:.2f}; shrunk 8x: bf16 {summary['shrunk_diff_bf16']:.2f}, NCHW "
        f"{summary['shrunk_diff_layout']:.2f}, seed 1 {summary['shrunk_diff_seed']:.2f}"
    )
    print(f"  objective reached, bf16 / fp32: {summary['objective_ratio']:.3f} (lowest {summary['objective_ratio_min']:.3f})")
    print(f"  time, bf16 / fp32: {summary['time_ratio']:.2f}")
    return rows, pictures, summary


def class_part(fp32, bf16, count: int) -> dict:
    """Part 3: default class pictures in both precisions, timed interleaved and judged."""
    import statistics as st

    from dreamscope.recipes import quality

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality_visualize import CLASSES, NEW_CLASSES

    judge = quality.judge_for(fp32)
    dreamscope.visualize(CLASSES[0], model=fp32, steps=3, precision="bf16")  # warm both
    dreamscope.visualize(CLASSES[0], model=fp32, steps=3, precision="fp32")
    figures = {"fp32": [], "bf16": []}
    for name in (CLASSES + NEW_CLASSES)[:count]:
        for chosen in ("fp32", "bf16"):
            start = time.perf_counter()
            (picture,) = dreamscope.visualize(name, model=fp32, precision=chosen)
            seconds = time.perf_counter() - start
            score = quality.score(picture, dreamscope.resolve_class(name), judge)
            figures[chosen].append(
                {
                    "class": name,
                    "seconds": seconds,
                    "views": {view: s.top1 for view, s in score.views.items()},
                    "rank": score.plausibility.rank,
                    "similarity": score.plausibility.similarity,
                }
            )
        a, b = figures["fp32"][-1], figures["bf16"][-1]
        print(f"{name:20s} fp32 {a['seconds']:.2f} s, bf16 {b['seconds']:.2f} s", file=sys.stderr, flush=True)
    summary = {}
    for chosen, rows in figures.items():
        summary[chosen] = {
            "seconds_median": st.median(r["seconds"] for r in rows),
            "per_view": {view: sum(r["views"][view] for r in rows) for view in quality.VIEWS},
            "all_views": sum(all(r["views"].values()) for r in rows),
            "median_rank": st.median(r["rank"] for r in rows),
            "median_similarity": st.median(r["similarity"] for r in rows),
        }
    summary["time_ratio"] = st.median(b["seconds"] / a["seconds"] for a, b in zip(figures["fp32"], figures["bf16"]))
    print(f"\n{count} default class pictures, bf16 / fp32 time (median of the pairs): {summary['time_ratio']:.2f}")
    for chosen in ("fp32", "bf16"):
        f = summary[chosen]
        print(
            f"  {chosen}: {f['seconds_median']:.2f} s a picture; the judge names {f['per_view']} on the views, "
            f"{f['all_views']} on all; median rank {f['median_rank']:g}, similarity {f['median_similarity']:.3f}"
        )
    return {"summary": summary, "pictures": figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=512, help="longer side of the photos (default 512)")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    parser.add_argument("--class-pictures", type=int, default=0, help="benchmark classes drawn in both precisions (default 0)")
    args = parser.parse_args(argv)

    runtime.configure()
    if not precision.cpu_has_bf16():
        print("note: this CPU has no AMX: bfloat16 runs, but without hardware support", file=sys.stderr)
    fp32 = load_model(args.model, "cpu")
    bf16 = precision.at(fp32, "bf16")
    nchw = nchw_twin(fp32)
    load_before = os.getloadavg()
    rows, pictures, summary = dream_part(args, fp32, bf16, nchw) if args.count else ([], [], {})
    drawn = class_part(fp32, bf16, args.class_pictures) if args.class_pictures else None
    load_after = os.getloadavg()
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(*load_before, *load_after))
    if args.sheet and pictures:
        sheet(pictures[:3], args.sheet)
        print(f"wrote {args.sheet}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "summary": summary,
                    "photos": rows,
                    "class_pictures": drawn,
                    "amx": precision.cpu_has_bf16(),
                    "load_average_before": load_before,
                    "load_average_after": load_after,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
