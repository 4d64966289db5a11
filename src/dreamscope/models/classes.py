"""The 1000 ImageNet class names (a data file shipped with the package) and lookup by name or index."""

from __future__ import annotations

import functools
from importlib import resources

from ..errors import DreamscopeError, suggest


@functools.lru_cache(maxsize=1)
def _table() -> tuple[list[str], dict[str, int]]:
    labels: list[str] = []
    lookup: dict[str, int] = {}
    aliases: list[tuple[str, int]] = []
    text = resources.files(__package__).joinpath("data/imagenet_classes.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        index, label, extra = (line.split("\t") + [""])[:3]
        labels.append(label)
        lookup.setdefault(label.lower(), int(index))
        aliases += [(alias.lower(), int(index)) for alias in extra.split("|") if alias]
    for alias, index in aliases:  # a class's own label wins over another class's alias
        lookup.setdefault(alias, index)
    return labels, lookup


def imagenet_labels() -> list[str]:
    return list(_table()[0])


def imagenet_label(index: int) -> str:
    return _table()[0][index]


def resolve_class(name_or_index: str | int) -> int:
    """Class index from a name ("espresso", "egyptian cat", case-insensitive, WordNet synonyms too) or an index."""
    labels, lookup = _table()
    text = str(name_or_index).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(labels):
            raise DreamscopeError(f"class index {index} is out of range; ImageNet classes are 0 to {len(labels) - 1}")
        return index
    if text.lower() in lookup:
        return lookup[text.lower()]
    raise DreamscopeError(f"unknown class '{text}'{suggest(text, labels)}; give an ImageNet class name or an index 0-999")
