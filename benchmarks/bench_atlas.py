"""The activation atlas at scale: collection speed and memory, UMAP time, icon rendering, and the whole atlas.

1. Collection (activation vectors and their attributions to every class) over a folder, in pictures per second,
   with its peak memory, for the first quarter of the folder and for all of it in one process (each measured from
   a reset of the process's high-water mark): streaming keeps only `positions` vectors per picture, so the peak
   should not grow with the folder. The reference beside it: the memory the layer's whole activation maps of the
   folder would take if a collector kept them (computed from their shape).
2. UMAP on 10k real vectors and on 100k (the 10k repeated ten times with a little noise, so UMAP sees 100k
   distinct points), seconds, after one small run has compiled numba's code.
3. Icons: 24 cells' mean directions rendered in one batch against the same 24 rendered one by one (s per icon,
   ratio); then every cell of a `--grid` atlas, batched.
4. The whole atlas: the sum of the phases (the default settings of `dreamscope atlas`).

Run it alone on an idle machine (it prints the load average before and after):

    .venv/bin/python benchmarks/bench_atlas.py [FOLDER] [--json docs/bench_atlas.json] [--quick]

FOLDER defaults to ../shared/data/imagenet-sample (1,000 photos, one per ImageNet class).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "imagenet-sample"


def peak_reset() -> None:
    """Start a new high-water mark of this process's memory (Linux: writing 5 to clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--grid", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a tenth of the folder, 12 icons: a check that it runs")
    args = parser.parse_args()

    import torch

    import dreamscope as ds
    from dreamscope import events
    from dreamscope.io import folders
    from dreamscope.recipes import atlas
    from dreamscope.settings import AtlasSettings

    print(f"load average before: {os.getloadavg()}")
    model = ds.load_model()
    settings = AtlasSettings(grid=args.grid)
    layer = model.spec.default_layer
    files = folders.picture_files(args.folder)
    if args.quick:
        files = files[::10]
    results: dict = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "pictures": len(files),
        "positions": settings.positions,
        "layer": layer,
    }

    # 1. collection
    quarter = files[: len(files) // 4]
    peak_reset()
    start = time.perf_counter()
    atlas.collect(quarter, layer, model=model)
    quarter_seconds, quarter_peak = time.perf_counter() - start, peak_mib()
    peak_reset()
    start = time.perf_counter()
    collection = atlas.collect(files, layer, model=model)
    seconds, peak = time.perf_counter() - start, peak_mib()
    grid = collection.grid
    whole_maps = len(files) * model.layer(layer).channels * grid[0] * grid[1] * 4 / 2**20
    results["collect"] = {
        "pictures_per_second": round(len(files) / seconds, 2),
        "seconds": round(seconds, 1),
        "quarter_pictures_per_second": round(len(quarter) / quarter_seconds, 2),
        "peak_mib_quarter": round(quarter_peak),
        "peak_mib_all": round(peak),
        "kept_mib": round((collection.vectors.nbytes + collection.attributions.nbytes) / 2**20, 1),
        "reference_whole_maps_mib": round(whole_maps, 1),
        "vectors": len(collection),
    }
    print(
        f"collect: {len(files)} pictures in {seconds:.1f} s ({len(files) / seconds:.2f}/s), peak {peak:.0f} MiB "
        f"(a quarter of them: {quarter_peak:.0f} MiB); kept {results['collect']['kept_mib']} MiB; "
        f"whole activation maps would be {whole_maps:.0f} MiB"
    )

    # 2. UMAP
    atlas.layout(collection.vectors[:300])  # numba compiles here, not in the timings
    vectors = collection.vectors[:10_000]
    start = time.perf_counter()
    coords = atlas.layout(vectors)
    umap_10k = time.perf_counter() - start
    rng = np.random.default_rng(0)
    big = np.concatenate([vectors + rng.normal(0, 0.01 * vectors.std(), vectors.shape).astype(np.float32) for _ in range(10)])
    umap_100k = None
    if not args.quick:
        start = time.perf_counter()
        atlas.layout(big)
        umap_100k = time.perf_counter() - start
    results["umap"] = {
        "vectors": len(vectors),
        "seconds": round(umap_10k, 1),
        "vectors_big": len(big),
        "seconds_big": None if umap_100k is None else round(umap_100k, 1),
    }
    print(f"umap: {len(vectors)} vectors in {umap_10k:.1f} s" + (f", {len(big)} in {umap_100k:.1f} s" if umap_100k else ""))

    # 3. icons
    cells = atlas.bin_cells(coords, settings.grid, settings.min_count)
    atlas.cell_means(cells, vectors)
    directions = np.stack([c.mean for c in cells])
    sample = directions[: 12 if args.quick else 24]

    def render(chosen, batch):
        start = time.perf_counter()
        events.run(atlas.render_icons_iter(model, layer, chosen, size=settings.icon_size, steps=settings.icon_steps, batch=batch))
        return time.perf_counter() - start

    batched = render(sample, len(sample))
    single = render(sample[: len(sample) // 3], 1) * 3  # a third of them one by one, scaled: the same per-icon cost
    everything = render(directions, atlas.ICON_BATCH) if not args.quick else None
    results["icons"] = {
        "size": settings.icon_size,
        "steps": settings.icon_steps,
        "batched_s_per_icon": round(batched / len(sample), 3),
        "one_by_one_s_per_icon": round(single / len(sample), 3),
        "speedup": round(single / batched, 2),
        "cells": len(cells),
        "grid": settings.grid,
        "all_cells_seconds": None if everything is None else round(everything, 1),
    }
    print(
        f"icons: {batched / len(sample):.2f} s each in a batch of {len(sample)}, {single / len(sample):.2f} s one by one "
        f"({single / batched:.2f}x); all {len(cells)} cells of the {settings.grid}x{settings.grid} grid: "
        + (f"{everything:.0f} s" if everything else "skipped (--quick)")
    )
    if everything:
        results["whole_atlas_minutes"] = round((seconds + umap_10k + everything) / 60, 1)
        print(f"whole atlas: {results['whole_atlas_minutes']} minutes (collect + layout + icons)")
    results["load_after"] = os.getloadavg()
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
