"""Which device a model runs on."""

from __future__ import annotations

import torch

from ..errors import DreamscopeError

_FALLBACK = "use device cpu or auto (--device cpu on the command line)"


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """'auto' (or None) picks CUDA, then Apple's MPS, then the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise DreamscopeError(f"unknown device '{device}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamscopeError(f"CUDA was asked for but is not available here; {_FALLBACK}")
    if device.type == "mps" and not _mps_available():
        raise DreamscopeError(f"MPS was asked for but is not available here; {_FALLBACK}")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DreamscopeError(f"unsupported device '{device}'; use auto, cpu, cuda, cuda:N or mps")
    return device
