"""Read activations at named modules: hook only those, stop the forward pass once all have fired, always unhook.

Works on any nn.Module (ours or a user's): the pass is cut short by an exception raised from the hook of the
last requested module to run, so no work is spent on the layers past the deepest one an objective needs.
"""

from __future__ import annotations

import torch
from torch import nn


class _Enough(Exception):
    """Raised inside a hook to end the forward pass early; never escapes `capture`."""


def capture(net: nn.Module, modules: list[str] | tuple[str, ...], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run `net(x)` until every module in `modules` (dotted paths) has produced its output; return those outputs."""
    wanted = list(dict.fromkeys(modules))
    found = dict(net.named_modules())
    missing = [m for m in wanted if m not in found]
    if missing:
        raise KeyError(f"no module named {missing[0]!r} in {net.__class__.__name__}")
    outputs: dict[str, torch.Tensor] = {}

    def make_hook(path: str):
        def hook(_module, _inputs, output):
            if path not in outputs:  # a module reused later in the graph counts at its first call
                outputs[path] = output
                if len(outputs) == len(wanted):
                    raise _Enough

        return hook

    handles = [found[path].register_forward_hook(make_hook(path)) for path in wanted]
    try:
        net(x)
    except _Enough:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(outputs) != len(wanted):
        absent = [m for m in wanted if m not in outputs]
        raise RuntimeError(f"module(s) {absent} never ran in the forward pass")
    return outputs
