"""Benchmark a dream step and a 4K dream: dreamscope against a plain reference loop.

Run from the repository root (`make bench`, or `.venv/bin/python benchmarks/bench_dream.py`):

1. Seconds per dream step, GFLOP/s and FLOPs at SIZExSIZE px, at the model's default dream layer and at the
   deepest layer (`head`), for
     (a) dreamscope's step: `render.objective_gradient` + the normalized update, as `render.ascend` does it
         (the forward pass stops after the layer via taps; the loaded model's parameters are frozen), and
     (b) a plain reference loop: a fresh copy of the network (`spec.build()` + `load_state_dict`) with
         parameters left trainable, a full forward pass to the logits with a forward hook grabbing the layer,
         loss = mean square of the activation, `loss.backward()`, the same normalized step.
   Both use the same jitter shifts (same seed). FLOPs (forward + backward) come from
   `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matrix products only.
2. Peak memory (the child's peak RSS) and wall time of `python -m dreamscope dream` on a 3840x2160 photo with
   default settings except `--steps`, tiled (default `--tile auto`) and untiled (`--tile off`).

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

from dreamscope import render, transforms
from dreamscope.models import load_model
from dreamscope.models.weights import load_state_dict_file
from dreamscope.objectives import layer_l2
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


def dreamscope_step(model, objective, x, generator, step_size, jitter, tile_size):
    """One step exactly as `render.ascend` takes it (tiled only if the picture is larger than `tile_size`)."""
    shift = transforms.random_shift(generator, jitter)
    loss, grad = render.objective_gradient(model, objective, transforms.roll(x, shift), tile_size)
    grad = transforms.roll(grad, (-shift[0], -shift[1]))
    return (x + step_size * grad / (grad.abs().mean() + 1e-8)).clamp_(0.0, 1.0), grad


class ReferenceLoop:
    """The textbook DeepDream step: whole network, trainable parameters, a forward hook, loss.backward()."""

    def __init__(self, spec, module_path: str):
        self.spec = spec
        self.net = spec.build()
        self.net.load_state_dict(load_state_dict_file(spec.weights.path()))
        self.net.eval()  # BatchNorm uses its running statistics, as a dream must; parameters stay requires_grad=True
        self.activation = None
        module = dict(self.net.named_modules())[module_path]
        module.register_forward_hook(self._grab)

    def _grab(self, _module, _inputs, output):
        self.activation = output

    def step(self, x, generator, step_size, jitter):
        if jitter > 0:
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
        else:
            dy, dx = 0, 0
        rolled = torch.roll(x, shifts=(dy, dx), dims=(-2, -1)).detach().requires_grad_(True)
        self.net.zero_grad()
        self.net(self.spec.to_input(rolled))  # all the way to the logits
        loss = self.activation.pow(2).mean()
        loss.backward()
        grad = torch.roll(rolled.grad, shifts=(-dy, -dx), dims=(-2, -1))
        return (x + step_size * grad / (grad.abs().mean() + 1e-8)).clamp(0.0, 1.0), grad


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
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


def bench_steps(model, layer: str, size: int, warmup: int, repeats: int, seed: int) -> dict:
    step_size, jitter = DEFAULTS.step_size, DEFAULTS.jitter
    # The default tiling policy ("auto"): untiled up to a megapixel, as a dream would run at this size.
    tile = dream_recipe.AUTO_TILE_SIZE if size * size > dream_recipe.AUTO_TILE_ABOVE else None
    info = model.layer(layer)
    objective = layer_l2(layer)
    reference = ReferenceLoop(model.spec, info.module)
    photo = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))

    # Same picture and same shift: both must produce the same gradient (the reference's is the textbook one).
    _, g_ds = dreamscope_step(model, objective, photo, torch.Generator().manual_seed(seed), step_size, jitter, tile)
    _, g_ref = reference.step(photo, torch.Generator().manual_seed(seed), step_size, jitter)
    grad_rel_diff = float((g_ds - g_ref).abs().max() / g_ref.abs().max().clamp_min(1e-30))

    flops_ds = count_flops(lambda: dreamscope_step(model, objective, photo, torch.Generator().manual_seed(seed), step_size, jitter, tile))
    flops_ref = count_flops(lambda: reference.step(photo, torch.Generator().manual_seed(seed), step_size, jitter))

    # Each variant iterates on its own picture with its own seeded generator; the two are interleaved step by
    # step so that any drift of the machine's speed hits both alike.
    x_ds, x_ref = photo.clone(), photo.clone()
    gen_ds, gen_ref = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    times_ds, times_ref = [], []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        x_ds, _ = dreamscope_step(model, objective, x_ds, gen_ds, step_size, jitter, tile)
        t1 = time.perf_counter()
        x_ref, _ = reference.step(x_ref, gen_ref, step_size, jitter)
        t2 = time.perf_counter()
        if i >= warmup:
            times_ds.append(t1 - t0)
            times_ref.append(t2 - t1)
    s_ds, s_ref = statistics.median(times_ds), statistics.median(times_ref)
    return {
        "layer": layer,
        "stride": info.stride,
        "channels": info.channels,
        "size": size,
        "dreamscope_s": s_ds,
        "reference_s": s_ref,
        "speedup": s_ref / s_ds,
        "dreamscope_gflop": flops_ds / 1e9,
        "reference_gflop": flops_ref / 1e9,
        "flop_ratio": flops_ref / flops_ds,
        "dreamscope_gflops": flops_ds / 1e9 / s_ds,
        "reference_gflops": flops_ref / 1e9 / s_ref,
        "dreamscope_min_s": min(times_ds),
        "reference_min_s": min(times_ref),
        "speedup_min": min(times_ref) / min(times_ds),
        "dreamscope_times_s": times_ds,
        "reference_times_s": times_ref,
        "grad_max_rel_diff": grad_rel_diff,
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
    result["command"] = " ".join(["python", "-m", "dreamscope", "dream", photo.name, "-o", out.name, *dream_cmd[dream_cmd.index("-q"):]])
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


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" if i else ":" + "-" * (w + 1) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def step_table(rows: list[dict]) -> str:
    headers = ["layer (stride)", "variant", "s/step (median)", "s/step (min)", "GFLOP/step", "GFLOP/s", "speed-up", "FLOP ratio"]
    out = []
    for r in rows:
        name = f"{r['layer']} (/{r['stride']})"
        out.append([name, "dreamscope", f"{r['dreamscope_s']:.3f}", f"{r['dreamscope_min_s']:.3f}", f"{r['dreamscope_gflop']:.2f}",
                    f"{r['dreamscope_gflops']:.1f}", "", ""])
        out.append([name, "reference", f"{r['reference_s']:.3f}", f"{r['reference_min_s']:.3f}", f"{r['reference_gflop']:.2f}",
                    f"{r['reference_gflops']:.1f}", f"{r['speedup']:.2f}x", f"{r['flop_ratio']:.2f}x"])
    return table(headers, out)


def memory_table(m: dict) -> str:
    rows = []
    for label, key in (("baseline (256 px, 1 step, 1 octave)", "baseline"), (f"tiled (--tile {m['tile']})", "tiled"), (f"untiled (--tile {UNTILED})", "untiled")):
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
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--threads", type=int, help="torch threads for the step benchmark (default: the CPU cores this process may use)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    size = args.size or (256 if args.quick else 512)
    repeats = args.repeats or (3 if args.quick else 9)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    cores = cpu_count()
    threads = args.threads or cores
    torch.set_num_threads(threads)
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
    log(f"dreamscope benchmark: {args.model}, default layer {default_layer}, {size}x{size} px, torch {torch.__version__}, "
        f"{info['processor']}, {cores} cores, {threads} threads, median of {repeats} steps after {warmup} warm-up")

    info["load_average_before"] = os.getloadavg()
    steps = []
    for layer in layers:
        log(f"step benchmark at {layer} ...")
        steps.append(bench_steps(model, layer, size, warmup, repeats, args.seed))

    memory = None
    if not args.no_memory:
        width, height = (1280, 720) if args.quick else (3840, 2160)
        steps_per_octave = 1 if args.quick else args.steps_4k
        octaves = args.octaves_4k or (2 if args.quick else None)
        log(f"memory benchmark: {width}x{height} dream, {steps_per_octave} steps per octave ...")
        memory = bench_memory(width, height, steps_per_octave, octaves, log)

    info["load_average_after"] = os.getloadavg()
    print()
    print(f"{args.model}, {size}x{size} px, median s/step of {repeats} (after {warmup} warm-up), torch {torch.__version__}, "
          f"{info['processor']}, {cores} cores, {threads} threads; speed-up and FLOP ratio = reference / dreamscope")
    print(step_table(steps))
    worst = max(r["grad_max_rel_diff"] for r in steps)
    print(f"(gradients of the two variants agree to {worst:.1e} of their largest entry)")
    if memory:
        print()
        print(f"{memory['width']}x{memory['height']} dream, default settings except --steps {memory['steps_per_octave']} "
              f"({memory['octaves']} octaves: " + ", ".join(f"{w}x{h}" for h, w in memory["octave_sizes"]) + "), default layer; "
              f"untiled/tiled peak RSS {memory['memory_ratio']:.2f}x ({memory['memory_ratio_above_baseline']:.2f}x above the baseline)")
        print(memory_table(memory))
        for key in ("baseline", "tiled", "untiled"):
            print(f"  {key}: {memory[key]['command']}")

    print()
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *info["load_average_before"], *info["load_average_after"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "steps": steps, "memory": memory}, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
