"""`explain`: neuron groups, attribution and the channels' pictures, on networks whose channels are known by
construction (toy_models.Colours: channel 0 fires on red, 1 on green, 2 on blue) and on the real one, small."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import dreamscope as ds
import toy_models
from conftest import chelsea
from dreamscope import imaging
from dreamscope.errors import DreamscopeError, SettingsError
from dreamscope.io import provenance
from dreamscope.optvis import render
from dreamscope.recipes import explain as recipe

QUICK = dict(steps=3, cell_size=32, channel_size=32)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The channels' pictures are cached: in the test's own folder, never the user's."""
    monkeypatch.setenv("DREAMSCOPE_CACHE", str(tmp_path / "cache"))


def squares_and_stripes() -> Image.Image:
    """Grey, a red square at the top left (cells 1-4 of 16, at 4 px a cell), green stripes at the bottom right."""
    pixels = np.full((64, 64, 3), 128, np.uint8)
    pixels[4:20, 4:20] = (220, 30, 30)
    for y in range(36, 60, 4):
        pixels[y : y + 2, 36:60] = (30, 210, 30)
    return Image.fromarray(pixels)


RED_CELLS = (slice(1, 5), slice(1, 5))
GREEN_CELLS = (slice(9, 15), slice(9, 15))


def test_the_factorization_finds_the_channels_known_by_construction_where_they_are():
    result = recipe.explain(squares_and_stripes(), model=toy_models.colours(), groups=2, targets="0,1", **QUICK)
    assert result.grid == (16, 16)
    by_channel = {int(np.argmax(group.channels)): group for group in result.groups}
    assert set(by_channel) == {0, 1}  # one group is the red channel, the other the green one
    for channel, cells in ((0, RED_CELLS), (1, GREEN_CELLS)):
        group = by_channel[channel]
        assert group.channels[channel] > 0.99  # unit norm: nearly all of it on its channel
        where = group.spatial > group.spatial.max() / 2
        expected = np.zeros_like(where)
        expected[cells] = True
        # the green stripes cover every cell they cross at least half (2 px of every 4)
        assert (where == expected).mean() > 0.97, where.astype(int)
    assert result.factorization.error < 0.01  # two groups, two channels that fire: reconstructed exactly
    assert sum(g.share for g in result.groups) == pytest.approx(1.0)


def test_a_factorization_stopped_at_its_iteration_cap_says_nothing_in_the_terminal(monkeypatch):
    """The cap is part of the recipe and the fit is reported as the error: sklearn's ConvergenceWarning is not
    shown (it printed two lines of library internals after every explanation of a busy layer)."""
    monkeypatch.setattr(recipe, "NMF_ITERATIONS", 2)
    activation = torch.rand(24, 9, 9, generator=torch.Generator().manual_seed(0)) - 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = recipe.factorize(activation, 5, seed=0, layer="toy")
    assert len(found.groups) == 5 and 0 < found.error < 1


def test_attribution_to_a_class_built_from_one_channel_points_at_that_channels_places():
    result = recipe.explain(squares_and_stripes(), model=toy_models.colours(), groups=2, targets="0,1", **QUICK)
    red, green = (t.name for t in result.targets)
    by_channel = {int(np.argmax(group.channels)): group for group in result.groups}
    assert by_channel[0].attribution[red] > 0 and by_channel[0].attribution[green] == pytest.approx(0, abs=1e-6)
    assert by_channel[1].attribution[green] > 0 and by_channel[1].attribution[red] == pytest.approx(0, abs=1e-6)
    cells = result.cell_attribution[red]
    outside = cells.copy()
    outside[RED_CELLS] = 0
    assert cells[RED_CELLS].min() > 0 and np.abs(outside).max() < 1e-6
    assert cells.sum() == pytest.approx(result.targets[0].score, rel=1e-4)  # a linear class: attribution is the logit
    # the strongest channel of a red cell is channel 0, of a stripe's cell channel 1
    assert result.top_channels[2, 2, 0] == 0 and result.top_channels[10, 10, 0] == 1


def test_a_model_without_classes_is_explained_toward_its_deepest_layer_or_a_unit():
    net = toy_models.colours_without_classes()
    result = recipe.explain(squares_and_stripes(), model=net, groups=2, **QUICK)
    assert [t.kind for t in result.targets] == ["layer"] and result.targets[0].name.startswith("mix")
    assert len(result.groups) == 2 and len(result.cells) == 256
    unit = recipe.explain(squares_and_stripes(), model=net, groups=2, targets="mix:1", **QUICK)
    (target,) = unit.targets
    green = next(g for g in unit.groups if np.argmax(g.channels) == 1)
    assert target.kind == "unit" and green.attribution[target.name] > 0
    with pytest.raises(SettingsError, match="has no classes: name a unit"):
        recipe.explain(squares_and_stripes(), model=net, groups=2, targets="tabby", **QUICK)


