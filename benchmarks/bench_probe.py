"""Time a default `dreamscope probe` report, split into its parts: dreams, feature visualizations, the rest.

    .venv/bin/python benchmarks/bench_probe.py                    # scikit-image's coffee at 512 px, default settings
    .venv/bin/python benchmarks/bench_probe.py --threads 1 --vis-steps 64 --out /tmp/report

Wall time is what a user waits; CPU time (all threads) is the work. On a shared machine the wall time is
inflated: the load average is printed before and after, as in bench_dream.py.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from PIL import Image
from skimage import data

import dreamscope as ds
from dreamscope.pages import probe as report
from dreamscope.recipes import probe as probe_recipe
from dreamscope.settings import ProbeSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="longest side of the photo (default 512)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--vis-size", type=int, default=ProbeSettings().vis_size)
    parser.add_argument("--vis-steps", type=int, default=ProbeSettings().vis_steps)
    parser.add_argument("--channels", type=int, default=ProbeSettings().channels)
    parser.add_argument("--out", help="also write the report into this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    photo = Image.fromarray(data.coffee())
    photo = photo.resize((args.size, round(photo.height * args.size / photo.width)), Image.LANCZOS)
    wall, cpu = time.perf_counter(), time.process_time()
    model = ds.load_model()
    spent = {"load model": (time.perf_counter() - wall, time.process_time() - cpu)}
    stage, since = "classify", (time.perf_counter(), time.process_time())
    last = None
    for last in probe_recipe.probe_iter(
        photo, model=model, channels=args.channels, vis_size=args.vis_size, vis_steps=args.vis_steps
    ):
        # the time up to an event counts for the part before it: ranking and heat maps included
        key = "done" if last.done else f"{last.at('layer').label}: {'visualizing' if last.at('octave') is None else 'dreaming'}"
        if key != stage:
            now = (time.perf_counter(), time.process_time())
            before = spent.get(stage, (0.0, 0.0))
            spent[stage] = (before[0] + now[0] - since[0], before[1] + now[1] - since[1])
            stage, since = key, now
    if args.out:
        now = (time.perf_counter(), time.process_time())
        report.write_report(last.result, args.out, source="coffee.png")
        spent["write report"] = (time.perf_counter() - now[0], time.process_time() - now[1])
    total = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"{'part':<30}{'wall s':>9}{'cpu s':>9}")
    for name, (w, c) in spent.items():
        print(f"{name:<30}{w:>9.1f}{c:>9.1f}")
    print(f"{'total':<30}{total[0]:>9.1f}{total[1]:>9.1f}")
    print(f"layers {', '.join(layer.name for layer in last.result.layers)}; photo {photo.width}x{photo.height}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
