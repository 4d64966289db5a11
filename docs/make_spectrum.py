"""Measure the magnitude spectrum of natural photos for the MaCo parameterization (`params.MacoImage`).

    .venv/bin/python docs/make_spectrum.py ../shared/data/imagenet-sample   # writes src/dreamscope/data/spectrum.npy

Each photo is cut to its centre square at SIDE px (the view a classifier is trained on), put in the space the
parameterization renders from (the inverse of its sigmoid, then of its colour correlation: see
`params.signal_of`), and Fourier transformed with the orthonormal FFT. The file holds the root mean square of the
coefficients' magnitudes over all photos (windowed: see below), shape (3, SIDE, SIDE // 2 + 1), float32: random phases with these
magnitudes give pictures with, on average, the photos' contrast per frequency and colour channel. Not the photos
themselves: 400 KB of statistics, whatever the number of photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from dreamscope.io import folders, images
from dreamscope.optvis import params

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "dreamscope" / "data" / "spectrum.npy"


def measure(folder: Path, side: int = params.SPECTRUM_SIDE, limit: int | None = None) -> tuple[np.ndarray, int]:
    files = folders.picture_files(folder)[:limit]
    if not files:
        raise SystemExit(f"error: no pictures in {folder}")
    power = torch.zeros(3, side, side // 2 + 1, dtype=torch.float64)
    # A photo is not periodic: its FFT sees a jump at every border, which puts power on the axes that random
    # phases turn into a cross-hatch. A Hann window (scaled to keep the power) removes the jumps; the mean
    # colour (the DC coefficient) is taken from the whole photo.
    hann = torch.hann_window(side, periodic=False)
    window = hann[:, None] * hann[None, :]
    window = window / window.square().mean().sqrt()
    for path in files:
        photo = images.to_tensor(images.centre_square(images.load_image(path), side))
        signal = params.signal_of(photo)[0]
        mean = signal.mean(dim=(1, 2), keepdim=True)
        coefficients = torch.fft.rfft2((signal - mean) * window, norm="ortho")
        coefficients[:, 0, 0] = mean[:, 0, 0] * side
        power += coefficients.abs().double() ** 2
    return (power / len(files)).sqrt().float().numpy(), len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of natural photos (e.g. ../shared/data/imagenet-sample)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    parser.add_argument("--limit", type=int, help="use only the first N photos")
    args = parser.parse_args(argv)
    spectrum, count = measure(args.folder, limit=args.limit)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.output, spectrum)
    print(
        f"wrote {args.output}: {spectrum.shape}, from {count} photos; "
        f"DC {spectrum[:, 0, 0].round(1).tolist()}, mean {spectrum.mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
