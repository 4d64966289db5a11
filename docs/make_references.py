"""The judges' features of real photos, for the plausibility in `visualize --score` (`recipes.quality`).

    .venv/bin/python docs/make_references.py ../shared/data/imagenet-sample   # writes src/dreamscope/data/references-*.npy

For each judge (efficientnet-lite2, and efficientnet-lite0 for lite2's own pictures): one photo per ImageNet class
(sorted by file name, the k-th is class k), its centre square resized to the judge's resolution, and the judge's
penultimate features of it (its head's activations averaged over positions), as float16, shape (1000, 1280). Not
the photos: one vector of statistics each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dreamscope import imaging
from dreamscope.io import folders, images
from dreamscope.models import load_model
from dreamscope.recipes import quality

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "dreamscope"
JUDGES = ("efficientnet-lite2", "efficientnet-lite0")


def measure(folder: Path, judge_name: str) -> np.ndarray:
    files = folders.picture_files(folder)
    if len(files) != 1000:
        raise SystemExit(f"error: {folder} must hold one photo per ImageNet class (1000), not {len(files)}")
    judge = load_model(judge_name, "cpu")
    rows, correct = [], 0
    with torch.no_grad():
        for index, path in enumerate(sorted(files, key=lambda p: Path(p).name)):
            photo = images.centre_square(images.load_image(path), judge.spec.resolution)
            x = imaging.to_tensor(photo, judge.device)
            rows.append(quality.features(judge, x)[0].numpy())
            correct += int(judge.net(judge.to_input(x)).argmax()) == index
    print(f"{judge_name}: {correct} of 1000 photos classified as their class (the order is the classes')")
    return np.stack(rows).astype(np.float16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    for judge in JUDGES:
        target = OUTPUT / quality.REFERENCES.format(judge)
        np.save(target, measure(args.folder, judge))
        print(f"wrote {target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
