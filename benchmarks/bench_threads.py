"""How a dream step shares the CPU: thread count and OpenMP wait policy, alone and beside busy processes.

Each configuration runs in a fresh process (the wait policy is read when torch loads its OpenMP runtime): the
unit is one dream step as the command line takes it (`render.ascend` on EfficientNet-Lite0 at its default layer,
precision auto) on a 224 or 512 px picture, timed as a median over repeats. "busy" runs it beside processes
that keep every core busy (pure Python loops); "pair" runs two such processes side by side. Ratios are to the
same step alone with dreamscope's policy and all cores, measured in the same run. Policies: dreamscope's (a short spin, see
runtime.py), GNU OpenMP's own default (spin 300,000 turns) and passive (sleep at once). With --probe it also
times whole default `dreamscope probe` runs, alone and two side by side. Run it alone on an idle machine:

    .venv/bin/python benchmarks/bench_threads.py [--probe] [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

REPEATS = 12
SIZES = (224, 512)
POLICIES = {
    "dreamscope (spin 3000)": {},
    "OpenMP default (spin 300000)": {"GOMP_SPINCOUNT": "300000"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
}
PROBE_LIMIT = 300  # seconds; the spinning default can take ten times longer than that side by side

STEP = r"""
import os, sys, time, json
import dreamscope  # sets the wait policy unless the environment chose one
import torch
from dreamscope import runtime
from dreamscope.optvis import render
from dreamscope.models import load_model, precision
from dreamscope.optvis.objectives import layer_l2
runtime.configure(int(sys.argv[1]))  # as the command line does: threads and the allocator's policy
model = load_model("efficientnet-lite0", "cpu")
side, repeats = int(sys.argv[3]), int(sys.argv[2])
x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
steps = render.ascend(precision.at(model, "auto"), layer_l2(model.spec.default_layer), x, steps=3 + repeats,
                      step_size=0.015, jitter=32, generator=torch.Generator().manual_seed(0))
for _ in range(3):
    next(steps)
times = []
for _ in range(repeats):
    start = time.perf_counter(); next(steps); times.append(time.perf_counter() - start)
print(json.dumps(times))
"""

BUSY = "while True: pass"


def _env(policy: dict) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
    }
    return {**env, **policy}


def _beside(neighbours: int, run):
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(neighbours)]
    try:
        time.sleep(0.5 if busy else 0)
        return run()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


def measure(side: int, threads: int, policy: dict, neighbours: int = 0, pair: bool = False) -> float:
    """Median seconds per step in a fresh process; `neighbours` busy loops beside it, or a second identical process."""

    def run():
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", STEP, str(threads), str(REPEATS), str(side)],
                env=_env(policy),
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2 if pair else 1)
        ]
        return max(statistics.median(json.loads(p.communicate()[0])) for p in procs)

    return _beside(neighbours, run)


def probe_seconds(policy: dict, photo: str, folder: str, pair: bool) -> float | None:
    """Wall time of a default `dreamscope probe` (the slower of two side by side); None past PROBE_LIMIT."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dreamscope", "probe", photo, "-o", os.path.join(folder, f"r{i}-{started}/"), "-q"],
            env=_env(policy),
        )
        for i in range(2 if pair else 1)
    ]
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, PROBE_LIMIT - (time.perf_counter() - started)))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.wait()
        return None
    return time.perf_counter() - started


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    rows = []
    default = POLICIES["dreamscope (spin 3000)"]
    for side in SIZES:
        baseline = measure(side, cores, default)
        for name, policy in POLICIES.items():
            for threads in (cores, 1):
                for where, neighbours, pair in (
                    ("alone", 0, False),
                    (f"beside {cores} busy loops", cores, False),
                    ("two processes", 0, True),
                ):
                    first = (policy, threads, neighbours, pair) == (default, cores, 0, False)
                    seconds = baseline if first else measure(side, threads, policy, neighbours, pair)
                    rows.append(
                        {
                            "unit": f"step at {side} px",
                            "policy": name,
                            "threads": threads,
                            "where": where,
                            "seconds": seconds,
                            "ratio": seconds / baseline,
                        }
                    )
    if "--probe" in sys.argv:
        import tempfile

        from PIL import Image
        from skimage import data

        with tempfile.TemporaryDirectory() as folder:
            photo = os.path.join(folder, "coffee.png")
            Image.fromarray(data.coffee()).save(photo)
            baseline = probe_seconds(default, photo, folder, False)
            for name, policy in POLICIES.items():
                for where, pair in (("alone", False), ("two processes", True)):
                    seconds = baseline if (policy, pair) == (default, False) else probe_seconds(policy, photo, folder, pair)
                    rows.append(
                        {
                            "unit": "default probe of coffee.png",
                            "policy": name,
                            "threads": cores,
                            "where": where,
                            "seconds": seconds,
                            "ratio": None if seconds is None else seconds / baseline,
                        }
                    )
    load_after = os.getloadavg()
    if "--json" in sys.argv:
        print(json.dumps({"cores": cores, "load_before": load_before, "load_after": load_after, "rows": rows}, indent=2))
        return
    print(f"{cores} cores; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'unit':<28}{'policy':<30}{'threads':>8}  {'where':<24}{'seconds':>9}{'ratio':>7}")
    for row in rows:
        seconds = f"{row['seconds']:9.3f}" if row["seconds"] is not None else f"{'>' + str(PROBE_LIMIT):>9}"
        ratio = f"{row['ratio']:7.2f}" if row["ratio"] is not None else f"{'':>7}"
        print(f"{row['unit']:<28}{row['policy']:<30}{row['threads']:>8}  {row['where']:<24}{seconds}{ratio}")


if __name__ == "__main__":
    main()
