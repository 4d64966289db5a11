"""How far to trust `dreamscope explain`, and what it costs (issue 17's measures).

    .venv/bin/python benchmarks/bench_explain.py faithfulness --json docs/bench_explain.json
    .venv/bin/python benchmarks/bench_explain.py time --json docs/bench_explain_time.json

faithfulness: for 20 sample photos (../shared/data/imagenet-sample, every 50th class), at the default layer with
K = 6 groups: grey out each group's region (where its spatial map is above half its maximum) and measure the top
class logit's drop; the Spearman rank correlation between the groups' attributions to that class and those drops,
for gradient and integrated attribution, and for a control: the same attributions against the drops of random
regions of the same sizes. Then the groups: the factorization's reconstruction error at K = 3, 6, 10, and how
stable the groups are (from other random starts: the mean cosine similarity of each group's channel factor to its
best match, groups matched one to one).

time: a whole default page (224 px, stride-16 layer: a 14 x 14 grid), the same photo again (the channels' pictures
from the cache), another photo with a microscope site of the layer given, and, in the same run, a default probe
report of the same photo, the reference: wall times and ratios, the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

import dreamscope as ds
from dreamscope import imaging
from dreamscope.optvis import render
from dreamscope.recipes import explain as recipe
from dreamscope.settings import ExplainSettings

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
GREY = 0.5


def photos(count: int = 20) -> list[Path]:
    files = sorted(p for p in SAMPLE.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    return files[:: len(files) // count][:count]


def _load(path: Path, size: int) -> Image.Image:
    return imaging.limit_size(Image.open(path).convert("RGB"), size)


def _region(spatial: np.ndarray, stride: int, shape) -> torch.Tensor:
    """A mask of the picture (1, 1, H, W): the cells where the map is above half its maximum, each a stride square."""
    cells = torch.from_numpy((spatial > spatial.max() / 2).astype(np.float32))[None, None]
    return torch.nn.functional.interpolate(cells, scale_factor=stride, mode="nearest")[..., : shape[0], : shape[1]]


def _drop(net, x: torch.Tensor, masks: list[torch.Tensor], index: int) -> list[float]:
    greyed = torch.cat([x * (1 - m) + GREY * m for m in masks])
    with torch.no_grad():
        logits = render.activations(net, ["logits"], torch.cat([x, greyed]))["logits"][:, index]
    return [float(logits[0] - value) for value in logits[1:]]


def faithfulness(args) -> dict:
    net = ds.load_model()
    settings = ExplainSettings(groups=6)
    layer = net.spec.default_layer
    stride = net.layer(layer).stride
    generator = np.random.default_rng(0)
    found = {"gradient": [], "integrated": [], "control: gradient against random regions": []}
    found["control: integrated against random regions"] = []
    errors = {k: [] for k in (3, 6, 10)}
    stability = {k: [] for k in (3, 6, 10)}
    for path in photos(args.photos):
        x = imaging.to_tensor(_load(path, settings.size), net.device)
        with torch.no_grad():
            activation = render.activations(net, [layer], x)[layer][0]
        (target,) = recipe._scored_targets(net, settings.replace(targets="top:1"), layer, x)
        factorization = recipe.factorize(activation, 6, 0, layer)
        masks = [_region(g.spatial, stride, x.shape[-2:]) for g in factorization.groups]
        drops = _drop(net, x, masks, target.index)
        random_masks = []
        for mask in masks:  # the same number of cells, anywhere
            rows, cols = factorization.grid
            cells = int(mask[..., ::stride, ::stride].sum())
            chosen = np.zeros(rows * cols, np.float32)
            chosen[generator.choice(rows * cols, cells, replace=False)] = 1
            random_masks.append(_region(chosen.reshape(rows, cols), stride, x.shape[-2:]))
        control = _drop(net, x, random_masks, target.index)
        line = [path.name]
        for kind in ("gradient", "integrated"):
            (gradient,) = recipe.attribution_gradients(net, x, layer, activation, [target], kind, settings.integrated_steps)
            positions = (activation * gradient).sum(0).numpy()
            attributions = [float((share * positions).sum()) for share in factorization.responsibility()]  # as explain's
            rho = spearmanr(attributions, drops).statistic
            found[kind].append(rho)
            found[f"control: {kind} against random regions"].append(spearmanr(attributions, control).statistic)
            line.append(f"{kind} {rho:+.2f}")
        print("  ".join(line), flush=True)
        for k in errors:
            errors[k].append(recipe.factorize(activation, k, 0, layer).error)
            stability[k].append(_stability(activation, k))
    summary = {
        "photos": args.photos,
        "layer": layer,
        "groups": 6,
        "spearman_attribution_vs_occlusion_drop": {k: _stats(v) for k, v in found.items()},
        "reconstruction_error": {str(k): _stats(v) for k, v in errors.items()},
        "stability_random_starts": {str(k): _stats(v) for k, v in stability.items()},
    }
    print(json.dumps(summary, indent=1))
    return summary


def _stability(activation: torch.Tensor, groups: int, starts: int = 3) -> float:
    """Mean cosine similarity of matched channel factors between NMF from random starts (seeds 1.. against seed 0);
    the shipped nndsvda start is deterministic, so this asks whether the solution itself is unique."""
    NMF = recipe._nmf()
    flat = activation.flatten(1).T.double().numpy()
    matrix = np.concatenate([np.maximum(flat, 0), np.maximum(-flat, 0)], axis=1)
    factors = []
    for seed in range(starts):
        model = NMF(n_components=groups, init="random", random_state=seed, max_iter=recipe.NMF_ITERATIONS, tol=1e-5)
        model.fit(matrix)
        parts = model.components_
        factors.append(parts / np.linalg.norm(parts, axis=1, keepdims=True).clip(1e-12))
    scores = []
    for other in factors[1:]:
        similarity = factors[0] @ other.T
        rows, cols = linear_sum_assignment(-similarity)
        scores.append(float(similarity[rows, cols].mean()))
    return float(np.mean(scores))


def _stats(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": round(float(np.nanmean(values)), 3), "median": round(float(np.nanmedian(values)), 3), "n": len(values)}


def timing(args) -> dict:
    """Whole commands, as a user runs them, one after another."""
    load = [os.getloadavg()[0]]
    first, second = photos(20)[:2]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DREAMSCOPE_CACHE": str(Path(folder) / "cache")}
        site = Path(folder) / "site"

        def run(*argv) -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dreamscope", *argv, "-q"], check=True, env=env)
            return round(time.perf_counter() - start, 1)

        times = {
            "probe, default (reference)": run("probe", str(first), "-o", f"{folder}/probe/"),
            "explain, default (first photo: channels drawn)": run("explain", str(first), "-o", f"{folder}/a/"),
            "explain, the same photo again (channels from the cache)": run("explain", str(first), "-o", f"{folder}/b/"),
        }
        run("microscope", "-o", str(site), "--layers", "stage5.2", "--samples", "0", "--size", "96", "--top", "0")
        env["DREAMSCOPE_CACHE"] = str(Path(folder) / "empty-cache")
        times["explain, another photo, --microscope SITE"] = run(
            "explain", str(second), "-o", f"{folder}/c/", "--microscope", str(site)
        )
    load.append(os.getloadavg()[0])
    reference = times["probe, default (reference)"]
    summary = {
        "seconds": times,
        "ratio_to_probe": {k: round(v / reference, 2) for k, v in times.items()},
        "load_average_before_after": load,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("faithfulness", "time"))
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    summary = faithfulness(args) if args.what == "faithfulness" else timing(args)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
