import pytest
import torch
from PIL import Image

from dreamscope.recipes import colour


def test_grey_has_no_colour():
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    assert colour.colourfulness(grey) == 0.0 and colour.saturation(grey) == 0.0


def test_colourfulness_follows_hasler_and_suesstrunk():
    # Half pure red, half pure green: rg is +255 or -255 (std 255, mean 0); yb is 127.5 everywhere (std 0).
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, :, :4] = 1.0
    x[0, 1, :, 4:] = 1.0
    expected = 255.0 + 0.3 * 127.5
    assert float(colour.colourfulness(x)[0]) == pytest.approx(expected, rel=1e-5)
    assert float(colour.saturation(x)[0]) == pytest.approx(1.0)


def test_a_batch_gives_one_figure_per_picture():
    x = torch.rand(3, 3, 16, 16)
    x[1] = 0.5
    values = colour.colourfulness(x)
    assert values.shape == (3,) and float(values[1]) == 0.0 and float(values[0]) > 10
