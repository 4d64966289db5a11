"""Benchmark a dream step, a 4K dream, and this dreamscope against an earlier one.

Run from the repository root (`make bench`, or `.venv/bin/python benchmarks/bench_dream.py`), alone on the machine:

1. Seconds per dream step (median and minimum of steps interleaved across the variants), GFLOP/step and GFLOP/s,
   at SIZExSIZE px, at the model's default dream layer and at the deepest layer (`head`), for
     - dreamscope: `render.ascend` taking its steps (float32, and the bfloat16 twin of `models.precision`);
     - the lean reference: the same network built plainly (`spec.build()` + `load_state_dict`, BatchNorm as
       trained, NCHW), parameters frozen, a forward hook on the layer, the pass run on to the logits,
       `torch.autograd.grad` of the activation's mean square with respect to the picture, the same update;
     - the textbook reference: the same with trainable parameters and `loss.backward()`;
     - with --peers, dreamlens (its `amplify`) and torch-dreams (`Dreamer.render`), one step of each package's own
       on the same loaded network, from benchmarks/peers.py (run this script with .venv-peers/bin/python).
   Times are also given over the lean reference, and at equal pixels (torch-dreams shows the network ~0.72 of
   the picture). The step's overhead: the share of dreamscope's float32 steps spent outside
   `render.objective_gradient`, timed inside the same steps. FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products).
2. Peak memory (the child's peak RSS) and wall time of `python -m dreamscope dream` on a 3840x2160 photo with
   default settings except `--steps`, tiled (default `--tile auto`) and untiled (`--tile off`).
3. With --before SRC (an earlier checkout's src folder, e.g. `git worktree add /tmp/before <commit>`): a dream
   step, a zoom frame (512x341), a video frame (448x300) and a default class picture, each code tree in its own
   process as the command line runs it, alternating, medians of --rounds.

`--quick` shrinks everything for a smoke run. `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

import peers as peer_adapters  # beside this script
from dreamscope import runtime
from dreamscope.models import load_model, precision
from dreamscope.models.weights import load_state_dict_file
from dreamscope.optvis import render, transforms
from dreamscope.optvis.objectives import layer_l2
from dreamscope.recipes import dream as dream_recipe
from dreamscope.settings import DreamSettings

DEFAULTS = DreamSettings()

UNTILED = "off"  # --tile off: no tiling


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------------------------
# 1. one dream step


class Dreamscope:
    """dreamscope's own step: `render.ascend` taking one step at a time, at a precision ("fp32" or "bf16")."""

    def __init__(self, model, objective, x, seed, chosen, tile):
        self.events = render.ascend(
            precision.at(model, chosen),
            objective,
            x.clone(),
            steps=1_000_000,
            step_size=DEFAULTS.step_size,
            jitter=DEFAULTS.jitter,
            generator=torch.Generator().manual_seed(seed),
            tile=tile,
        )

    def step(self):
        next(self.events)


def step_overhead(model, objective, x, seed, tile, steps: int) -> float:
    """The share of `render.ascend`'s step spent outside `render.objective_gradient`, timed inside the same steps
    (timing the two apart, interleaved with the other variants, leaves the difference in the noise)."""
    inner = []
    gradient = render.objective_gradient

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return gradient(*args, **kwargs)
        finally:
            inner.append(time.perf_counter() - start)

    events = render.ascend(
        model,
        objective,
        x,
        steps=steps + 2,
        step_size=DEFAULTS.step_size,
        jitter=DEFAULTS.jitter,
        generator=torch.Generator().manual_seed(seed),
        tile=tile,
    )
    next(events), next(events)  # warm-up
    render.objective_gradient = timed
    try:
        inner.clear()
        start = time.perf_counter()
        for _ in events:
            pass
        outer = time.perf_counter() - start
    finally:
        render.objective_gradient = gradient
    return 1 - sum(inner) / outer


