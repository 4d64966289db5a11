"""The skip gradient: the ascent's backward pass scaled down through each residual block's branch.

A residual block adds its branch to an identity skip, y = x + f(x), so the gradient reaching x is the skip's plus
the branch's. Scaling the branch's share by a factor under 1 (Wu et al., "Skip Connections Matter", ICLR 2020, who
found it makes adversarial pictures fool other networks) leans the ascent on the features the skips carry. The
forward pass is untouched: the objective, and the network's probability a stop rule reads, are the network's own;
only the direction of each step changes. For class pictures it lifted how often a held-out network names the class
to the benchmark's target on every seed tried (docs/benchmarks.md).

A block says where its branch ends with `residual_branch`: the name of the child module whose output is added to
the identity skip (None where the block has no identity skip). dreamscope's EfficientNet-Lite blocks say so; a
user's own blocks can too. Every gradient that goes back through the branch passes that module's output, so the
scale there scales the whole branch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def branches(net: nn.Module) -> list[str]:
    """The paths of the modules whose outputs are residual branches added to an identity skip."""
    found = []
    for name, module in net.named_modules():
        end = getattr(module, "residual_branch", None)
        if isinstance(end, str):
            found.append(f"{name}.{end}" if name else end)
    return found


def swaps(net: nn.Module, scale: float) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Module path -> fn(output) for `taps.capture`'s `replace`: each branch's output as it is, its gradient times
    `scale`. Empty at 1 (the true gradient) or on a network without residual branches."""
    if scale == 1:
        return {}
    return {path: lambda output: _ScaleGradient.apply(output, scale) for path in branches(net)}
