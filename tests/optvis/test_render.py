import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data

import dreamscope as ds
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from dreamscope.optvis import objectives, render


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
    events = list(render.ascend(model, objective, x, steps=8, step_size=0.02, jitter=8, generator=generator))
    after, _ = render.objective_gradient(model, objective, events[-1].picture)
    losses = [event.loss for event in events]
    assert after > 1.5 * losses[0]


def test_short_tiled_and_untiled_dreams_agree(model):
    # DeepDream is chaotic: a 1e-6 change of the input alters a 40-step dream by ~20/255 per pixel. So the
    # close agreement is checked on a short ascent, and full dreams are compared at a coarse scale.
    photo = Image.fromarray(data.coffee()).resize((320, 216))
    short = dict(octaves=1, steps=3, seed=3, precision="fp32")  # tiles are exact in float32
    a = np.asarray(ds.dream(photo, tile=None, **short), dtype=float)
    b = np.asarray(ds.dream(photo, tile=128, **short), dtype=float)
    assert np.abs(a - b).mean() < 1.0

    full = dict(octaves=2, steps=10, precision="fp32")
    full_a = np.asarray(ds.dream(photo, tile=None, **full), dtype=float)
    full_b = np.asarray(ds.dream(photo, tile=128, **full), dtype=float)
    blur = lambda z: ndimage.gaussian_filter(z, (4, 4, 0))
    original = np.asarray(photo, dtype=float)
    assert np.abs(blur(full_a) - blur(full_b)).mean() < 0.4 * np.abs(blur(full_a) - blur(original)).mean()


def test_soft_bounds_dream_as_much_but_never_pile_up_at_black_or_white(model):
    x = images.to_tensor(Image.fromarray(data.coffee()).resize((192, 128), Image.LANCZOS))
    objective = objectives.layer_l2("stage4.2")
    results = {}
    for soft in (False, True):
        for event in render.ascend(
            model, objective, x, steps=8, step_size=0.015, jitter=16, generator=torch.Generator().manual_seed(0), soft_bounds=soft
        ):
            loss, out = event.loss, event.picture
        clipped = float(((out <= 0.5 / 255) | (out >= 254.5 / 255)).float().mean())
        results[soft] = (clipped, float((out - x).abs().mean()), loss)
    photo_clipped = float(((x <= 0.5 / 255) | (x >= 254.5 / 255)).float().mean())
    (hard_clip, hard_change, hard_loss), (soft_clip, soft_change, soft_loss) = results[False], results[True]
    assert hard_clip > 3 * max(soft_clip, 1e-3) and soft_clip < photo_clipped + 0.005, results
    assert soft_change > 0.7 * hard_change and soft_loss > 0.7 * hard_loss, results


def test_tiles_are_exact_for_every_term_of_a_mixed_stride_objective(model):
    # Each term is weighted by the tile's share of its own layer's positions, so the tile values add up to the
    # whole picture's at stride 8 and at stride 16 alike, with ragged last tiles.
    x = coffee(333, 301)
    objective = objectives.layer_l2("stage3.1") + 0.5 * objectives.channel("stage5.2", 3) - objectives.layer_l2("stage2.1", [1])
    loss, grad = render.objective_gradient(model, objective, x)
    tiled_loss, tiled_grad = render.objective_gradient(model, objective, x, tile_size=128, halo=192)
    assert tiled_loss == pytest.approx(loss, rel=2e-3)
    assert float((grad - tiled_grad).abs().mean() / grad.abs().mean()) < 0.01


@pytest.mark.parametrize(
    "objective",
    [
        objectives.class_logit("banana"),
        objectives.neuron("stage4.2", 1),
        objectives.layer_l2("stage4.2") - 0.1 * objectives.total_variation(),
    ],
)
def test_objectives_that_need_the_whole_picture_refuse_tiles_before_any_work(model, objective):
    x = coffee(320, 240)
    with pytest.raises(DreamscopeError, match="needs the whole picture at once, so it cannot be tiled"):
        render.ascend(model, objective, x, steps=1, step_size=0.01, jitter=0, generator=torch.Generator(), tile=128)
    events = list(render.ascend(model, objective, x, steps=2, step_size=0.01, jitter=0, generator=torch.Generator()))
    assert len(events) == 2 and events[-1].picture.shape == x.shape  # untiled, every objective works


def test_a_network_that_gives_nan_is_a_clear_error_not_a_black_picture():
    class NaN(torch.nn.Module):
        def forward(self, x):
            return torch.sqrt(x - 10.0)  # NaN everywhere, from finite weights

    model = ds.wrap_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), NaN()), device="cpu")
    with pytest.raises(DreamscopeError, match="NaN or infinite at step 1"):
        ds.dream(Image.fromarray(data.coffee()).resize((96, 64)), model=model, layer="1", octaves=1, steps=1)


def test_running_out_of_memory_names_what_to_change(tmp_path):
    # A real allocation failure: the address space of a child process is capped, then an untiled dream of a
    # picture too big for it is asked for. It must be one error line naming --tile and --max-size.
    from conftest import run_python

    script = f"""
import resource, sys
from PIL import Image
from dreamscope import cli
Image.new("RGB", (4000, 3000), (120, 90, 60)).save({str(tmp_path / "big.png")!r})
import torch  # the runtime maps its libraries first; then the cap leaves room for little more
limit = 3 * 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.exit(cli.main(["dream", {str(tmp_path / "big.png")!r}, "--tile", "off", "--octaves", "1", "--steps", "1", "-q"]))
"""
    result = run_python("-c", script)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of memory at 4000x3000 px"), result.stderr
    assert "--tile" in lines[0] and "--max-size" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]


def test_confident_stops_once_the_watched_mean_over_its_window_reaches_the_threshold():
    rule = render.Confident(objectives.class_probability(0, "x"), threshold=0.9, window=3, minimum=5)
    readings = [0.95, 0.95, 0.95, 0.95, 0.2, 0.95, 0.95, 0.95, 0.95]
    stopped = next(step for step, value in enumerate(readings, 1) if rule(step, value, None))
    # steps 1-4 are before the minimum; at 5-7 the window still holds the 0.2 (means 0.70, 0.70, 0.70); at 8 it is out
    assert stopped == rule.stopped == 8 and rule.mean == pytest.approx(0.95)


def test_a_confident_class_picture_stops_early_reading_the_probability_from_the_same_pass(model):
    from dreamscope.optvis import params, transforms

    index = ds.resolve_class("starfish")
    passes = []
    hook = model.net.register_forward_pre_hook(lambda _module, _inputs: passes.append(1))
    try:
        rule = render.Confident(objectives.class_probability(index, "starfish"), threshold=0.9, window=5, minimum=10)
        generator = torch.Generator().manual_seed(0)
        picture = params.make_param("fft", 1, 96, 96, generator)
        events = list(
            render.optimize(
                model,
                objectives.class_logit(index),
                picture,
                steps=200,
                generator=generator,
                learning_rate=0.1,
                transform=transforms.standard_transforms(view="picture"),
                stop=rule,
            )
        )
    finally:
        hook.remove()
    assert rule.stopped == len(events) == len(passes) and 10 <= rule.stopped < 200  # no pass of its own
    assert rule.mean >= 0.9 and events[-1].fraction < 1
    with torch.no_grad():  # what it read is what the network says of the picture
        seen = model.net(model.to_input(events[-1].picture)).softmax(1)[0, index]
    assert float(seen) > 0.5
