import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data

import dreamscope as ds
from dreamscope import images, objectives, render


def coffee(width, height):
    return images.to_tensor(Image.fromarray(data.coffee()).resize((width, height)))


@pytest.mark.parametrize("size", [(309, 457), (352, 512)])  # odd sizes exercise "SAME" padding parity
def test_tiled_gradient_matches_untiled(model, size):
    x = coffee(size[1], size[0])
    objective = objectives.layer_l2("stage5.2")
    loss, grad = render.objective_gradient(model, objective, x)
    tiled_loss, tiled_grad = render.objective_gradient(model, objective, x, tile_size=256)
    assert tiled_loss == pytest.approx(loss, rel=1e-3)
    assert float((grad - tiled_grad).abs().mean() / grad.abs().mean()) < 0.01


def test_tiles_partition_the_picture():
    for length in (100, 256, 257, 1000):
        spans = render._tile_spans(length, 128, 64, 32)
        cores = [(c0, c1) for _, _, c0, c1 in spans]
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
        for start, end, c0, c1 in spans:
            assert start % 32 == 0 and start <= c0 < c1 <= end <= length
            assert (end - start) % 32 == length % 32


def test_no_seams_at_tile_borders(model):
    # Gradient error concentrated on tile borders would show as seams; it must be no larger there.
    x = coffee(512, 384)
    objective = objectives.layer_l2("stage5.2")
    _, grad = render.objective_gradient(model, objective, x)
    _, tiled = render.objective_gradient(model, objective, x, tile_size=128)
    error = (grad - tiled).abs().sum(dim=(0, 1))
    border = error[:, 120:136].mean()
    assert float(border) < 0.02 * float(grad.abs().sum(dim=(0, 1)).mean())


def test_ascent_raises_the_objective(model):
    x = coffee(160, 112)
    objective = objectives.layer_l2("stage4.2")
    generator = torch.Generator().manual_seed(0)
    losses = [loss for _, loss, _ in render.ascend(model, objective, x, 8, 0.02, 8, generator)]
    after, _ = render.objective_gradient(model, objective, list(render.ascend(model, objective, x, 8, 0.02, 8, torch.Generator().manual_seed(0)))[-1][2])
    assert after > 1.5 * losses[0]


def test_short_tiled_and_untiled_dreams_agree(model):
    # DeepDream is chaotic: a 1e-6 change of the input alters a 40-step dream by ~20/255 per pixel. So the
    # close agreement is checked on a short ascent, and full dreams are compared at a coarse scale.
    photo = Image.fromarray(data.coffee()).resize((320, 216))
    short = dict(octaves=1, steps=3, seed=3)
    a = np.asarray(ds.dream(photo, tile_size=None, **short), dtype=float)
    b = np.asarray(ds.dream(photo, tile_size=128, **short), dtype=float)
    assert np.abs(a - b).mean() < 1.0

    full = dict(octaves=2, steps=10)
    full_a = np.asarray(ds.dream(photo, tile_size=None, **full), dtype=float)
    full_b = np.asarray(ds.dream(photo, tile_size=128, **full), dtype=float)
    blur = lambda z: ndimage.gaussian_filter(z, (4, 4, 0))
    original = np.asarray(photo, dtype=float)
    assert np.abs(blur(full_a) - blur(full_b)).mean() < 0.4 * np.abs(blur(full_a) - blur(original)).mean()


def test_soft_bounds_dream_as_much_but_never_pile_up_at_black_or_white(model):
    x = images.to_tensor(Image.fromarray(data.coffee()).resize((192, 128), Image.LANCZOS))
    objective = objectives.layer_l2("stage4.2")
    results = {}
    for soft in (False, True):
        for _, loss, out in render.ascend(model, objective, x, 8, 0.015, 16, torch.Generator().manual_seed(0), soft_bounds=soft):
            pass
        clipped = float(((out <= 0.5 / 255) | (out >= 254.5 / 255)).float().mean())
        results[soft] = (clipped, float((out - x).abs().mean()), loss)
    photo_clipped = float(((x <= 0.5 / 255) | (x >= 254.5 / 255)).float().mean())
    (hard_clip, hard_change, hard_loss), (soft_clip, soft_change, soft_loss) = results[False], results[True]
    assert hard_clip > 3 * max(soft_clip, 1e-3) and soft_clip < photo_clipped + 0.005, results
    assert soft_change > 0.7 * hard_change and soft_loss > 0.7 * hard_loss, results