def test_integrated_gradients_add_up_to_the_change_from_a_zero_activation():
    net = ds.load_model("efficientnet-lite0", "cpu")
    photo = chelsea((96, 72))
    x = imaging.to_tensor(photo, net.device)
    with torch.no_grad():
        activation = render.activations(net, ["stage4.2"], x)["stage4.2"][0]
        logits = render.activations(net, ["logits"], x)["logits"][0]
        zero = render.activations(net, ["logits"], x, replace={"stage4.2": torch.zeros_like})["logits"][0]
    target = recipe.Target("tabby", "class", int(logits.argmax()))
    (gradient,) = recipe.attribution_gradients(net, x, "stage4.2", activation, [target], "integrated", 64)
    change = float(logits[target.index] - zero[target.index])
    assert float((activation * gradient).sum()) == pytest.approx(change, rel=0.03)
    (plain,) = recipe.attribution_gradients(net, x, "stage4.2", activation, [target], "gradient")
    assert float((activation * plain).sum()) != pytest.approx(change, rel=0.03)  # the first-order share is not complete


def test_the_real_network_gives_groups_cells_flow_and_cached_channel_pictures():
    net = ds.load_model("efficientnet-lite0", "cpu")
    first = recipe.explain(chelsea((96, 72)), model=net, groups=3, **QUICK)
    assert first.layer == "stage5.2" and first.grid == (5, 6) and len(first.cells) == 30
    assert first.lower is not None and first.lower.layer == "stage3.1" and first.flow.shape == (3, 3)
    assert [t.kind for t in first.targets] == ["class"] * 3 and first.targets[0].name in ("tabby", "Egyptian cat", "tiger cat")
    assert all(g.picture.size == (32, 32) for g in first.groups + first.lower.groups)
    assert "drawn" in first.channel_source and "cache" not in first.channel_source
    again = recipe.explain(chelsea((96, 72)), model=net, groups=3, **QUICK)
    assert again.channel_source == f"{len(again.channel_pictures)} from the cache"
    for channel, picture in first.channel_pictures.items():  # what the cache gives is what a fresh run draws
        assert np.array_equal(np.asarray(picture), np.asarray(again.channel_pictures[channel]))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first.cells, again.cells))


def test_pictures_drawn_in_bf16_are_cached_apart_from_float32_ones():
    net = ds.load_model("efficientnet-lite0", "cpu")
    settings = ds.ExplainSettings()
    single = provenance.make(settings, net, precision="fp32")
    folder = recipe.cache_folder(net, "stage5.2", settings, single)
    assert recipe.cache_folder(net, "stage5.2", settings, dataclasses.replace(single, precision="bf16")) != folder
    # a record from before the choice ran in float32: its cache is still found
    assert recipe.cache_folder(net, "stage5.2", settings, dataclasses.replace(single, precision=None)) == folder


def test_a_microscope_site_of_the_same_model_gives_the_channels_pictures(tmp_path):
    net = ds.load_model("efficientnet-lite0", "cpu")
    site = tmp_path / "site"
    ds.microscope(None, site, engine=ds.InlineEngine(), layers="stage5.2", channels="0-111", size=64, steps=2, samples=0, top=0)
    result = recipe.explain(chelsea((96, 72)), model=net, groups=2, microscope=str(site), **QUICK)
    assert result.channel_source == f"{len(result.channel_pictures)} from the microscope site"
    some = next(iter(result.channel_pictures))
    assert result.channel_pictures[some].size == (64, 64)  # the site's own picture, not one drawn at 32 px
    with pytest.raises(SettingsError, match="has no pages for layer stage4.2"):
        recipe.explain(chelsea((96, 72)), model=net, layer="stage4.2", microscope=str(site), **QUICK)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"layer": "stage9"}, "not a layer of efficientnet-lite0"),
        ({"layer": "head", "size": 32}, "has a 1x1 map at 32 px: no spatial grid"),
        ({"layer": "stage1.0", "groups": 20}, "must be at most stage1.0's 16 channels"),
        ({"targets": "zebraa"}, "no such class"),
        ({"targets": "stage2.1:3"}, "not after stage5.2"),
        ({"lower_layer": "stage6.0"}, "must come before stage5.2"),
    ],
)
def test_what_the_model_cannot_do_is_refused_before_any_work(fields, words):
    with pytest.raises(DreamscopeError, match=words):
        recipe.explain_iter(chelsea((96, 72)), model="efficientnet-lite0", **fields)