class Reference:
    """A DeepDream step written the plain way on the same network (`spec.build()` + `load_state_dict`, eval mode,
    BatchNorm as trained, NCHW): a forward hook grabs the layer, the pass runs on to the logits, the gradient of
    the activation's mean square with respect to the shifted picture, the same normalized, clamped update.

    `lean`: parameters frozen and `torch.autograd.grad` for the picture only (what a careful user writes).
    Not lean: the textbook loop, parameters left trainable and `loss.backward()`, which also computes every
    weight gradient.
    """

    def __init__(self, spec, module_path: str, x, seed, lean: bool):
        self.spec, self.lean = spec, lean
        self.net = spec.build()
        self.net.load_state_dict(load_state_dict_file(spec.weights.path()))
        self.net.eval().requires_grad_(not lean)
        self.activation = None
        dict(self.net.named_modules())[module_path].register_forward_hook(self._grab)
        self.x, self.generator = x.clone(), torch.Generator().manual_seed(seed)

    def _grab(self, _module, _inputs, output):
        self.activation = output

    def gradient(self, x):
        x = x.detach().requires_grad_(True)
        self.net(self.spec.to_input(x))  # all the way to the logits
        loss = self.activation.pow(2).mean()
        if self.lean:
            return torch.autograd.grad(loss, x)[0]
        self.net.zero_grad()
        loss.backward()
        return x.grad

    def step(self):
        dy, dx = transforms.random_shift(self.generator, DEFAULTS.jitter)
        grad = self.gradient(torch.roll(self.x, (dy, dx), (-2, -1)))
        grad = torch.roll(grad, (-dy, -dx), (-2, -1))
        self.x = (self.x + DEFAULTS.step_size * grad / (grad.abs().mean() + 1e-8)).clamp(0.0, 1.0)


def _conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    """FLOPs of a convolution's backward: each gradient asked for costs what the forward costs.

    Replaces torch's own formula, whose weight-gradient term ignores `groups` (torch 2.13 counts a depthwise
    convolution's weight gradient `channels` times over), which would inflate the reference's count ~10x.
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def count_flops(fn) -> int:
    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def _relative(a, b) -> float:
    return float((a - b).norm() / b.norm())


def bench_steps(model, layer: str, size: int, warmup: int, repeats: int, seed: int, peers: bool, log) -> dict:
    # The default tiling policy ("auto"): untiled up to a megapixel, as a dream would run at this size.
    tile = dream_recipe.AUTO_TILE_SIZE if size * size > dream_recipe.AUTO_TILE_ABOVE else None
    info = model.layer(layer)
    objective = layer_l2(layer)
    photo = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    variants = {
        "dreamscope": Dreamscope(model, objective, photo, seed, "fp32", tile),
        "dreamscope bf16": Dreamscope(model, objective, photo, seed, "bf16", tile),
        "lean reference": Reference(model.spec, info.module, photo, seed, lean=True),
        "textbook reference": Reference(model.spec, info.module, photo, seed, lean=False),
    }
    pixels = {name: 1.0 for name in variants}
    if peers:  # each with its own entry point and defaults (dreamlens: `amplify` itself, its real per-step cost)
        versions = peer_adapters.available("dream")
        for name, make in peer_adapters.DREAM_PEERS.items():
            if versions.get(name):
                peer = make(model, info.module, size, seed=seed, **({"mode": "amplify"} if name == "dreamlens" else {}))
                label = f"{name} {versions[name]}"
                variants[label], pixels[label] = peer, peer.pixels / (size * size)
            else:
                log(f"  {name}: not installed (see benchmarks/peers.py), left out")
    # The same picture through each: the gradients must agree (dreamscope's folds BatchNorm and changes the layout).
    reference_grad = variants["lean reference"].gradient(photo)
    grad_fp32 = render.objective_gradient(model, objective, photo)[1]
    grad_bf16 = render.objective_gradient(precision.at(model, "bf16"), objective, photo)[1]
    flops = {name: count_flops(variant.step) for name, variant in variants.items()}
    # Interleaved step by step, so any drift of the machine's speed hits all alike.
    times = {name: [] for name in variants}
    for i in range(warmup + repeats):
        for name, variant in variants.items():
            start = time.perf_counter()
            variant.step()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    lean = statistics.median(times["lean reference"])
    rows = {}
    for name in variants:
        median = statistics.median(times[name])
        rows[name] = {
            "s": median,
            "min_s": min(times[name]),
            "gflop": flops[name] / 1e9,
            "gflops": flops[name] / 1e9 / median,
            "pixels_seen": pixels[name],
            "ratio_to_lean_reference": median / lean,
            # at equal pixels: a variant that sees a fraction of the picture would take 1/fraction as long
            "ratio_at_equal_pixels": median / pixels[name] / lean,
            "times_s": times[name],
        }
    return {
        "layer": layer,
        "stride": info.stride,
        "channels": info.channels,
        "size": size,
        "variants": rows,
        "step_overhead": step_overhead(model, objective, photo, seed, tile, repeats),
        "grad_relative_diff_fp32_vs_reference": _relative(grad_fp32, reference_grad),
        "grad_relative_diff_bf16_vs_fp32": _relative(grad_bf16, grad_fp32),
    }


# --------------------------------------------------------------------------------------------------------------
# 2. a whole dream in a child process: peak RSS and wall time

# A fresh middle process per measurement: RUSAGE_CHILDREN's ru_maxrss is the largest of all the children a
# process has waited for, so measuring each dream from its own parent keeps the figures apart.
_MEASURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t0 = time.perf_counter()
    rc = subprocess.call(sys.argv[1:])
    seconds = time.perf_counter() - t0
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"rc": rc, "seconds": seconds, "peak_rss_kib": kib}))
    """
)


