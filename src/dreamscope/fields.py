"""The settings fields' checks and the parsers for the text settings (layers, channels, units, tiles, sizes).

Each check takes the field's name and value and returns the value in its canonical form, or raises a
SettingsError naming the field. Torch-free, like settings.py, which builds its dataclasses from these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import DreamscopeError, SettingsError, literal

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
PRECISIONS = ("auto", "fp32", "bf16")  # see models/precision.py
VIEWS = ("picture", "padded")  # the size the network sees a robust view at (optvis/transforms.py)


def cropped(side: int, crop: float) -> int:
    """A crop window's side (optvis/transforms.py's ScaleRotate): about `crop` of `side`, less a whole multiple of
    8 px (at least 8 px). Here, torch-free, so settings can check the size a view will have."""
    return side if crop >= 1 else max(8, side - 8 * round((1 - crop) * side / 8))


# -- checks: each takes the field's name and value and returns the value in its canonical form -----------------


@dataclass(frozen=True)
class Whole:
    """A whole number from `low` to `high`; None allowed when `optional`."""

    low: int
    high: int
    optional: bool = False

    def __call__(self, name: str, value):
        if value is None and self.optional:
            return None
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            value = int(value)  # 4.0 from a JSON form is 4
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise SettingsError(name, f"must be a whole number from {self.low} to {_number_text(self.high)}, got {shown(value)}")
        return value


@dataclass(frozen=True)
class Number:
    """A finite number in [low, high] (or above `low` when `above`)."""

    low: float
    high: float
    above: bool = False
    below: bool = False
    optional: bool = False

    def __call__(self, name: str, value):
        if value is None and self.optional:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = (
            ok
            and (value > self.low if self.above else value >= self.low)
            and (value < self.high if self.below else value <= self.high)
        )
        if not ok:
            low = f"above {self.low:g}" if self.above else f"from {self.low:g}"
            high = f"to below {self.high:g}" if self.below else f"{'and at most' if self.above else 'to'} {self.high:g}"
            raise SettingsError(name, f"must be a number {low} {high}, got {shown(value)}")
        return float(value)


@dataclass(frozen=True)
class Flag:
    def __call__(self, name: str, value):
        if not isinstance(value, bool):
            raise SettingsError(name, f"must be true or false, got {shown(value)}")
        return value


@dataclass(frozen=True)
class Choice:
    options: tuple
    optional: bool = False  # None means "decided at run time" (visualize's param)

    def __call__(self, name: str, value):
        if value is None and self.optional:
            return None
        if value not in self.options:
            raise SettingsError(name, f"must be one of {', '.join(map(str, self.options))}, got {shown(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A string (optional: None or empty means not given), put in canonical form by `parse` when given."""

    optional: bool = True
    parse: Any = None

    def __call__(self, name: str, value):
        if value is None or value == "":
            if self.optional:
                return None
            raise SettingsError(name, "is required")
        if self.parse is not None:
            return self.parse(name, value)
        if not isinstance(value, str):
            raise SettingsError(name, f"must be text, got {shown(value)}")
        return value


def shown(value) -> str:
    """A value as a SettingsError's problem quotes it: `excerpt`, with its braces doubled (`literal`)."""
    return literal(excerpt(value))


def excerpt(value) -> str:
    """A value as a message quotes it: at most about 60 characters (a longer one as its first 40 and its length),
    so a huge value is never echoed back."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


def _number_text(value: int) -> str:
    return "2**63-1" if value == MAX_SEED else str(value)


def setting(default, check, help: str = ""):
    """A settings field: its default, its check, and one line of help for forms and docs."""
    return field(default=default, metadata={"check": check, "help": help})


def precision_setting(drawing: bool = False):
    """The network's number format, for every recipe that dreams or draws (a field object cannot serve two classes).
    `drawing`: the recipe's feature visualizations compute in it; what it measures on photos stays float32."""
    if drawing:
        return setting(
            "auto",
            Choice(PRECISIONS),
            "the network's number format while drawing pictures: fp32; bf16, faster on CPUs with AMX or AVX512-BF16 (other "
            "rounding: other pictures, recognized as often); auto: bf16 for the EfficientNet-Lite models on such "
            "CPUs, else fp32",
        )
    return setting(
        "auto",
        Choice(PRECISIONS),
        "the network's number format: fp32; bf16, faster on CPUs with AMX or AVX512-BF16 (other "
        "rounding: another dream, as strong); auto: bf16 for the EfficientNet-Lite "
        "models on such CPUs, else fp32",
    )


