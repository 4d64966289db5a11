"""Read activations at named modules: stop the forward pass once all have fired; safe when threads share a network.

Works on any nn.Module (ours or a user's): the pass is cut short by an exception raised from the hook of the
last requested module to run, so no work is spent on the layers past the deepest one an objective needs.

One loaded network serves every thread of a process (the studio's workers, a batch pool), so a capture must
never see another's activations, and hooks must not be added and removed while another thread runs the same
modules. Each module that is ever captured gets one permanent dispatch hook, installed once; it does nothing
unless a capture running on the calling thread (a context variable) asked for that module. Installing is the
only change ever made to the network, and it happens once per module.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import torch
from torch import nn

from ..models.spec import HOOKS_LOCK


class _Enough(Exception):
    """Raised inside a hook to end the forward pass early; never escapes `capture`."""


class _Capture:
    __slots__ = ("outputs", "paths", "replace")

    def __init__(self, paths: dict[nn.Module, list[str]], replace: dict[nn.Module, Callable] | None = None):
        self.paths = paths  # module -> the dotted paths it was asked by (a module can have two names)
        self.outputs: dict[str, torch.Tensor] = {}
        self.replace = replace or {}  # module -> fn(output) giving what the rest of the network sees instead


_current: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar("dreamscope_capture", default=None)


def _dispatch(module: nn.Module, _inputs, output):
    capture = _current.get()
    if capture is None:
        return None
    if module in capture.replace:
        return capture.replace[module](output)  # a forward hook's return value replaces the module's output
    paths = capture.paths.get(module)
    if not paths or paths[0] in capture.outputs:  # a module reused later in the graph counts at its first call
        return
    for path in paths:
        capture.outputs[path] = output
    if len(capture.outputs) == sum(len(p) for p in capture.paths.values()):
        raise _Enough


def _install(modules) -> None:
    with HOOKS_LOCK:
        for module in modules:
            # Looked up on the module itself: a copy of a network (a bfloat16 twin) carries its original's hook.
            if _dispatch not in module._forward_hooks.values():
                module.register_forward_hook(_dispatch)


def capture(
    net: nn.Module,
    modules: list[str] | tuple[str, ...],
    x: torch.Tensor,
    replace: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """Run `net(x)` until every module in `modules` (dotted paths; "" is the whole network) has produced its
    output; return those outputs by path.

    `replace` maps a module's path to fn(output): the rest of the network sees what it returns instead (a
    batch of variations of one activation, a tangent for forward-mode derivatives).
    """
    wanted = list(dict.fromkeys(modules))
    found = dict(net.named_modules())
    missing = [m for m in [*wanted, *(replace or {})] if m not in found]
    if missing:
        raise KeyError(f"no module named {missing[0]!r} in {net.__class__.__name__}")
    paths: dict[nn.Module, list[str]] = {}
    for path in wanted:
        paths.setdefault(found[path], []).append(path)
    replacing = {found[path]: fn for path, fn in (replace or {}).items()}
    _install([*paths, *replacing])
    state = _Capture(paths, replacing)
    token = _current.set(state)
    try:
        net(x)
    except _Enough:
        pass
    finally:
        _current.reset(token)
    if len(state.outputs) != len(wanted):
        absent = [m for m in wanted if m not in state.outputs]
        raise RuntimeError(f"module(s) {absent} never ran in the forward pass")
    return {path: state.outputs[path] for path in wanted}
