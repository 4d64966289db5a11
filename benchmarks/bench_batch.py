"""Batch work at scale: items per minute on each engine, Ray's overhead, and what a full microscope costs.

1. Throughput: `batch dream` of the first N photos of a folder (EfficientNet-Lite0, --max-size 320, 3 octaves x 10
   steps: a few seconds an item) with 1 and 2 local worker processes, and on a 2-node Ray cluster simulated on this
   machine (`ray start --head --num-cpus 1` plus a second `ray start --address ... --num-cpus 1`), each from a fresh
   engine, 1 thread per worker; items per minute, and the engine's start-up (the first item's wait).
2. Overhead for short items: 200 dreams of a 64x48 picture by a two-layer network (milliseconds each) on 2 local
   processes and on a local Ray instance with 2 CPUs: the difference per item is what the engine costs.
3. The microscope: for every layer of the default model, one block of 16 channels at the default settings (128 px,
   1 + 3 samples) timed over a few steps; the full microscope's time is the sum over all blocks of
   (steps x time per step), on this machine's 2 workers.
4. The microscope's exemplar pass: one shard of 500 photos through the whole network, the top responses of all
   3,120 channels kept; then the driver's merge and cut of every channel's patches.

Run it alone on an idle machine (it prints the load average before and after):

    .venv/bin/python benchmarks/bench_batch.py [FOLDER] [--json docs/bench_batch.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "imagenet-sample"
RAY = str(Path(sys.executable).with_name("ray"))
# Ray 2.59+ clusters use token authentication; a node joining one must say so (the token is ~/.ray/auth_token).
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT / "tests")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_cluster(nodes: int) -> str:
    """A cluster of `nodes` raylets with 1 CPU each, all on this machine; returns the head's address."""
    port = free_port()
    subprocess.run([RAY, "get-auth-token", "--generate"], env=ENV, check=True, capture_output=True, timeout=120)  # if none yet
    subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
        env=ENV,
        check=True,
        capture_output=True,
        timeout=180,
    )
    for _ in range(nodes - 1):
        subprocess.run(
            [RAY, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--disable-usage-stats"],
            env=ENV,
            check=True,
            capture_output=True,
            timeout=180,
        )
    return f"127.0.0.1:{port}"


def ray_stop() -> None:
    import ray

    ray.shutdown()
    subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=180)


def timed_batch(items, engine) -> dict:
    from dreamscope.work import batch

    start = time.perf_counter()
    first = None
    for event in batch.run_batch(items, engine):
        if first is None and event.stages:
            first = time.perf_counter() - start
        if event.done:
            result = event.result
    seconds = time.perf_counter() - start
    busy = sum(o.seconds for o in result.outcomes)
    return {
        "engine": result.engine,
        "items": len(items),
        "failed": result.count("failed"),
        "seconds": round(seconds, 2),
        "items_per_minute": round(60 * len(items) / seconds, 2),
        "first_item_s": round(first or 0, 2),
        "mean_item_s": round(busy / max(1, len(items)), 3),
    }


def throughput(folder: Path, count: int, work: Path) -> list[dict]:
    from dreamscope.io import folders
    from dreamscope.settings import DreamSettings
    from dreamscope.work import batch

    photos = work / "photos"
    photos.mkdir()
    for path in folders.picture_files(folder)[:count]:
        shutil.copy(path, photos / path.name)
    settings = DreamSettings(max_size=320, octaves=3, steps=10)
    rows = []
    for label, make in (
        ("1 local process", lambda: batch.LocalEngine(1)),
        ("2 local processes", lambda: batch.LocalEngine(2)),
        ("Ray, 2 nodes of 1 CPU", None),
    ):
        out = work / label.replace(" ", "_").replace(",", "")
        if make is None:
            address = ray_cluster(2)
            try:
                engine = batch.RayEngine(address)  # before any `import ray`: it reads the authentication mode once
                import ray

                nodes = len([n for n in ray.nodes() if n["Alive"]])
                row = timed_batch(batch.folder_jobs(photos, settings, out), engine)
                row["nodes"] = nodes
            finally:
                ray_stop()
        else:
            row = timed_batch(batch.folder_jobs(photos, settings, out), make())
        row["label"] = label
        rows.append(row)
        print(
            f"  {label:24s} {row['items_per_minute']:6.1f} items/min  ({row['seconds']:.1f} s for {row['items']}, "
            f"first item after {row['first_item_s']:.1f} s, {row['mean_item_s']:.2f} s per item in a worker)",
            flush=True,
        )
    return rows


