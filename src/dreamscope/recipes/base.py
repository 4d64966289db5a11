"""What every recipe does first: settle its settings and its network, and know every random choice's seed."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import torch

from ..models import LoadedModel, load_model
from ..settings import Settings


def prepare(cls: type[Settings], settings: Settings | None, fields: Mapping[str, Any], model, device) -> tuple[Any, LoadedModel]:
    """The recipe's checked settings and its network.

    `model` is a name (or None: the settings' own) loaded on `device`, or a LoadedModel used as it is, whose
    name then goes into the settings so the provenance record names the network that really ran.
    """
    fields = dict(fields)
    if isinstance(model, str):
        fields["model"] = model
    elif model is not None and not isinstance(model, LoadedModel):
        raise TypeError(f"model must be a name or a LoadedModel (dreamscope.load_model or wrap_model), got {type(model).__name__}")
    settings = cls.build(settings, fields)
    if isinstance(model, LoadedModel):
        if settings.model != model.source:
            settings = settings.replace(model=model.source)
        return settings, model
    return settings, load_model(settings.model, device, weights=settings.weights)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def generator_for(seed: int, *names) -> torch.Generator:
    """A generator seeded by the seed and names (a picture's path, a view): the same item draws the same numbers
    in any batch, shard or order, and different items draw independently."""
    text = ":".join(map(str, (seed, *names)))
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