# -- parsing the text settings: layers, channels, units, tiles ---------------------------------------------------


def parse_layer_weights(specs) -> list[tuple[str, float]]:
    """'stage4.2' or 'stage4.2=1,stage6.0=0.5' (or a list of such) -> [(layer, weight), ...]."""
    items = [specs] if isinstance(specs, str) else list(specs)
    parsed: list[tuple[str, float]] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            name, _, weight = part.partition("=")
            try:
                value = float(weight) if weight else 1.0
            except ValueError:
                raise DreamscopeError(f"bad layer weight in '{part}'; write NAME or NAME=WEIGHT, e.g. stage6.0=0.5") from None
            if not math.isfinite(value) or not name.strip():
                raise DreamscopeError(
                    f"bad layer weight in '{part}'; write NAME or NAME=WEIGHT with a finite WEIGHT, e.g. stage6.0=0.5"
                )
            parsed.append((name.strip(), value))
    if not parsed:
        raise DreamscopeError("no layer given; name one, e.g. stage4.2 (the model's layers: dreamscope layers)")
    return parsed


def layer_spec(name: str, value) -> str:
    try:
        parsed = parse_layer_weights(value)
    except DreamscopeError:
        raise SettingsError(
            name, f"must be layer names, each NAME or NAME=WEIGHT (e.g. stage6.0=0.5), separated by commas; got {shown(value)}"
        ) from None
    return ",".join(layer if weight == 1.0 else f"{layer}={weight:g}" for layer, weight in parsed)


def name_list(name: str, value) -> str:
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else list(value))]
    if not names or not all(names):
        raise SettingsError(name, f"must be names separated by commas, got {shown(value)}")
    return ",".join(names)


@dataclass(frozen=True)
class ChannelRanking:
    """`strongest:K` / `weakest:K`: the K channels with the largest / smallest mean squared activation."""

    strongest: bool
    count: int


def parse_channels(spec) -> list[int] | ChannelRanking | None:
    """'3,17' -> [3, 17]; 'strongest:10' -> ChannelRanking(True, 10); None or '' -> None (all channels)."""
    if spec is None or spec == "":
        return None
    bad = f"bad channel spec {spec!r}; use indices like 3,17 or strongest:10 or weakest:10"
    if not isinstance(spec, str):
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in spec) or not list(spec):
            raise DreamscopeError(bad)
        return list(dict.fromkeys(int(c) for c in spec))
    text = spec.strip().lower()
    if ":" in text:
        mode, _, count = text.partition(":")
        if mode not in ("strongest", "weakest") or not count.isdigit() or not 1 <= int(count) <= 100_000:
            raise DreamscopeError(bad)
        return ChannelRanking(mode == "strongest", int(count))
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DreamscopeError(bad) from None
    if not channels or any(c < 0 for c in channels):
        raise DreamscopeError(f"bad channel spec {spec!r}; channel indices are whole numbers from 0")
    return list(dict.fromkeys(channels))


def channel_spec(name: str, value) -> str:
    try:
        parsed = parse_channels(value)
    except DreamscopeError:
        raise SettingsError(
            name, f"must be channel indices like 3,17, or strongest:10 or weakest:10; got {shown(value)}"
        ) from None
    if isinstance(parsed, ChannelRanking):
        return f"{'strongest' if parsed.strongest else 'weakest'}:{parsed.count}"
    return ",".join(map(str, parsed))


def parse_unit(spec: str) -> tuple[str, int]:
    """'stage5.2:17' -> ('stage5.2', 17)."""
    layer, sep, index = str(spec).rpartition(":")
    if not sep or not layer.strip() or not index.strip().isdigit():
        raise DreamscopeError(f"bad unit '{spec}'; write LAYER:INDEX, e.g. stage5.2:17")
    return layer.strip(), int(index)


