"""Networks by name from timm and torchvision (models/libraries.py), built by the real libraries with random weights:
every recipe end to end on a CNN, a ConvNeXt, a ViT with a class token, a ViT with register tokens, a Swin and an
EfficientNet; the token grid against a hand computation; in-place ReLUs and a ResNet block's shared ReLU; weights
that are not in the cache, offline. `make test` installs both libraries without their dependencies."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import dreamscope as ds
from conftest import chelsea, error_line
from dreamscope.errors import DreamscopeError
from dreamscope.models import libraries
from dreamscope.optvis import objectives, render

FOUND = libraries.versions()
needs = {
    library: pytest.mark.skipif(not version, reason=f"{library} is not installed ({libraries.INSTALL})")
    for library, version in FOUND.items()
}

# name -> (layer to dream and explain, its layout, stride)
FAMILIES = {
    "torchvision:resnet50": ("layer3", "nchw", 16),
    "timm:convnext_tiny": ("stages.2", "nchw", 16),
    "timm:vit_small_patch16_224": ("blocks.5", "tokens", 16),
    "timm:vit_little_patch16_reg4_gap_256": ("blocks.6", "tokens", 16),
    "timm:swin_tiny_patch4_window7_224": ("layers.2", "nhwc", 16),
    "timm:efficientnet_b0": ("blocks.4", "nchw", 16),
}


def built(name: str):
    return libraries.load_library_model(name, "cpu", pretrained=False)


def photo(size=(96, 72)):
    return chelsea(size)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_recipe_runs_end_to_end_on_each_family(name):
    library = name.split(":")[0]
    if not FOUND[library]:
        pytest.skip(f"{library} is not installed ({libraries.INSTALL})")
    layer, kind, stride = FAMILIES[name]
    model = built(name)
    assert model.spec.default_layer == layer  # a block at stride 16 (a transformer's middle block)
    info = model.layers[layer]
    assert (info.layout.kind, info.stride) == (kind, stride)
    assert model.spec.classes == "ImageNet" and model.spec.num_classes == 1000
    picture = photo()
    dreamed = ds.dream(picture, model=model, layer=layer, octaves=1, steps=2)
    assert dreamed.size == picture.size
    assert np.abs(np.asarray(dreamed, np.float32) - np.asarray(picture, np.float32)).mean() > 0.2
    (channel,) = ds.visualize(f"{layer}:3", model=model, kind="channel", size=64, steps=2)
    assert channel.size == (64, 64)
    probe = ds.probe(picture, model=model, layers=layer, steps=2, octaves=1, channels=1, vis_size=64, vis_steps=2)
    assert probe.layers[0].name == layer and len(probe.layers[0].top) == 1
    explained = ds.explain(
        picture,
        model=model,
        layer=layer,
        groups=2,
        steps=1,
        size=64,
        targets="top:1",
        cell_size=32,
        channel_size=32,
        top_channels=1,
        integrated_steps=2,
        lower_layer="none",
    )
    assert len(explained.groups) == 2


@needs["timm"]
def test_a_vit_token_grid_maps_each_patch_to_its_token_and_the_class_token_is_a_layer():
    model = built("timm:vit_small_patch16_224")
    layer = model.layers["blocks.5"]
    assert layer.layout.extra == 1 and layer.layout.class_token
    assert model.layer("blocks.5:cls").channels == 384
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    raw = {}
    handle = model.net.blocks[5].register_forward_hook(lambda _m, _i, out: raw.setdefault("tokens", out.detach()))
    try:
        acts = render.activations(model, ["blocks.5", "blocks.5:cls"], x)
    finally:
        handle.remove()
    grid, tokens = acts["blocks.5"], raw["tokens"]
    assert grid.shape == (1, 384, 14, 14)
    for r, c in ((0, 0), (0, 13), (5, 7), (13, 0), (13, 13)):  # patch (r, c) is token 1 + 14 r + c
        assert torch.equal(grid[0, :, r, c], tokens[0, 1 + 14 * r + c, :])
    assert torch.equal(acts["blocks.5:cls"][0, :, 0, 0], tokens[0, 0, :])
    # the registers' ViT: 4 registers and no class token, so no :cls layer
    registers = built("timm:vit_little_patch16_reg4_gap_256").layers["blocks.6"]
    assert registers.layout.extra == 4 and not registers.layout.class_token
    # a vision transformer dreams a picture of any shape: timm's dynamic image size
    wide = render.activations(model, ["blocks.5"], torch.rand(1, 3, 160, 224))["blocks.5"]
    assert wide.shape == (1, 384, 10, 14)


@needs["torchvision"]
def test_a_resnet_blocks_shared_relu_is_a_layer_per_call_and_in_place_relus_change_nothing():
    model = built("torchvision:resnet50")
    shapes = {
        name: (model.layers[name].channels, model.layers[name].stride)
        for name in ("layer1.0.relu#1", "layer1.0.relu#2", "layer1.0.relu#3", "layer2.0.relu#2")
    }
    assert shapes == {
        "layer1.0.relu#1": (64, 4),
        "layer1.0.relu#2": (64, 4),
        "layer1.0.relu#3": (256, 4),
        "layer2.0.relu#2": (128, 8),
    }
    assert "runs 3 times" in model.not_dreamable["layer1.0.relu"]
    # torchvision's ReLUs are in place: the same values and gradients as a copy whose ReLUs are not
    plain = copy.deepcopy(model.net)
    for module in plain.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    out_of_place = ds.wrap_model(plain, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), name="copy")
    objective = objectives.layer_l2("layer1.0.bn1") + objectives.channel("layer1.0.relu#2", 5) + objectives.layer_l2("layer2")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    value, grad = render.objective_gradient(model, objective, x)
    value2, grad2 = render.objective_gradient(out_of_place, objective, x)
    assert value == pytest.approx(value2, rel=1e-5) and torch.allclose(grad, grad2, rtol=1e-4, atol=1e-8)
    assert (render.activations(model, ["layer1.0.bn1", "layer2"], x)["layer1.0.bn1"] < 0).any()  # not rewritten by its ReLU


@pytest.mark.parametrize("name", ["torchvision:resnet18", "timm:resnet18"])
def test_pretrained_weights_not_in_the_cache_are_one_line_naming_the_folder(name, tmp_path, monkeypatch, run_cli):
    library = name.split(":")[0]
    if not FOUND[library]:
        pytest.skip(f"{library} is not installed")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DreamscopeError) as caught:
        libraries.load_library_model(name, "cpu")
    message = str(caught.value)
    assert "are not in the cache" in message and str(tmp_path) in message
    assert f"dreamscope models --download {name}" in message
    chelsea((64, 48)).save(tmp_path / "cat.png")
    env = {"TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    line = error_line(run_cli("dream", "cat.png", "--model", name, "-o", "out.png", cwd=tmp_path, env=env))
    assert "are not in the cache" in line and not (tmp_path / "out.png").exists()


@needs["timm"]
def test_a_local_weights_file_and_the_layer_listing_on_the_command_line(tmp_path, run_cli):
    net = built("timm:efficientnet_b0").net
    torch.save(net.state_dict(), tmp_path / "b0.pth")
    chelsea((64, 48)).save(tmp_path / "cat.png")
    made = run_cli(
        "dream",
        "cat.png",
        "--model",
        "timm:efficientnet_b0",
        "--weights",
        "b0.pth",
        "--steps",
        "1",
        "--octaves",
        "1",
        "-o",
        "out.png",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert ds.io.provenance.read(tmp_path / "out.png").settings.model == "timm:efficientnet_b0"
    listing = run_cli("layers", "--model", "timm:vit_small_patch16_224", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("blocks.5 "))
    assert "tokens: class token + grid" in row and "default" in row
    assert "LAYER:cls" in listing.stdout
    unknown = error_line(run_cli("layers", "--model", "timm:vit_smal_patch16_224", cwd=tmp_path))
    assert "timm has no model 'vit_smal_patch16_224'" in unknown and "did you mean" in unknown


@pytest.mark.parametrize(
    "name, probed, deep",
    [
        ("torchvision:resnet50", ["layer1", "layer2", "layer3", "layer4"], "layer3"),
        ("timm:vit_small_patch16_224", ["blocks.0", "blocks.2", "blocks.4", "blocks.7", "blocks.9", "blocks.11"], "blocks.9"),
    ],
)
def test_the_probes_layers_and_the_studios_presets_are_a_networks_blocks(name, probed, deep):
    if not FOUND[name.split(":")[0]]:
        pytest.skip("not installed")
    from dreamscope.recipes.probe import default_layers
    from dreamscope.studio.info import presets

    model = built(name)
    assert default_layers(model) == probed  # stages or blocks, not a stem's conv, norm and pool or a block's insides
    assert next(p for p in presets(model) if p["name"] == "deep")["settings"]["layer"] == deep


def test_a_library_that_is_not_installed_is_named_with_the_install_line(monkeypatch):
    def missing(library):
        raise ImportError(f"No module named {library!r}")

    monkeypatch.setattr(libraries, "_import", missing)
    with pytest.raises(DreamscopeError) as caught:
        libraries.load_library_model("timm:convnext_tiny", "cpu")
    assert str(caught.value).startswith("model timm:convnext_tiny needs timm, which is not installed; pip install --no-deps")
    assert libraries.versions() == {"timm": None, "torchvision": None}
