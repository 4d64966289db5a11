"""Provenance: what made a picture, carried inside it, so it can be made again.

A record holds the recipe's settings (their JSON), the seed, the model's name and a digest of its weights, each
input's digest (and its path when it came from a file), the dreamscope and torch versions, the device and the
thread count. It is written into every output: PNG text chunks, JPEG/WebP/TIFF metadata, video container
metadata, each PNG of a frames folder, a probe report's sheet (`images.read_metadata`, `videos.read_metadata`).
No time stamps: the same run gives the same bytes. `read(path)` gives it back; `redo` (work/redo.py) re-runs it.

Inputs are identified by the SHA-256 of their decoded RGB pixels (and size): a lossless re-encoding of the
same photo is the same input, and a picture handed over from Python without a file has a digest too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import DreamscopeError
from ..settings import Settings
from ..version import __version__
from . import images, videos

KEY = "dreamscope"  # the metadata key that holds the record's JSON
FORMAT = 1  # bumped when a record's layout changes


def version() -> str:
    return __version__


def pixels_digest(image) -> str:
    """SHA-256 of a PIL image's RGB pixels and size: the same picture, however it was encoded."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return "sha256:" + digest.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Record:
    """What made an output. `inputs` maps an input's role ("input", "guide", "init") to {"pixels": digest,
    "size": [w, h]} plus {"path", "file"} when it came from a file; a video input has {"path", "file"} only."""

    settings: Settings
    model: Mapping[str, Any]
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    threads: int | None = None
    dreamscope: str = ""
    torch: str = ""
    precision: str | None = None  # what the network computed in ("fp32", "bf16"), where the recipe has a choice

    @property
    def recipe(self) -> str:
        return self.settings.recipe

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dreamscope": self.dreamscope,
            "recipe": self.recipe,
            "settings": self.settings.to_json(),
            "seed": self.settings.seed,
            "model": dict(self.model),
            "inputs": {k: dict(v) for k, v in self.inputs.items()},
            "device": self.device,
            "threads": self.threads,
            "torch": self.torch,
            "precision": self.precision,
        }

    def to_text(self) -> str:
        # ensure_ascii: a file name that is not valid UTF-8 (lone surrogates) still writes and reads back exactly
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        try:
            settings = Settings.from_json(data["settings"], recorded=True)
            return cls(
                settings,
                dict(data["model"]),
                {k: dict(v) for k, v in (data.get("inputs") or {}).items()},
                str(data.get("device", "cpu")),
                data.get("threads"),
                str(data.get("dreamscope", "")),
                str(data.get("torch", "")),
                data.get("precision"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise DreamscopeError(f"the dreamscope record is incomplete or damaged ({exc.__class__.__name__}: {exc})") from None

    @classmethod
    def from_text(cls, text: str) -> Record:
        try:
            data = json.loads(text)
        except ValueError:
            raise DreamscopeError("the dreamscope record is not valid JSON (damaged metadata)") from None
        return cls.from_json(data)

    def with_files(self, paths: Mapping[str, str | os.PathLike | None], output: str | os.PathLike | None = None) -> Record:
        """The record with each input's file named: its absolute path, its path relative to the output's folder
        (so a project folder moved or cloned elsewhere still finds its inputs) and the digest of its bytes.
        A pipe or device (/dev/stdin) cannot be read again, so it is named by its pixels alone."""
        inputs = {k: dict(v) for k, v in self.inputs.items()}
        for role, path in paths.items():
            if path is None or not lasting_file(path):
                continue
            entry = inputs.setdefault(role, {})
            entry["path"] = os.path.abspath(os.fsdecode(path))
            if output is not None:
                entry["relative"] = os.path.relpath(entry["path"], os.path.dirname(os.path.abspath(os.fsdecode(output))))
            entry["file"] = file_digest(path)
        return replace(self, inputs=inputs)


def lasting_file(path) -> bool:
    """A file that can be read again later: not a pipe, and not a stream such as /dev/stdin (even when the shell
    redirected a file into it)."""
    absolute = os.path.abspath(os.fsdecode(path))
    return os.path.isfile(absolute) and not absolute.startswith(("/dev/", "/proc/"))


def as_ran(settings: Settings) -> Settings:
    """The settings with each default that a property resolves from the others (`RESOLVED`) as it resolved: what a
    record keeps, so a later change of a default cannot change what a redo makes."""
    return replace(settings, **{f: getattr(settings, p) for f, p in settings.RESOLVED.items() if getattr(settings, f) is None})


def make(settings: Settings, model, inputs: Mapping[str, Any] | None = None, precision: str | None = None) -> Record:
    """The record of a run about to start on `model` (a LoadedModel): `inputs` maps roles to PIL images (or None);
    `precision` names the number format the network computes in ("fp32", "bf16"), where the recipe has a choice."""
    import torch

    settings = as_ran(settings)
    described = {
        role: {"pixels": pixels_digest(image), "size": list(image.size)}
        for role, image in (inputs or {}).items()
        if image is not None
    }
    return Record(
        settings,
        {"name": model.source, "weights": model.weights_digest},
        described,
        str(model.device),
        torch.get_num_threads(),
        version(),
        torch.__version__,
        precision,
    )


def read(path: str | os.PathLike) -> Record:
    """The record inside an output dreamscope wrote: a picture, a video, a PNG frames folder or a report folder."""
    path = Path(path)
    if not path.exists():
        raise DreamscopeError(f"file not found: {path} (check the path)")
    metadata = _metadata(path)
    if KEY not in metadata:
        raise DreamscopeError(
            f"{path} carries no dreamscope record: it was not written by dreamscope 0.2 or later, "
            "or its metadata was stripped (some editors and sites remove it)"
        )
    return Record.from_text(metadata[KEY])


def _metadata(path: Path) -> dict[str, str]:
    if path.is_dir():
        if (path / "sheet.png").is_file() and (path / "index.html").is_file():  # a probe report
            return images.read_metadata(path / "sheet.png")
        if (path / "groups.png").is_file() and (path / "explain.json").is_file():  # an explanation
            return images.read_metadata(path / "groups.png")
        if (path / "atlas.png").is_file() and (path / "index.html").is_file():  # an activation atlas
            return images.read_metadata(path / "atlas.png")
        return videos.read_metadata(path)
    if path.suffix.lower() in images.OUTPUT_FORMATS:
        return images.read_metadata(path)
    return videos.read_metadata(path)


def save(image, path: str | os.PathLike) -> Path:
    """Write a picture a recipe returned, atomically, with the record it carries (`image.info["dreamscope"]`)."""
    record = image.info.get(KEY)
    return images.save_image(image, path, metadata={KEY: record} if record else None)
