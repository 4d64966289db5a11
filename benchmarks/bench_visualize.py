"""How long does a default class picture take, against the defaults before issue 26's speed work?

Draws the first N of quality_visualize.py's 48 benchmark classes with `visualize` under each variant, interleaved
class by class (so a change in the machine's speed touches every variant alike), and reports each variant's median
seconds a picture and the median, over the classes, of its time over the reference's. The variants:

- before: float32, the network seeing one padded view a step (248 px for a 224 px picture): the defaults until
  2026-12-07;
- one whole view: bfloat16 where `auto` chooses it, one view a step at the picture's own size (224 px): the
  defaults for a day;
- two crops, every step: two random crops a step, each about 0.6 of the picture's side (136 px), all 150 steps: the
  defaults for a day;
- stopping when sure: the same, ending once the network's probability for the class averages 0.99 over 20 steps:
  the defaults for another day;
- now: today's defaults (the same, following the skip gradient, `--skip-gradient 0.5`).

How often the judge names the class is quality_visualize.py's to measure (it draws all 48 classes); this only
times. Run it alone, nothing else on the machine:

    .venv/bin/python benchmarks/bench_visualize.py [--classes 12] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import dreamscope
from dreamscope import runtime
from dreamscope.models import load_model, precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_visualize import CLASSES, NEW_CLASSES

VARIANTS = {
    "before": {"precision": "fp32", "view": "padded", "views": 1, "crop": 1.0, "confidence": 0, "skip_gradient": 1},
    "one whole view": {"views": 1, "crop": 1.0, "confidence": 0, "skip_gradient": 1},
    "two crops, every step": {"confidence": 0, "skip_gradient": 1},
    "stopping when sure": {"skip_gradient": 1},
    "now": {},
}
REFERENCE = "before"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=12, help="how many of the 48 benchmark classes (default 12)")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    runtime.configure()
    model = load_model(args.model, "cpu")
    names = (CLASSES + NEW_CLASSES)[: args.classes]
    load_before = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; auto means "
        f"{precision.resolve('auto', model)} here; {len(names)} classes; load average {load_before[0]:.2f}",
        flush=True,
    )
    for fields in VARIANTS.values():  # untimed warm-up: one-off costs (the bfloat16 twin, oneDNN's kernels)
        dreamscope.visualize(names[0], model=model, steps=3, **fields)
    seconds = {variant: [] for variant in VARIANTS}
    for name in names:
        for variant, fields in VARIANTS.items():
            start = time.perf_counter()
            dreamscope.visualize(name, model=model, **fields)
            seconds[variant].append(time.perf_counter() - start)
        print(f"{name:20s} " + ", ".join(f"{v} {s[-1]:.2f} s" for v, s in seconds.items()), file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    summary = {
        variant: {
            "seconds_median": statistics.median(times),
            "ratio_to_before": statistics.median(t / r for t, r in zip(times, seconds[REFERENCE])),
        }
        for variant, times in seconds.items()
    }
    for variant, figures in summary.items():
        print(f"{variant:22s} {figures['seconds_median']:.2f} s a picture, {figures['ratio_to_before']:.2f}x before's")
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(*load_before, *load_after))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "classes": names,
                    "variants": VARIANTS,
                    "summary": summary,
                    "seconds": seconds,
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "auto": precision.resolve("auto", model),
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