def overhead(work: Path, count: int) -> dict:
    from PIL import Image

    from dreamscope.settings import DreamSettings
    from dreamscope.work import batch

    sys.path.insert(0, str(ROOT / "tests"))
    tiny = work / "tiny"
    tiny.mkdir()
    base = (
        Image.open(ROOT / "docs" / "images" / "coffee.jpg").convert("RGB").resize((64, 48))
        if (ROOT / "docs/images/coffee.jpg").exists()
        else Image.new("RGB", (64, 48), (120, 90, 60))
    )
    for number in range(count):
        base.rotate(number).save(tiny / f"t{number:03d}.png")
    settings = DreamSettings(model="toy_models:factory", octaves=1, steps=3)
    local = timed_batch(batch.folder_jobs(tiny, settings, work / "tiny_local"), batch.LocalEngine(2))
    engine = batch.RayEngine("local")
    try:
        on_ray = timed_batch(batch.folder_jobs(tiny, settings, work / "tiny_ray"), engine)
    finally:
        ray_stop()
    per_item = (on_ray["seconds"] - on_ray["first_item_s"] - (local["seconds"] - local["first_item_s"])) / count
    row = {
        "local": local,
        "ray": on_ray,
        "ray_extra_ms_per_item": round(1000 * per_item, 1),
        "startup_local_s": local["first_item_s"],
        "startup_ray_s": on_ray["first_item_s"],
    }
    print(
        f"  {count} short items ({1000 * local['mean_item_s']:.0f} ms each): 2 local processes {local['seconds']:.1f} s "
        f"(first after {local['first_item_s']:.1f} s), Ray {on_ray['seconds']:.1f} s (first after {on_ray['first_item_s']:.1f} s): "
        f"Ray adds {row['ray_extra_ms_per_item']:.1f} ms per item after start-up",
        flush=True,
    )
    return row


def microscope_costs(steps: int) -> dict:
    import torch

    from dreamscope import load_model, runtime
    from dreamscope.recipes import microscope as drawing
    from dreamscope.settings import MicroscopeSettings

    runtime.configure(1)  # a worker's share: one thread
    net = load_model()
    defaults = MicroscopeSettings()
    per_layer = {}
    total_picture_steps = 0.0
    for layer, info in net.layers.items():
        block = min(defaults.block, info.channels)
        settings = defaults.replace(steps=steps)
        drawing.render_channels(net, layer, list(range(block)), settings.replace(steps=1))  # warm up
        start = time.perf_counter()
        drawing.render_channels(net, layer, list(range(block)), settings)
        seconds = time.perf_counter() - start
        per_step = seconds / steps
        blocks = -(-info.channels // defaults.block)
        full = blocks * per_step * defaults.steps * (info.channels / (blocks * block))  # the last block may be smaller
        per_layer[layer] = {
            "channels": info.channels,
            "s_per_step_per_block": round(per_step, 3),
            "layer_s_one_thread": round(full, 1),
        }
        total_picture_steps += full
        print(
            f"  {layer:10s} {info.channels:5d} channels: {per_step:.2f} s a step for {block} channels x 4 pictures; "
            f"the layer {full / 60:.1f} min on one thread",
            flush=True,
        )
    torch.set_num_threads(runtime.cores())
    return {
        "per_layer": per_layer,
        "one_thread_s": round(total_picture_steps, 1),
        "two_workers_h": round(total_picture_steps / 2 / 3600, 2),
        "settings": defaults.to_json(),
    }


def exemplar_pass(folder: Path, work: Path) -> dict:
    from dreamscope import events, load_model, runtime
    from dreamscope.settings import MicroscopeSettings
    from dreamscope.work import microscope

    runtime.configure(1)
    load_model()  # loaded before the clock starts, as a worker has it
    settings = MicroscopeSettings(exemplar_folder=str(folder))
    work_plan = microscope.plan(settings, work / "site")
    shard = next(item for item in work_plan.items if item.task.endswith("search_shard"))
    start = time.perf_counter()
    microscope.search_shard(shard.arguments)
    shard_s = time.perf_counter() - start
    one_shard = microscope.Plan(**{**work_plan.__dict__, "shards": 1})  # merge and cut what that shard found
    shutil.copy(shard.output, Path(shard.output).with_name("exemplars-0-of-1.json"))
    start = time.perf_counter()
    best, facts = microscope.merge_exemplars(one_shard)
    events.run(microscope.cut_exemplars(one_shard, best, facts))
    cut_s = time.perf_counter() - start
    pictures = shard.arguments["shard"]
    row = {
        "pictures": 500,
        "channels": sum(work_plan.layers.values()),
        "shard_s": round(shard_s, 1),
        "pictures_per_s": round(500 / shard_s, 1),
        "merge_and_cut_s": round(cut_s, 1),
        "shards": pictures[1],
    }
    print(
        f"  one shard of 500 photos, all {row['channels']:,} channels: {shard_s:.1f} s ({row['pictures_per_s']} photos/s on one "
        f"thread); the driver's merge and cut of {row['channels']:,} x 6 patches: {cut_s:.1f} s",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="fewer items and steps: a check that it runs")
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run (default all: 1,2,3,4)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"load average before: {os.getloadavg()}", flush=True)
    figures = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if "1" in parts:
            print("1. throughput of batch dream", flush=True)
            figures["throughput"] = throughput(Path(args.folder), 6 if args.quick else 24, work)
        if "2" in parts:
            print("2. the engine's overhead for short items", flush=True)
            figures["overhead"] = overhead(work, 40 if args.quick else 200)
        if "4" in parts:
            print("4. the microscope's exemplar pass", flush=True)
            figures["exemplars"] = exemplar_pass(Path(args.folder), work)
    if "3" in parts:
        print("3. the microscope of the default model, per layer", flush=True)
        figures["microscope"] = microscope_costs(2 if args.quick else 4)
        print(
            f"  full microscope at the default settings: {figures['microscope']['one_thread_s'] / 3600:.1f} h on one thread, "
            f"{figures['microscope']['two_workers_h']:.1f} h on this machine's 2 workers",
            flush=True,
        )
    figures["load_after"] = os.getloadavg()
    print(f"load average after: {figures['load_after']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
