"""Live dreaming on this machine (issue 18's targets): frame rate shown, latency, strength and steadiness.

    .venv/bin/python benchmarks/bench_live.py --json docs/bench_live.json

Two 30 fps clips made from the sample photos (../shared/data/imagenet-sample): a camera panning over a photo (2 px
right and 1 px down a frame, so the true motion is known) and a still scene that someone crosses (a cut-out of
another photo sliding over it). Each is 6 s.

1. Real time, as `dreamscope live` replays them (recipes.live.live_iter: the clip's clock, frames dropped when the
   dreamer is busy), at 320 x 240 and 640 x 480, default settings: dreams shown a second, latency from a camera
   frame's arrival to its dream (median, 95th percentile), camera frames dropped, and the strength of what was shown
   over the last 3 s (mean absolute difference from the camera frame of the same moment, 0-255; a held dream of a
   moving scene adds its lag to it), and the raw flicker of what was shown (the mean change between consecutive
   shown frames minus that of the camera frames).
2. Steadiness, every frame dreamed (no clock, so both sides see the same frames): flicker on the pan, the mean
   absolute change between consecutive frames after undoing the known motion minus the camera's own, for the live
   dreamer's defaults and for each frame dreamed on its own (blend 0) with as many steps as it takes to be at least
   as strong; their ratio. Over the last half of the clip, once the dream has built up.
3. The studio in Chromium with a fake camera (the pan at 640 x 480, 30 fps, as a .y4m; the page sends it at the default
   size, 320 x 240): the rate and latency the page itself measures and shows, after 10 s.

Run alone: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "studio"))

import dreamscope as ds  # noqa: E402
from dreamscope import imaging  # noqa: E402
from dreamscope.recipes import live  # noqa: E402
from dreamscope.recipes.video import flicker  # noqa: E402
from dreamscope.settings import LiveSettings  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "imagenet-sample"
FPS, SECONDS = 30, 6
MOTION = (2, 1)


def photo(name: str, short: int) -> Image.Image:
    picture = Image.open(next(SAMPLE.glob(f"*_{name}.JPEG"))).convert("RGB")
    scale = short / min(picture.size)
    return picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.LANCZOS)


def pan(size: tuple[int, int], count: int) -> list[Image.Image]:
    width, height = size
    big = photo("golden_retriever", height + MOTION[1] * count + 40)
    return [
        big.crop((10 + MOTION[0] * i, 10 + MOTION[1] * i, 10 + MOTION[0] * i + width, 10 + MOTION[1] * i + height))
        for i in range(count)
    ]


def crossing(size: tuple[int, int], count: int) -> list[Image.Image]:
    """A still scene (a lakeside) that a cut-out (a tabby's head) crosses from left to right."""
    width, height = size
    scene = photo("lakeside", height).crop((0, 0, width, height))
    walker = photo("tabby", height // 2)
    walker = walker.crop((0, 0, min(walker.width, height // 2), height // 2))
    frames = []
    for i in range(count):
        frame = scene.copy()
        frame.paste(walker, (round(-walker.width + (width + walker.width) * i / count), height // 4))
        frames.append(frame)
    return frames


class Clip(list):
    def __init__(self, frames, fps):
        super().__init__(frames)
        self.fps, self.size = fps, frames[0].size


def strength(shown, camera) -> float:
    return float(np.mean([np.abs(np.asarray(s, np.float32) - np.asarray(c, np.float32)).mean() for s, c in zip(shown, camera)]))


def real_time(net, frames: list[Image.Image], size: int) -> dict:
    settings = LiveSettings(size=size)
    events = list(live.live_iter(Clip(frames, FPS), settings, model=net))
    shown = [imaging.to_pil(e.picture) for e in events if e.frame is not None]
    replay = events[-1].result
    camera = [Image.fromarray(live.fitted(frame, size)) for frame in frames]
    half = len(frames) // 2
    return {
        "size": list(shown[0].size),
        "shown_per_second": round(replay.rate, 2),
        "latency_median_ms": round(replay.latency(0.5) * 1000, 1),
        "latency_p95_ms": round(replay.latency(0.95) * 1000, 1),
        "camera_frames": replay.frames,
        "dropped": replay.dropped,
        "strength_last_3s": round(strength(shown[half:], camera[half:]), 2),
        # the flicker, raw: mean change between consecutive shown frames minus the camera's
        "flicker_over_camera_raw": round(raw_flicker(shown[half:]) - raw_flicker(camera[half:]), 2),
    }


def raw_flicker(frames) -> float:
    arrays = [np.asarray(f, np.float32) for f in frames]
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(arrays, arrays[1:])]))


def steadiness(net, frames: list[Image.Image]) -> dict:
    half = len(frames) // 2
    motion = (-MOTION[0], -MOTION[1])
    camera = flicker(frames[half:], motion)

    def dreamed(**changes):
        dreamer = live.LiveDream(LiveSettings(**changes), net)
        out = [Image.fromarray(dreamer.dream(frame)) for frame in frames]
        return strength(out[half:], frames[half:]), flicker(out[half:], motion) - camera

    live_strength, live_flicker = dreamed()
    alone = []
    for steps in range(1, 9):
        s, f = dreamed(blend=0.0, steps=steps)
        alone.append({"steps": steps, "strength": round(s, 2), "flicker_over_camera": round(f, 2)})
        if s >= live_strength:
            break
    matched = alone[-1]
    return {
        "camera_flicker": round(camera, 2),
        "live": {"strength": round(live_strength, 2), "flicker_over_camera": round(live_flicker, 2)},
        "frame_by_frame": alone,
        "ratio": round(live_flicker / matched["flicker_over_camera"], 3),
    }


def browser(frames: list[Image.Image], seconds: float = 10.0) -> dict:
    from playwright.sync_api import sync_playwright
    from test_studio_browser import Server, wait_until
    from test_studio_live import camera_args, write_y4m

    from browser import chromium_binary

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "camera.y4m"
        write_y4m(clip, frames + frames[::-1], FPS)  # played in a loop: there and back, no jump
        (Path(folder) / "data").mkdir()
        server = Server(Path(folder) / "data")
        try:
            with sync_playwright() as p:
                args = camera_args(clip)
                chromium = p.chromium.launch(executable_path=chromium_binary(), args=args)
                page = chromium.new_page(viewport={"width": 1280, "height": 800})
                page.goto(server.url)
                page.wait_for_selector("body.ready", timeout=60_000)
                page.click("#tab-live")
                page.click("#live-start")
                wait_until(page, "Number(document.getElementById('live-canvas').dataset.frames || 0) > 0", timeout=60_000)
                start = page.evaluate("Number(document.getElementById('live-canvas').dataset.frames)")
                page.wait_for_timeout(seconds * 1000)
                stats = page.evaluate(
                    """() => { const s = document.getElementById('live-stats'); return {frames:
                    Number(document.getElementById('live-canvas').dataset.frames), fps: Number(s.dataset.fps),
                    latency: Number(s.dataset.latency), p95: Number(s.dataset.latencyP95), text: s.textContent}; }"""
                )
                chromium.close()
        finally:
            server.stop()
    return {
        "shown_per_second": round((stats["frames"] - start) / seconds, 2),
        "page_fps_last_2s": stats["fps"],
        "page_latency_median_ms": stats["latency"],
        "page_latency_p95_ms": stats["p95"],
        "page_says": stats["text"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="2 s clips, for a smoke run")
    args = parser.parse_args()
    seconds = 2 if args.quick else SECONDS
    count = FPS * seconds
    load_before = os.getloadavg()
    print(f"load average before: {load_before}", flush=True)
    started = time.monotonic()
    net = ds.load_model("efficientnet-lite0", "cpu")
    results = {"fps": FPS, "seconds": seconds, "cpu_threads": __import__("torch").get_num_threads()}
    small, large = pan((320, 240), count), pan((640, 480), count)
    results["real_time"] = {
        "pan_320x240": real_time(net, small, 320),
        "crossing_320x240": real_time(net, crossing((320, 240), count), 320),
        "pan_640x480": real_time(net, large, 640),
    }
    for name, figures in results["real_time"].items():
        print(name, figures, flush=True)
    results["steadiness_pan_320x240"] = steadiness(net, small)
    print("steadiness", results["steadiness_pan_320x240"], flush=True)
    results["chromium_320x240"] = browser(large)  # the camera at 640 x 480 (what the page asks for), dreamed at 320
    print("chromium", results["chromium_320x240"], flush=True)
    results["load_after"] = os.getloadavg()
    results["load_before"] = load_before
    results["wall_s"] = round(time.monotonic() - started, 1)
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