def make_photo(path: Path, width: int, height: int) -> None:
    from PIL import Image, ImageOps
    from skimage import data

    ImageOps.fit(Image.fromarray(data.coffee()), (width, height), Image.LANCZOS).save(path)


def measure_dream(photo: Path, out: Path, extra: list[str]) -> dict:
    dream_cmd = [sys.executable, "-m", "dreamscope", "dream", str(photo), "-o", str(out), "-q", "--device", "cpu", *extra]
    done = subprocess.run([sys.executable, "-c", _MEASURE, *dream_cmd], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["args"] = " ".join(extra)
    result["command"] = " ".join(
        ["python", "-m", "dreamscope", "dream", photo.name, "-o", out.name, *dream_cmd[dream_cmd.index("-q") :]]
    )
    if result["rc"] != 0:  # e.g. killed for memory (-9): reported, not fatal
        print(f"dream failed ({result['rc']}): {' '.join(dream_cmd)}\n{done.stderr}", file=sys.stderr)
    result["peak_rss_mib"] = result.pop("peak_rss_kib") / 1024  # Linux reports KiB
    return result


def bench_memory(width: int, height: int, steps: int, octaves: int | None, log) -> dict:
    with tempfile.TemporaryDirectory(prefix="dreamscope-bench-") as tmp:
        tmp = Path(tmp)
        photo = tmp / f"photo_{width}x{height}.png"
        make_photo(photo, width, height)
        small = tmp / "photo_256.png"
        make_photo(small, 256, 256)
        common = ["--steps", str(steps)] + (["--octaves", str(octaves)] if octaves else [])
        log("  baseline: 1 step, 1 octave on 256x256 (python + torch + model load)")
        baseline = measure_dream(small, tmp / "base.png", ["--steps", "1", "--octaves", "1"])
        log(f"  tiled (default --tile {DEFAULTS.tile}): {' '.join(common)}")
        tiled = measure_dream(photo, tmp / "tiled.png", common)
        log(f"  untiled (--tile {UNTILED}): {' '.join(common)}")
        untiled = measure_dream(photo, tmp / "untiled.png", common + ["--tile", str(UNTILED)])
    octs = octaves or DEFAULTS.octaves
    return {
        "width": width,
        "height": height,
        "steps_per_octave": steps,
        "octaves": octs,
        "octave_sizes": dream_recipe.octave_sizes(height, width, octs, DEFAULTS.octave_scale),
        "tile": DEFAULTS.tile,
        "baseline": baseline,
        "tiled": tiled,
        "untiled": untiled,
        "memory_ratio": untiled["peak_rss_mib"] / tiled["peak_rss_mib"],
        "memory_ratio_above_baseline": (untiled["peak_rss_mib"] - baseline["peak_rss_mib"])
        / max(tiled["peak_rss_mib"] - baseline["peak_rss_mib"], 1e-9),
    }


# --------------------------------------------------------------------------------------------------------------
# 3. dreamscope against an earlier dreamscope: a dream step, a zoom frame and a video frame, each code tree in
# its own process (as the command line runs it: `runtime.configure` first), alternating A B A B

_TREE = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import dreamscope, torch
    from PIL import Image
    from skimage import data
    from dreamscope import runtime
    from dreamscope.optvis import render
    from dreamscope.models import load_model
    from dreamscope.optvis.objectives import layer_l2
    from dreamscope.settings import ZoomSettings
    side, frames, chosen = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    runtime.configure()
    model = load_model("efficientnet-lite0", "cpu")
    extra = {"precision": chosen} if "precision" in ZoomSettings.__dataclass_fields__ else {}
    stepper = model
    if extra:
        from dreamscope.models import precision
        stepper = precision.at(model, chosen)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    events = render.ascend(stepper, layer_l2(model.spec.default_layer), x, steps=10, step_size=0.015, jitter=32,
                           generator=torch.Generator().manual_seed(0))
    times = []
    for i in range(10):
        start = time.perf_counter()
        next(events)
        times.append(time.perf_counter() - start)
    photo = Image.fromarray(data.coffee()).resize((512, 341), Image.LANCZOS)

    def per_frame(events):
        stamps = [time.perf_counter() for event in events if event.frame is not None]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]  # the first frame (more steps, set-up) is left out
        return sorted(gaps)[len(gaps) // 2]

    zoom = per_frame(dreamscope.zoom_iter(photo, model=model, frames=frames + 1, **extra))
    clip = [photo.crop((3 * i, i, 3 * i + 448, i + 300)) for i in range(frames + 1)]
    video = per_frame(dreamscope.video_iter(clip, model=model, **extra))
    start = time.perf_counter()
    dreamscope.visualize("banana", model=model)  # default settings: a 224 px class picture
    print(json.dumps({"step_s": sorted(times[2:])[4], "zoom_frame_s": zoom, "video_frame_s": video,
                      "visualize_s": time.perf_counter() - start}))
    """
)


def bench_trees(trees: dict[str, tuple[str, str]], side: int, frames: int, rounds: int, log) -> dict:
    """`trees` maps a label to (a checkout's src folder, precision)."""
    results = {label: [] for label in trees}
    for round_ in range(rounds):
        for label, (src, chosen) in trees.items():
            log(f"  round {round_ + 1}/{rounds}: {label}")
            done = subprocess.run(
                [sys.executable, "-c", _TREE, src, str(side), str(frames), chosen], capture_output=True, text=True, check=True
            )
            results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        label: {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {"runs": runs}
        for label, runs in results.items()
    }


def trees_table(figures: dict, first: str) -> str:
    rows = []
    for label, f in figures.items():
        base = figures[first]
        rows.append(
            [label]
            + [f"{f[key]:.3f} ({f[key] / base[key]:.2f})" for key in ("step_s", "zoom_frame_s", "video_frame_s", "visualize_s")]
        )
    return table(["code", "dream step s (ratio)", "zoom frame s", "video frame s", "class picture s"], rows)


# --------------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" if i else ":" + "-" * (w + 1) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def step_table(rows: list[dict]) -> str:
    headers = [
        "layer (stride)",
        "variant",
        "s/step (median)",
        "s/step (min)",
        "GFLOP/step",
        "GFLOP/s",
        "pixels seen",
        "time / lean reference",
        "at equal pixels",
    ]
    out = []
    for r in rows:
        name = f"{r['layer']} (/{r['stride']})"
        for variant, v in r["variants"].items():
            out.append(
                [
                    name,
                    variant,
                    f"{v['s']:.3f}",
                    f"{v['min_s']:.3f}",
                    f"{v['gflop']:.2f}",
                    f"{v['gflops']:.1f}",
                    f"{v['pixels_seen']:.2f}",
                    f"{v['ratio_to_lean_reference']:.2f}",
                    f"{v['ratio_at_equal_pixels']:.2f}",
                ]
            )
    return table(headers, out)


def memory_table(m: dict) -> str:
    rows = []
    for label, key in (
        ("baseline (256 px, 1 step, 1 octave)", "baseline"),
        (f"tiled (--tile {m['tile']})", "tiled"),
        (f"untiled (--tile {UNTILED})", "untiled"),
    ):
        r = m[key]
        failed = f" (FAILED, exit {r['rc']})" if r["rc"] else ""
        rows.append([label + failed, f"{r['peak_rss_mib']:.0f}", f"{r['seconds']:.1f}"])
    return table(["dream", "peak RSS (MiB)", "wall s"], rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 256 px, few steps, a 1280x720 memory run instead of 4K")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--size", type=int, help="picture side for the step benchmark (default 512; 256 with --quick)")
    parser.add_argument("--repeats", type=int, help="timed steps per variant (default 9; 3 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2; 1 with --quick)")
    parser.add_argument("--steps-4k", type=int, default=2, help="--steps per octave for the memory dreams (default 2)")
    parser.add_argument("--octaves-4k", type=int, help="--octaves for the memory dreams (default: dreamscope's default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the whole-dream memory benchmark")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also time dreamlens and torch-dreams (installed in .venv-peers: run this script with .venv-peers/bin/python)",
    )
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="an earlier dreamscope's src folder (e.g. from `git worktree add`) "
        "to compare a dream step, a zoom frame and a video frame with",
    )
    parser.add_argument("--frames", type=int, default=6, help="frames timed per zoom and video in that comparison (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of that comparison (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--threads", type=int, help="torch threads for the step benchmark (default: the CPU cores this process may use)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    size = args.size or (256 if args.quick else 512)
    repeats = args.repeats or (3 if args.quick else 9)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    cores = cpu_count()
    threads = runtime.configure(args.threads)  # as the command line does: threads and the allocator's policy
    torch.manual_seed(args.seed)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    model = load_model(args.model, "cpu")
    default_layer = model.spec.default_layer
    layers = list(dict.fromkeys([default_layer, "head"]))
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "model": args.model,
        "default_layer": default_layer,
        "size": size,
        "warmup": warmup,
        "repeats": repeats,
        "step_size": DEFAULTS.step_size,
        "jitter": DEFAULTS.jitter,
    }
    log(
        f"dreamscope benchmark: {args.model}, default layer {default_layer}, {size}x{size} px, torch {torch.__version__}, "
        f"{info['processor']}, {cores} cores, {threads} threads, median of {repeats} steps after {warmup} warm-up"
    )

    info["load_average_before"] = os.getloadavg()
    steps = []
    for layer in layers:
        log(f"step benchmark at {layer} ...")
        steps.append(bench_steps(model, layer, size, warmup, repeats, args.seed, args.peers, log))

    memory = None
    if not args.no_memory:
        width, height = (1280, 720) if args.quick else (3840, 2160)
        steps_per_octave = 1 if args.quick else args.steps_4k
        octaves = args.octaves_4k or (2 if args.quick else None)
        log(f"memory benchmark: {width}x{height} dream, {steps_per_octave} steps per octave ...")
        memory = bench_memory(width, height, steps_per_octave, octaves, log)

    trees = None
    if args.before:
        here = str(Path(__file__).resolve().parents[1] / "src")
        log(f"this dreamscope against the one in {args.before} ...")
        trees = bench_trees(
            {"before": (args.before, "fp32"), "now, fp32": (here, "fp32"), "now, bf16": (here, "bf16")},
            size,
            args.frames,
            args.rounds,
            log,
        )

    info["load_average_after"] = os.getloadavg()
    print()
    print(
        f"{args.model}, {size}x{size} px, median s/step of {repeats} (after {warmup} warm-up), torch {torch.__version__}, "
        f"{info['processor']}, {cores} cores, {threads} threads; speed-up and FLOP ratio = reference / dreamscope"
    )
    print(step_table(steps))
    for r in steps:
        print(
            f"{r['layer']}: dreamscope's step spends {r['step_overhead']:.1%} outside the gradient; its gradient differs from "
            f"the lean reference's by {r['grad_relative_diff_fp32_vs_reference']:.1e} (relative L2), bf16's from fp32's by "
            f"{r['grad_relative_diff_bf16_vs_fp32']:.2f}"
        )
    if trees:
        print()
        print(
            f"dreamscope now against {args.before} (each in its own process, medians of {args.rounds} alternating rounds; "
            f"dream step at {size}x{size} px, zoom and video frames at 512x341 and 448x300, a default class picture; "
            "visualize has no precision setting: it computes in float32 in both 'now' rows)"
        )
        print(trees_table(trees, "before"))
    if memory:
        print()
        print(
            f"{memory['width']}x{memory['height']} dream, default settings except --steps {memory['steps_per_octave']} "
            f"({memory['octaves']} octaves: " + ", ".join(f"{w}x{h}" for h, w in memory["octave_sizes"]) + "), default layer; "
            f"untiled/tiled peak RSS {memory['memory_ratio']:.2f}x ({memory['memory_ratio_above_baseline']:.2f}x above the baseline)"
        )
        print(memory_table(memory))
        for key in ("baseline", "tiled", "untiled"):
            print(f"  {key}: {memory[key]['command']}")

    print()
    print(
        "load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *info["load_average_before"], *info["load_average_after"]
        )
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "steps": steps, "memory": memory, "before": trees}, indent=2) + "\n"
        )
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