def unit_list(name: str, value) -> str:
    """'stage4.2:17, stage5.2:3' (or a list of such, or of (layer, index) pairs) -> 'stage4.2:17,stage5.2:3'."""
    given = [value] if isinstance(value, str) or not isinstance(value, (list, tuple)) else list(value)
    parts = [
        piece
        for part in given
        for piece in (part.split(",") if isinstance(part, str) else [part])
        if not (isinstance(piece, str) and not piece.strip())
    ]  # a repeated --channel may hold a list too
    units = []
    for part in parts:
        try:
            layer, index = (str(part[0]), part[1]) if isinstance(part, (list, tuple)) and len(part) == 2 else parse_unit(part)
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise DreamscopeError("bad index")
        except DreamscopeError:
            raise SettingsError(
                name, f"must be LAYER:INDEX, e.g. stage4.2:17 (several comma-separated); got {shown(part)}"
            ) from None
        units.append(f"{layer.strip()}:{index}")
    if not units:
        raise SettingsError(name, "is required: which channels, as LAYER:INDEX (e.g. stage4.2:17)")
    return ",".join(dict.fromkeys(units))


def tile_size(name: str, value):
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in ("auto", "off", "none"):
        return "auto" if value.lower() == "auto" else None
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 8192:
        raise SettingsError(name, f"must be 'auto', none (no tiling) or a tile size from 64 to 8192 px, got {shown(value)}")
    return value


def picture_size(name: str, value):
    """A side (int) or (height, width), each from 64 to 2048 px."""
    sides = [value] if not isinstance(value, (list, tuple)) else list(value)
    if len(sides) not in (1, 2) or any(isinstance(s, bool) or not isinstance(s, int) or not 64 <= s <= 2048 for s in sides):
        raise SettingsError(name, f"must be a side (or height and width) from 64 to 2048 px, got {shown(value)}")
    return sides[0] if len(sides) == 1 else tuple(sides)


def parse_ranges(spec: str) -> list[int]:
    """'0-15' or '3,17,40-47' -> the channel indices, sorted, each once."""
    chosen: set[int] = set()
    for part in str(spec).split(","):
        first, dash, last = part.strip().partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise DreamscopeError(f"bad channel range {part.strip()!r}; write indices and ranges, e.g. 0-15 or 3,17,40-47")
        low, high = int(first), int(last) if dash else int(first)
        if high < low or high - low > 100_000:
            raise DreamscopeError(f"bad channel range {part.strip()!r}; a range goes from low to high, e.g. 0-15")
        chosen.update(range(low, high + 1))
    return sorted(chosen)


def channel_ranges(name: str, value) -> str:
    """Channel indices and ranges in canonical form: '17,0-3,2' -> '0-3,17'."""
    try:
        chosen = parse_ranges(value)
    except DreamscopeError:
        raise SettingsError(name, f"must be channel indices and ranges, e.g. 0-15 or 3,17,40-47; got {shown(value)}") from None
    runs, start = [], chosen[0]
    for previous, current in zip(chosen, [*chosen[1:], None]):
        if current != previous + 1:
            runs.append(str(start) if start == previous else f"{start}-{previous}")
            start = current
    return ",".join(runs)


def class_pair(name: str, value):
    """Two different classes as 'A,B' (checked against the model later), or None."""
    if value is None:
        return None
    names = [part.strip() for part in str(value).split(",") if part.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise SettingsError(name, f"must name two different classes as A,B, got {shown(value)}")
    return ",".join(names)


def class_targets(name: str, value):
    """'top:N', or class names or indices and LAYER:CHANNEL units, comma-separated (checked against the model later)."""
    text = str(value).strip()
    if text.lower().startswith("top:"):
        count = text[4:].strip()
        if not count.isdigit() or not 1 <= int(count) <= 20:
            raise SettingsError(name, f"must be top:N with N from 1 to 20, or class names, got {shown(value)}")
        return f"top:{int(count)}"
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or len(names) > 20 or len(set(names)) < len(names):
        raise SettingsError(name, f"must be top:N or 1 to 20 different class names, comma-separated, got {shown(value)}")
    return ",".join(names)
