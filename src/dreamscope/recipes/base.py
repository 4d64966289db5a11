"""What every recipe does first: settle its settings and its network, and know every random choice's seed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import DreamscopeError, SettingsError, UnknownName, literal, suggest
from ..models import IMAGE, LOGITS, LayerInfo, LoadedModel, load_model
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
        raise TypeError(
            f"model must be a name or a LoadedModel (dreamscope.load_model or wrap_model), got {type(model).__name__}"
        )
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


# -- checks that name the field: what a recipe's `check` uses (the CLI shows flags, the studio form fields) ---------


def known_layer(model: LoadedModel, field: str, name: str, *, pseudo: bool = False) -> LayerInfo:
    """The model's layer `name`, for setting `field`; refused, with the closest names, when the model has no such
    dreamable layer. `pseudo` also accepts "image" and "logits" (a diversity or comparison layer may be either)."""
    if name not in model.layers and not (pseudo and name in (IMAGE, LOGITS)) and not model.is_class_token(name):
        why = f" ({model.not_dreamable[name]})" if name in model.not_dreamable else ""
        raise UnknownName(
            field,
            literal(f"names {name!r}, which is not a layer of {model.name}{why}{suggest(name, model.layers)}"),
        )
    return model.layer(name)


def known_class(model: LoadedModel, field: str, name: str | int) -> int:
    """The class index `name` (a name, alias or index) gives in `model`, for setting `field`; refused with why."""
    try:
        return model.resolve_class(name)
    except SettingsError:
        raise
    except DreamscopeError as exc:
        why = str(exc).replace(f"unknown class '{str(name).strip()}'", "no such class")
        raise UnknownName(field, literal(f"cannot be {str(name)!r}: {why}")) from None


def known_channels(model: LoadedModel, field: str, layer: str, channels) -> None:
    """Refuse channel indices the layer does not have."""
    count = model.layer(layer).channels
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise UnknownName(field, f"names channel {bad[0]} of {layer}, which has channels 0-{count - 1}")
