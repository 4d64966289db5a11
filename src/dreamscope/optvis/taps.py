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
    __slots__ = ("calls", "outputs", "paths", "replace", "wanted")

    def __init__(self, paths, replace=None):
        # module -> {call number (1 = its first call in the pass) -> the names it was asked by}
        self.paths: dict[nn.Module, dict[int, list[str]]] = paths
        self.outputs: dict[str, object] = {}
        self.replace = replace or {}  # module -> (call number, fn(output) giving what the rest of the network sees)
        self.calls: dict[nn.Module, int] = {}
        self.wanted = sum(len(names) for by_call in paths.values() for names in by_call.values())


_current: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar("dreamscope_capture", default=None)


def _dispatch(module: nn.Module, _inputs, output):
    capture = _current.get()
    if capture is None:
        return None
    call = capture.calls[module] = capture.calls.get(module, 0) + 1
    swap = capture.replace.get(module)
    if swap is not None and swap[0] == call:
        return swap[1](output)  # a forward hook's return value replaces the module's output
    names = capture.paths.get(module, {}).get(call)
    if not names:
        return None
    for name in names:
        capture.outputs[name] = output
    if len(capture.outputs) == capture.wanted:
        raise _Enough
    # More of the pass is to come, and an in-place operation after this module (ReLU(inplace=True)) would change
    # the tensor kept here: the rest of the network gets a copy instead, and what was captured stays as it was.
    return _copy(output)


def _copy(output):
    if isinstance(output, torch.Tensor):
        return output.clone()
    if isinstance(output, tuple):
        return tuple(_copy(item) for item in output)
    if isinstance(output, list):
        return [_copy(item) for item in output]
    if isinstance(output, dict):
        return {key: _copy(item) for key, item in output.items()}
    return output


def _install(modules) -> None:
    with HOOKS_LOCK:
        for module in modules:
            # Looked up on the module itself: a copy of a network (a bfloat16 twin) carries its original's hook.
            if _dispatch not in module._forward_hooks.values():
                module.register_forward_hook(_dispatch)


def split_call(path: str) -> tuple[str, int]:
    """ "layer1.0.relu#2" -> ("layer1.0.relu", 2): a module's second call in a pass; a plain path is its first."""
    module, mark, call = path.rpartition("#")
    return (module, int(call)) if mark and call.isdigit() and int(call) >= 1 else (path, 1)


def capture(
    net: nn.Module,
    modules: list[str] | tuple[str, ...],
    x: torch.Tensor,
    replace: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> dict[str, object]:
    """Run `net(x)` until every module in `modules` (dotted paths, "path#k" for its k-th call in the pass; "" is the
    whole network) has produced its output; return those outputs by the names asked.

    `replace` maps a module's path (or "path#k") to fn(output): the rest of the network sees what it returns instead
    (a batch of variations of one activation, a tangent for forward-mode derivatives).
    """
    wanted = list(dict.fromkeys(modules))
    found = dict(net.named_modules())
    calls = {name: split_call(name) for name in [*wanted, *(replace or {})]}
    missing = [name for name, (path, _) in calls.items() if path not in found]
    if missing:
        raise KeyError(f"no module named {missing[0]!r} in {net.__class__.__name__}")
    paths: dict[nn.Module, dict[int, list[str]]] = {}
    for name in wanted:
        path, call = calls[name]
        paths.setdefault(found[path], {}).setdefault(call, []).append(name)
    replacing = {found[calls[name][0]]: (calls[name][1], fn) for name, fn in (replace or {}).items()}
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
    return {name: state.outputs[name] for name in wanted}
