"""Image parameterizations: MaCo's natural magnitude spectrum and learned phase (the Fourier and pixel ones are
tested with visualize)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from dreamscope.io import images
from dreamscope.optvis import params

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_spectrum_is_natural_one_over_f():
    table = params.natural_spectrum()
    assert table.shape == (3, params.SPECTRUM_SIDE, params.SPECTRUM_SIDE // 2 + 1)
    assert torch.isfinite(table).all() and (table >= 0).all()
    luminance = table[0]
    # Natural photos: amplitude falls about as 1/f; between 4 and 32 cycles a picture, by a factor of 4-16.
    low, high = float(luminance[4, 4]), float(luminance[32, 32])
    assert 4 < low / high < 16


def test_other_sizes_read_the_table_at_their_own_frequencies():
    assert torch.equal(params.spectrum_for(224, 224), params.natural_spectrum())
    generator = torch.Generator().manual_seed(0)
    spreads = {}
    for size in [(224, 224), (96, 160), (448, 448)]:
        with torch.no_grad():
            spreads[size] = float(params.MacoImage(4, *size, generator)().std())
    # the photos' per-pixel contrast at every size (within 15%)
    assert max(spreads.values()) / min(spreads.values()) < 1.15, spreads


def test_maco_learns_only_the_phase_and_renders_pictures():
    param = params.MacoImage(2, 64, 96, torch.Generator().manual_seed(0))
    assert [name for name, _ in param.named_parameters()] == ["phase"]
    picture = param()
    assert picture.shape == (2, 3, 64, 96) and float(picture.detach().min()) >= 0 and float(picture.detach().max()) <= 1
    assert not torch.equal(picture[0], picture[1])  # each sample its own phases
    picture[:, :, 20:30, 40:50].sum().backward()
    assert param.phase.grad is not None and param.phase.grad.abs().sum() > 0
    # The attribution saw where the objective looked: all of it inside the square.
    inside = param.attribution[:, :, 20:30, 40:50].sum()
    assert float(inside) > 0 and torch.allclose(inside, param.attribution.sum())
    opacity = param.transparency()
    assert (
        opacity.shape == (2, 1, 64, 96) and float(opacity[:, :, 25, 45].min()) == 1.0 and float(opacity[:, :, 0, 0].max()) == 0.0
    )


def test_maco_starts_from_a_photo_and_keeps_its_magnitude():
    photo = images.to_tensor(Image.fromarray(data.chelsea()).resize((128, 96)))
    param = params.MacoImage(1, 96, 128, torch.Generator().manual_seed(0), init=photo)
    with torch.no_grad():
        assert float((param() - photo).abs().max()) < 1.5 / 255
        param.phase += 0.3  # moving the phase changes the picture but not its spectrum's magnitude
        moved = param()
    assert float((moved - photo).abs().mean()) > 0.02
    # (columns 0 and the last must stay Hermitian, which a uniform phase shift breaks; the rest keep their magnitude)
    spectrum = lambda x: torch.fft.rfft2(params.signal_of(x), norm="ortho").abs()[..., 1:-1]
    relative = (spectrum(moved) - spectrum(photo)).abs() / spectrum(photo).clamp(min=1e-3)
    assert float(relative.median()) < 0.05


def test_make_spectrum_measures_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):  # white noise: a flat spectrum, unlike photos
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "spectrum.npy"
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_spectrum.py"), str(tmp_path), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    table = np.load(out)
    assert table.shape == (3, params.SPECTRUM_SIDE, params.SPECTRUM_SIDE // 2 + 1)
    luminance = table[0]
    assert 0.7 < luminance[4, 4] / luminance[32, 32] < 1.4  # flat, where photos fall by 4-16
