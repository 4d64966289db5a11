"""Layer layouts (models/layouts.py) and hooks that survive real networks (optvis/taps.py): token sequences with a
class token and registers, channels-last maps, tuples, in-place activations, a module called several times,
checkpointed and scripted modules. Small hand-made networks; EfficientNet-Lite0 where the real one is the point."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import dreamscope as ds
from dreamscope.errors import DreamscopeError
from dreamscope.optvis import objectives, render


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x):
        h = self.norm(x)
        x = x + self.attn(h, h, h)[0]  # a tuple: (output, attention weights)
        return x + self.mlp(x)


class TinyViT(nn.Module):
    """A vision transformer: 16 px patches, a class token, `registers` register tokens, learned positions."""

    def __init__(self, width: int = 24, depth: int = 6, registers: int = 2, size: int = 64):
        super().__init__()
        torch.manual_seed(0)
        self.patch_embed = nn.Conv2d(3, width, 16, 16)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.5)
        self.reg_token = nn.Parameter(torch.randn(1, registers, width) * 0.5) if registers else None
        self.extra = 1 + registers
        self.pos_embed = nn.Parameter(torch.randn(1, self.extra + (size // 16) ** 2, width) * 0.5)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        first = [self.cls_token.expand(len(x), -1, -1)]
        if self.reg_token is not None:
            first.append(self.reg_token.expand(len(x), -1, -1))
        tokens = torch.cat([*first, tokens], 1) + self.pos_embed
        return self.head(self.blocks(tokens)[:, 0])


def vit(**options):
    return ds.wrap_model(TinyViT(**options), resolution=64, name="tinyvit")


def test_a_token_layer_is_a_grid_of_its_patches_and_its_class_token_a_layer_of_its_own():
    model = vit()
    block = model.layers["blocks.2"]
    assert block.layout.kind == "tokens" and block.layout.extra == 3 and block.layout.class_token
    assert block.channels == 24 and block.stride == 16
    assert block.layout.describe() == "tokens: class token, 2 registers + grid"
    assert model.layers["blocks.2.mlp.0"].channels == 48  # the MLP's hidden units are a layer too
    assert model.layers["blocks.2.attn"].layout.pick == 0  # the attention's output, not its weights
    assert model.spec.default_layer == "blocks.2"  # a middle block
    # the grid, by hand: patch (r, c) of a 4 x 4 grid is token extra + 4 r + c
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    raw = {}
    handle = model.net.blocks[2].register_forward_hook(lambda _m, _i, out: raw.setdefault("tokens", out.detach()))
    try:
        acts = render.activations(model, ["blocks.2", "blocks.2:cls"], x)
    finally:
        handle.remove()
    grid, tokens = acts["blocks.2"], raw["tokens"]
    assert grid.shape == (2, 24, 4, 4)
    for r, c in ((0, 0), (0, 3), (2, 1), (3, 3)):
        assert torch.equal(grid[:, :, r, c], tokens[:, 3 + 4 * r + c, :])
    assert torch.equal(acts["blocks.2:cls"][:, :, 0, 0], tokens[:, 0, :])
    # without a class token there is no :cls layer
    plain = ds.wrap_model(TinyViT(registers=0), resolution=64, name="plain")
    assert plain.layers["blocks.2"].layout.class_token  # its one extra token is the class token
    with pytest.raises(DreamscopeError, match="no layer 'patch_embed:cls'"):
        plain.layer("patch_embed:cls")


def test_every_recipe_runs_on_a_transformer(tmp_path):
    model = vit()
    photo = ds.imaging.to_pil(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    start = ds.classify(photo, model=model, top=1)
    assert len(start) == 1
    dreamed = ds.dream(photo, model=model, layer="blocks.3", octaves=1, steps=2)
    assert dreamed.size == (64, 64) and np.abs(np.asarray(dreamed, float) - np.asarray(photo, float)).mean() > 0.5
    pictures = ds.visualize("blocks.3:5", model=model, kind="channel", size=64, steps=3)
    assert pictures[0].size == (64, 64)
    token = ds.visualize("blocks.3:cls:5", model=model, kind="channel", size=64, steps=3)  # the class token's unit
    assert token[0].size == (64, 64)
    grid = ds.visualize("blocks.3", model=model, kind="channels", size=64, steps=2, grid=4)
    assert len(grid) == 4 and all(p.size == (64, 64) for p in grid)  # the first 4 channels
    probe = ds.probe(photo, model=model, layers="blocks.1", steps=2, octaves=1, vis_steps=2, vis_size=64, channels=2)
    assert probe.layers[0].name == "blocks.1" and len(probe.layers[0].top) == 2 and probe.layers[0].stride == 16
    explained = ds.explain(
        photo,
        model=model,
        layer="blocks.3",
        groups=2,
        steps=2,
        size=64,
        targets="top:1",
        cell_size=32,
        channel_size=32,
        top_channels=1,
        lower_layer="none",
    )
    assert explained.grid == (4, 4)


def test_a_transformer_that_takes_only_its_own_size_sees_every_picture_resized_to_it():
    model = vit()  # its position embeddings fit 64 x 64 only
    x = torch.rand(1, 3, 96, 128)
    assert render.activations(model, ["blocks.1"], x)["blocks.1"].shape == (1, 24, 4, 4)


class Relayout(nn.Module):
    """A feature map turned into another layout and back: the same network, the same pictures."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.out = nn.Identity()  # its output is the relaid layer
        self.back = nn.Identity()
        self.shape = None

    def forward(self, x):
        n, c, h, w = x.shape
        if self.kind == "nhwc":
            y = self.out(x.permute(0, 2, 3, 1))
            return self.back(y.permute(0, 3, 1, 2))
        y = self.out(torch.cat([torch.zeros(n, 1, c, dtype=x.dtype), x.flatten(2).transpose(1, 2)], 1))
        return self.back(y[:, 1:, :].transpose(1, 2).reshape(n, c, h, w))


