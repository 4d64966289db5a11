"""Benchmark zoom and video: flicker, drift, speed and memory, each against a plain reference loop in one run.

Run from the repository root (`make bench-video`, or `.venv/bin/python benchmarks/bench_video.py`):

1. Flicker on two clips whose true motion is known: a pan (crops of scikit-image's cat photo, the window moving
   3 px right and 1 px down a frame) and the same pan with a moving object and an occlusion (tests/conftest.py
   `occlusion_frames`: a disc of the coffee photo crossing the frame behind a brick pillar). Flicker = mean
   absolute difference (0-255) between consecutive frames after undoing the motion, over what both frames show
   (`recipes.video.flicker`). Dreamed (a) frame by frame on its own (`blend=0`: the reference), (b) carrying the
   warped dream's pixels (`carry="pixels"`, the way before issue 20) and (c) carrying its detail (the default).
   Also each one's dream strength (mean absolute change from the source frame) and seconds per frame.
2. Drift over a long zoom (default 240 frames, zoom 1.04, rotate 0.5): mean brightness relative to the first
   frame, share of clipped values (a channel at 0 or 255) and of pixels with any channel clipped, sharpness
   (mean absolute Laplacian) relative to the first frame; for (a) a plain loop (dream with clamped steps, zoom,
   repeat; nothing else) and (b) `recipes.zoom.zoom_iter`. Same layer, octaves, steps, seeds.
3. Memory of `dreamscope video` in a child process for a short and a 4x longer clip: peak RSS must not grow
   with the clip's length, since frames stream.

`--quick` shrinks everything for a smoke run. `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import dreamscope
from dreamscope.io import images
from dreamscope.recipes import dream as dream_recipe
from dreamscope.recipes import video as video_recipe
from dreamscope.recipes import zoom as zoom_recipe
from dreamscope.settings import VideoSettings, ZoomSettings

MOTION = (3, 1)


def pan(count: int, width: int, height: int) -> list[Image.Image]:
    from skimage import data

    big = Image.fromarray(data.chelsea())  # 451x300
    return [
        big.crop((40 + MOTION[0] * i, 60 + MOTION[1] * i, 40 + MOTION[0] * i + width, 60 + MOTION[1] * i + height))
        for i in range(count)
    ]


def strength(out, source) -> float:
    return float(np.mean([np.abs(np.asarray(o, np.float32) - np.asarray(s, np.float32)).mean() for o, s in zip(out, source)]))


def occlusion_clip(frames: int, width: int, height: int):
    from conftest import occlusion_frames

    return occlusion_frames(frames, (width, height), speed=6)


WAYS = {  # name: video settings
    "frame_by_frame": dict(blend=0.0),  # the reference
    "carry_pixels": dict(carry="pixels"),  # dreamscope before issue 20: the warped dream blended into each frame
    "carry_detail": dict(),  # today's default: the dream's own detail moved along the flow
}


def bench_flicker(model, frames: int, width: int, height: int) -> dict:
    clips = {
        "pan": (pan(frames, width, height), (-MOTION[0], -MOTION[1])),
        "occlusion": occlusion_clip(frames + 8, width, height),
    }
    results = {}
    for clip, (source, motion) in clips.items():
        rows = {}
        for name, fields in WAYS.items():
            start = time.perf_counter()
            out = [e.image for e in video_recipe.video_iter(source, model=model, **fields) if e.frame is not None]
            rows[name] = {
                "flicker": video_recipe.flicker(out, motion),
                "strength": strength(out, source),
                "seconds_per_frame": (time.perf_counter() - start) / len(source),
            }
            out[len(out) // 2].save(Path(tempfile.gettempdir()) / f"bench_video_{clip}_{name}.png")
        reference = rows["frame_by_frame"]
        for name in WAYS:
            rows[name]["flicker_ratio"] = rows[name]["flicker"] / reference["flicker"]
            rows[name]["strength_ratio"] = rows[name]["strength"] / reference["strength"]
        rows["source_flicker"] = video_recipe.flicker(source, motion)
        rows["frames"] = len(source)
        results[clip] = rows
    defaults = VideoSettings()
    results["settings"] = {
        "size": [width, height],
        "pan_px": list(MOTION),
        "occlusion": "the pan plus a 28 px disc moving 6 px a frame behind a brick pillar fixed in the frame",
        **{name: getattr(defaults, name) for name in ("blend", "carry", "refresh", "steps", "frame_steps", "octaves")},
    }
    return results


def frame_figures(x: torch.Tensor) -> tuple[float, float, float, float]:
    clipped = (x <= 0.5 / 255) | (x >= 254.5 / 255)
    laplace = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(3, 1, 3, 3)
    return (
        float(x.mean()),
        float(clipped.float().mean()),
        float(clipped.any(1).float().mean()),
        float(F.conv2d(x, laplace, groups=3).abs().mean()),
    )


def summarize(figures: list) -> dict:
    brightness, values, pixels, sharp = (np.array(column) for column in zip(*figures))
    return {
        "max_brightness_change": float(np.max(np.abs(brightness / brightness[0] - 1))),
        "final_brightness_change": float(brightness[-1] / brightness[0] - 1),
        "max_clipped_values": float(values.max()),
        "max_clipped_pixels": float(pixels.max()),
        "final_sharpness_ratio": float(sharp[-1] / sharp[0]),
        "min_sharpness_ratio": float(sharp.min() / sharp[0]),
    }


def bench_drift(model, frames: int, width: int, height: int, zoom: float, rotate: float) -> dict:
    from skimage import data

    photo = Image.fromarray(data.coffee()).resize((width, height), Image.LANCZOS)
    start = time.perf_counter()
    managed = [
        frame_figures(e.tensor)
        for e in zoom_recipe.zoom_iter(photo, frames=frames, zoom=zoom, rotate=rotate, model=model)
        if e.frame is not None
    ]
    managed_time = time.perf_counter() - start
    # The plain loop: the same dream of each frame, clamped steps, no statistics matching.
    x = images.to_tensor(photo)
    objective = dream_recipe.build_objective(model, x, None, None, None)
    settings = ZoomSettings()
    plan = dream_recipe.plan_octaves(model, objective, x.shape[-2:], settings)
    plain = []
    start = time.perf_counter()
    for index in range(frames):
        if index:
            x = zoom_recipe.zoom_rotate(x, zoom, rotate)
        generator = torch.Generator().manual_seed(index)
        event = deque(
            dream_recipe.octave_dream(
                model,
                objective,
                x,
                plan,
                steps=settings.steps,
                step_size=settings.step_size,
                jitter=settings.jitter,
                generator=generator,
            ),
            maxlen=1,
        )[0]  # the last event, the done one, has the frame
        x = event.result
        plain.append(frame_figures(x))
    plain_time = time.perf_counter() - start
    return {
        "plain_loop": {**summarize(plain), "seconds_per_frame": plain_time / frames},
        "dreamscope": {**summarize(managed), "seconds_per_frame": managed_time / frames},
        "settings": {
            "frames": frames,
            "size": [width, height],
            "zoom": zoom,
            "rotate": rotate,
            "octaves": settings.octaves,
            "steps": settings.steps,
        },
    }


def child_peak_mib(args: list[str]) -> float:
    """Peak RSS of a child running `python -m dreamscope ARGS` (each in a fresh process, so maxima don't mix)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "dreamscope", *args], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip()) / 1024


def bench_memory(frames: int, width: int, height: int) -> dict:
    from conftest import write_clip

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in (frames, 4 * frames):
            clip = Path(folder) / f"clip{count}.mp4"
            write_clip(clip, pan(count, width, height) if count <= 100 else (pan(100, width, height) * 4)[:count])
            start = time.perf_counter()
            peak = child_peak_mib(
                [
                    "video",
                    str(clip),
                    "-o",
                    str(Path(folder) / f"out{count}.mp4"),
                    "-q",
                    "--layer",
                    "stage3.1",
                    "--steps",
                    "1",
                    "--frame-steps",
                    "1",
                    "--octaves",
                    "1",
                ]
            )
            rows[f"{count}_frames"] = {"peak_rss_mib": peak, "seconds": time.perf_counter() - start}
    rows["settings"] = {"size": [width, height]}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer, smaller frames")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--parts", default="flicker,drift,memory", help="which to run; the JSON file keeps the figures of the others"
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = dreamscope.load_model()
    results = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    results.update(torch=torch.__version__, threads=torch.get_num_threads(), cpu_count=os.cpu_count())
    quick = args.quick
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    if "flicker" in parts:
        results["flicker"] = bench_flicker(model, 6 if quick else 24, 192, 144)
        print(json.dumps(results["flicker"], indent=2), flush=True)
    if "drift" in parts:
        results["drift"] = bench_drift(model, 20 if quick else 240, 256, 192, 1.04, 0.5)
        print(json.dumps(results["drift"], indent=2), flush=True)
    if "memory" in parts:
        results["memory"] = bench_memory(8 if quick else 24, 320, 240)
        print(json.dumps(results["memory"], indent=2), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
