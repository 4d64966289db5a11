"""The skip gradient: residual branches' gradient scaled, the forward pass untouched."""

import pytest
import torch
from torch import nn

import dreamscope as ds
from dreamscope.models.efficientnet_lite import MBConvBlock
from dreamscope.models.googlenet import GoogLeNet
from dreamscope.optvis import params, render, skip, taps


def gradient(block, x, scale):
    x = x.clone().requires_grad_(True)
    out = taps.capture(block, [""], x, skip.swaps(block, scale))[""]
    out.square().sum().backward()
    return out.detach(), x.grad


def test_a_residual_blocks_branch_gradient_is_scaled_and_its_output_is_not():
    torch.manual_seed(0)
    block = MBConvBlock(3, 1, 4, 8, 8).double().eval()
    x = torch.randn(2, 8, 12, 12, dtype=torch.float64)
    (out_1, g_1), (out_half, g_half), (out_0, g_0) = (gradient(block, x, s) for s in (1, 0.5, 0))
    assert torch.equal(out_1, out_half) and torch.equal(out_1, out_0)  # the same values, exactly
    # d/dx sum((x + f(x))^2) is 2 (x + f(x)) (1 + f'(x)): with the branch's share scaled to 0 only the skip's is left
    assert torch.allclose(g_0, 2 * out_1, atol=1e-12)
    assert (g_1 - g_0).abs().max() > 0.05 * g_1.abs().max()  # the branch's share is a real part of the gradient...
    assert torch.allclose(g_half, (g_1 + g_0) / 2, atol=1e-12)  # ...and a scale of 0.5 keeps half of it


def test_only_blocks_with_an_identity_skip_have_a_branch(model):
    paths = skip.branches(model.net)
    blocks = [m for m in model.net.modules() if isinstance(m, MBConvBlock)]
    assert len(paths) == sum(b.skip for b in blocks) and 0 < len(paths) < len(blocks)
    found = dict(model.net.named_modules())
    assert all(p in found and p.endswith("._bn2") for p in paths)  # its last batch norm (folded: an identity)
    assert skip.swaps(model.net, 1.0) == {}  # the true gradient: nothing swapped
    assert skip.branches(GoogLeNet()) == [] and skip.branches(nn.Sequential(nn.Conv2d(3, 3, 1))) == []  # none there


def test_an_ascent_with_the_skip_gradient_sees_the_same_values_and_steps_elsewhere(model):
    def first_steps(scale):
        picture = params.make_param("fft", 1, 64, 64, torch.Generator().manual_seed(0))
        events = render.optimize(
            model, ds.class_logit(327), picture, steps=2, generator=torch.Generator().manual_seed(1), skip_gradient=scale
        )
        return [(event.loss, event.picture) for event in events]

    (value_1, _), (_, after_1) = first_steps(1.0)
    (value_half, _), (_, after_half) = first_steps(0.5)
    assert value_1 == pytest.approx(value_half, rel=1e-6)  # step 1 starts from the same picture: the same logit
    assert (after_1 - after_half).abs().max() > 1e-3  # but each step went its own way