@pytest.mark.parametrize("kind", ["nhwc", "tokens"])
def test_a_channels_last_or_token_view_of_efficientnet_gives_the_same_pictures(kind):
    lite = ds.load_model("efficientnet-lite0", "cpu")
    index = next(i for i, (stage, k) in enumerate(lite.net.stage_of_block) if (stage, k) == (4, 2))
    plain = copy.deepcopy(lite.net).to(memory_format=torch.contiguous_format)
    relaid = copy.deepcopy(plain)
    relaid._blocks[index] = nn.Sequential(relaid._blocks[index], Relayout(kind))
    a = ds.wrap_model(plain, preprocess=lite.spec.to_input, name="plain")
    b = ds.wrap_model(relaid, preprocess=lite.spec.to_input, name="relaid")
    layer = f"_blocks.{index}.1.out"
    assert b.layers[layer].layout.kind == kind and b.layers[layer].channels == a.layers[f"_blocks.{index}"].channels
    photo = ds.imaging.to_pil(torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3)))
    first = ds.dream(photo, model=a, layer=f"_blocks.{index}", octaves=2, steps=3, channels="3,17")
    second = ds.dream(photo, model=b, layer=layer, octaves=2, steps=3, channels="3,17")
    assert np.array_equal(np.asarray(first), np.asarray(second))
    one = ds.visualize(f"_blocks.{index}:7", model=a, kind="channel", size=64, steps=4)[0]
    two = ds.visualize(f"{layer}:7", model=b, kind="channel", size=64, steps=4)[0]
    assert np.array_equal(np.asarray(one), np.asarray(two))


class Convs(nn.Module):
    """Three convolutions; `inplace` ReLUs after the first two, and one ReLU module shared by both (`shared`)."""

    def __init__(self, inplace: bool, shared: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.relu = nn.ReLU(inplace=inplace)
        self.relu2 = self.relu if shared else nn.ReLU(inplace=inplace)

    def forward(self, x):
        return self.conv3(self.relu2(self.conv2(self.relu(self.conv1(x)))))


def test_in_place_activations_after_a_tapped_layer_change_neither_the_objective_nor_its_gradient():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    values = []
    for inplace in (False, True):
        model = ds.wrap_model(Convs(inplace), resolution=32, name=f"inplace={inplace}")
        objective = objectives.layer_l2("conv1") + objectives.channel("conv2", 3) + objectives.layer_l2("conv3")
        values.append(render.objective_gradient(model, objective, x))
    (plain_value, plain_grad), (inplace_value, inplace_grad) = values
    assert plain_value == pytest.approx(inplace_value, rel=1e-6)
    assert torch.allclose(plain_grad, inplace_grad, atol=1e-7)
    # the tapped conv1 keeps its negative values: the in-place ReLU after it did not rewrite what was captured
    acts = render.activations(ds.wrap_model(Convs(True), resolution=32), ["conv1", "conv2"], x)
    assert (acts["conv1"] < 0).any()


def test_each_call_of_a_shared_module_is_a_layer_of_its_own():
    model = ds.wrap_model(Convs(False, shared=True), resolution=32, name="shared")
    assert "relu" not in model.layers and "relu#1" in model.layers and "relu#2" in model.layers
    assert "each call is a layer: relu#1 to relu#2" in model.not_dreamable["relu"]
    assert model.layers["relu#1"].stride == 1 and model.layers["relu#2"].stride == 2
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    acts = render.activations(model, ["relu#1", "relu#2", "conv1"], x)
    assert acts["relu#1"].shape == (1, 8, 32, 32) and acts["relu#2"].shape == (1, 8, 16, 16)
    assert torch.equal(acts["relu#1"], acts["conv1"].clamp(min=0))


class Checkpointed(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Convs(False)

    def forward(self, x):
        return checkpoint(self.inner, x, use_reentrant=False)


def test_modules_inside_a_checkpoint_are_tapped_with_the_right_gradient():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = ds.wrap_model(Convs(False), resolution=32, name="plain")
    saved = ds.wrap_model(Checkpointed(), resolution=32, name="checkpointed")
    objective = objectives.channel("conv2", 3)
    value, grad = render.objective_gradient(plain, objective, x)
    objective = objectives.channel("inner.conv2", 3)
    value2, grad2 = render.objective_gradient(saved, objective, x)
    assert value == pytest.approx(value2) and torch.allclose(grad, grad2)


def test_scripted_and_compiled_modules_are_refused_with_a_reason():
    with pytest.raises(DreamscopeError, match="TorchScript"):
        ds.wrap_model(torch.jit.script(Convs(False)), resolution=32)
    compiled = torch.compile(Convs(False))
    with pytest.raises(DreamscopeError, match="torch.compile"):
        ds.wrap_model(compiled, resolution=32)
