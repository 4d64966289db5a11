"""The number format a network computes in: float32, or bfloat16 where the CPU multiplies it in hardware.

A bfloat16 network is a twin of the loaded one (made once, then kept): its weights and activations are bfloat16,
so oneDNN runs its convolutions on the CPU's bfloat16 units (AMX tiles, or AVX-512's bfloat16 dot products);
pictures, objectives and gradients stay float32 (the model's `to_input` casts on the way in, `render.activations`
on the way out). Strided depthwise convolutions (EfficientNet-Lite's four) stay float32: oneDNN's bfloat16 kernel
for their backward pass was 10-35x slower than its float32 one on an AMX Xeon (48 ms against 1.4 ms for the largest
at 512 px), which would cost more than the rest saves; on an AVX512-BF16 EPYC a network all in bfloat16 still took
1.07-1.15x the twin's time for a class picture's step. Rounding differently, a bfloat16 dream is another dream, as
strong: benchmarks/bench_precision.py measures how far.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import threading
import weakref

import torch
from torch import nn

from ..errors import DreamscopeError
from ..fields import PRECISIONS
from .spec import HOOKS_LOCK, LoadedModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

_twins: weakref.WeakKeyDictionary[LoadedModel, LoadedModel] = weakref.WeakKeyDictionary()
_twins_lock = threading.Lock()
_auto_means: contextvars.ContextVar[str | None] = contextvars.ContextVar("dreamscope_auto_precision", default=None)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware: AMX tiles (Intel Xeon: a dream step 0.45x float32's), or
    AVX-512's bfloat16 dot products (AVX512_BF16, e.g. AMD EPYC: a dream 0.78x, a class picture 0.79x; both
    docs/benchmarks.md). Without either, bfloat16 only saves memory."""
    checks = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(check is not None and check() for check in checks)


def resolve(precision: str, model: LoadedModel) -> str:
    """ "fp32" or "bf16" for `precision` ("auto", "fp32" or "bf16") on `model`.

    auto chooses bfloat16 only where it was measured to be faster and to dream as strongly: a registered model
    that allows it (its spec's `bf16`), on a CPU that multiplies bfloat16 in hardware (`cpu_has_bf16`).
    """
    if precision not in PRECISIONS:
        raise DreamscopeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if _auto_means.get() is not None:
        return _auto_means.get()
    return "bf16" if model.spec.bf16 and model.device.type == "cpu" and cpu_has_bf16() else "fp32"


@contextlib.contextmanager
def auto_means(chosen: str | None):
    """Within it, "auto" resolves to `chosen` ("fp32" or "bf16"; None: as usual): a redo or a resumed zoom computes
    as the original did, whatever this CPU would choose, and its settings still say "auto"."""
    token = _auto_means.set(chosen)
    try:
        yield
    finally:
        _auto_means.reset(token)


def at(model: LoadedModel, precision: str) -> LoadedModel:
    """The model to run at `precision` ("auto", "fp32" or "bf16"): `model` itself for float32, else its twin."""
    chosen = resolve(precision, model)
    if DTYPES[chosen] == model.dtype:
        return model
    with _twins_lock:
        twin = _twins.get(model)
        if twin is None:
            twin = _twins[model] = _bf16_twin(model)
        return twin


def name_of(model: LoadedModel) -> str:
    """ "fp32" or "bf16": what `model` computes in (the name a record gives it)."""
    return next(name for name, dtype in DTYPES.items() if dtype == model.dtype)


def _bf16_twin(model: LoadedModel) -> LoadedModel:
    with HOOKS_LOCK:  # another thread may be adding a tap hook to the network being copied
        net = copy.deepcopy(model.net)
    net.to(torch.bfloat16)
    for module in net.modules():
        if _strided_depthwise(module):
            module.float()
            module.register_forward_pre_hook(_inputs_to_float)
            module.register_forward_hook(_output_to_bf16)
    return dataclasses.replace(model, net=net, dtype=torch.bfloat16)


def _strided_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels and module.stride != (1, 1)


def _inputs_to_float(_module, inputs):
    return tuple(x.float() if torch.is_tensor(x) else x for x in inputs)


def _output_to_bf16(_module, _inputs, output):
    return output.to(torch.bfloat16)
