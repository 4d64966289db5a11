"""Settings as data: one frozen dataclass per recipe, holding the library's defaults, validated in one place.

A studio job, a provenance record inside a picture and a cluster task are all the JSON of one of these
(`to_json` / `from_json` round-trip exactly). Errors name the field ("octaves must be a whole number from 1 to
50, got 0"); front ends word fields their own way (`SettingsError.worded`). A setting that does not apply to a
recipe is not one of its fields, so giving it is refused, never ignored.

Torch-free on purpose: front ends build and check settings before loading anything heavy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import DreamscopeError, SettingsError, literal, suggest
from .fields import (  # noqa: F401 - the checks and parsers are part of this module's API
    MAX_SEED,
    PRECISIONS,
    VIEWS,
    ChannelRanking,
    Choice,
    Flag,
    Number,
    Text,
    Whole,
    channel_ranges,
    channel_spec,
    class_pair,
    class_targets,
    cropped,
    layer_spec,
    name_list,
    parse_channels,
    parse_layer_weights,
    parse_unit,
    picture_size,
    precision_setting,
    setting,
    shown,
    tile_size,
    unit_list,
)

DEFAULT_MODEL = "efficientnet-lite0"


# -- the settings classes ------------------------------------------------------------------------------------------


RECIPES: dict[str, type[Settings]] = {}  # recipe name -> its settings class: every subclass that names a recipe


@dataclass(frozen=True)
class Settings:
    """Fields shared by every recipe: the network and the seed. A subclass that names its `recipe` is the settings
    of that recipe (`settings_class`, `from_json`); the recipe itself is registered in `work/catalogue.py`."""

    recipe: ClassVar[str] = ""
    # Values of fields added after records were first written: what a record without them ran with.
    BEFORE: ClassVar[dict] = {}
    # Fields whose default (None) a property resolves (field -> property): a record keeps what ran (`provenance.make`).
    RESOLVED: ClassVar[dict] = {}

    def __init_subclass__(cls, **options):
        super().__init_subclass__(**options)
        if cls.__dict__.get("recipe"):
            RECIPES[cls.recipe] = cls

    model: str = setting(
        DEFAULT_MODEL, Text(optional=False), "network (see: dreamscope models), or your own as package.module:factory"
    )
    weights: str | None = setting(
        None, Text(), "weights file to use: a .caffemodel or state dict for googlenet, a state dict otherwise"
    )
    seed: int = setting(
        0, Whole(0, MAX_SEED), "the same input, settings and seed give identical output bytes on the same machine"
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Rules between fields; subclasses add theirs."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def build(cls, settings: Settings | None = None, changes: Mapping[str, Any] | None = None):
        """`settings` (or the defaults) with `changes` applied; names that are not settings of this recipe are refused."""
        if settings is not None and not isinstance(settings, cls):
            raise DreamscopeError(f"expected {cls.__name__} for {cls.recipe}, got {type(settings).__name__}")
        changes = dict(changes or {})
        cls._refuse_unknown(changes)
        return dataclasses.replace(settings, **changes) if settings is not None else cls(**changes)

    def replace(self, **changes):
        return type(self).build(self, changes)

    @classmethod
    def _refuse_unknown(cls, names) -> None:
        known = cls.field_names()
        for name in names:
            if name not in known:
                raise SettingsError(name, f"is not a setting of {cls.recipe}{suggest(name, known)}")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"recipe": self.recipe}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], recorded: bool = False):
        """Settings from their JSON object; with the base class, the recipe named in it picks the class. `recorded`:
        the object comes from an output's record, where a field it lacks did not exist yet (`BEFORE`)."""
        if not isinstance(data, Mapping):
            raise DreamscopeError(f"settings must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        recipe = data.pop("recipe", cls.recipe or None)
        target = settings_class(recipe) if cls is Settings else cls
        if recipe is not None and recipe != target.recipe:
            raise SettingsError("recipe", f"is {literal(recipe)!r}, but these settings are for {target.recipe}")
        if recorded:
            data = {**target.BEFORE, **data}
        return target.build(None, data)

    def changed(self) -> dict[str, Any]:
        """The fields whose value is not the default, in field order."""
        defaults = self.defaults()
        return {name: value for name, value in self.to_json().items() if name != "recipe" and value != _json(defaults[name])}


def _json(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DreamSettings(Settings):
    """DeepDream a photo: amplify what chosen layers see, octave by octave."""

    recipe: ClassVar[str] = "dream"

    layer: str | None = setting(
        None, Text(parse=layer_spec), "layer(s) to amplify; repeat or comma-separate to mix: stage3.1,stage6.0=0.5"
    )
    channels: str | None = setting(
        None,
        Text(parse=channel_spec),
        "only some channels: 3,17, or strongest:10 / weakest:10 (ranked by their response to this photo)",
    )
    octaves: int = setting(4, Whole(1, 50), "pyramid levels; the dream starts small and carries its detail up")
    octave_scale: float = setting(1.4, Number(1.0, 4.0), "size ratio between pyramid levels")
    steps: int = setting(10, Whole(1, 10_000), "ascent steps per octave")
    step_size: float = setting(
        0.015,
        Number(0.0, 1.0, above=True),
        "step, as a fraction of the colour range, after normalizing the gradient by its mean magnitude",
    )
    jitter: int = setting(32, Whole(0, 1024), "random shift each step, in px (prevents grid artefacts)")
    max_size: int | None = setting(
        None, Whole(32, 16_384, optional=True), "downscale the input first so its longest side is at most this"
    )
    tile: int | str | None = setting(
        "auto",
        tile_size,
        "process big pictures in tiles so memory stays bounded: auto uses 384 px tiles "
        "for octaves over a megapixel (a 4K photo dreams in about 2 GiB), PX tiles "
        "anything larger, off never tiles",
    )
    precision: str = precision_setting()


@dataclass(frozen=True)
class VisualizeSettings(Settings):
    """Grow pictures from noise that maximize a class, a channel, a neuron, or each of a layer's channels."""

    recipe: ClassVar[str] = "visualize"
    KINDS: ClassVar[tuple] = ("class", "channel", "neuron", "channels")

    kind: str = setting("class", Choice(KINDS), "what to maximize: class, channel, neuron or channels (a layer's sheet)")
    target: str | None = setting(None, Text(), "class name or index; LAYER:INDEX for a channel or neuron; LAYER for channels")
    grid: int | None = setting(None, Whole(1, 64, optional=True), "how many of the layer's channels, for a channel sheet")
    samples: int = setting(1, Whole(1, 64), "how many different pictures of the target")
    diversity: float = setting(0.0, Number(0.0, 100.0), "reward the samples for differing in style (try 1)")
    diversity_layer: str | None = setting(None, Text(), "layer whose style diversity compares (default: the model's)")
    size: int | tuple = setting(224, picture_size, "picture side in px; other sizes (512, ...) work")
    steps: int = setting(150, Whole(1, 10_000), "optimization steps (at most, where --confidence ends a class picture early)")
    learning_rate: float | None = setting(
        None, Number(0.0, 10.0, above=True, optional=True), "Adam's step (default: 0.1, 0.05 for plain pixels)"
    )
    param: str | None = setting(
        None,
        Choice(("fft", "maco", "pixels"), optional=True),
        "fft: 1/f spectrum, all learned; maco: photos' magnitude spectrum, learned phase; pixels: "
        "plain (default: fft, or maco with --accentuate, which then keeps the photo's spectrum)",
    )
    decay: float = setting(
        1.25,
        Number(0.0, 4.0),
        "fft only: the picture's spectrum falls as 1/frequency^decay; higher draws fewer fine details and larger "
        "shapes (1: Lucid's, the default before 1.25)",
    )
    robust: bool = setting(True, Flag(), "random pad, shift, zoom and rotate every step")
    view: str = setting(
        "picture",
        Choice(VIEWS),
        "the size the network sees each robust view at: picture (its own size; faster) or padded (with the pad's "
        "border, as before 2026-12-07)",
    )
    views: int | None = setting(
        None,
        Whole(1, 16, optional=True),
        "random views of each picture the network sees every step, averaged (default: 2 for one robust picture or "
        "a class's samples, else 1); more name the class more often and cost more time",
    )
    crop: float | None = setting(
        None,
        Number(0.2, 1.0, optional=True),
        "each robust view's side as a fraction of the picture's: random crops at its scale, each of which must "
        "show the target (default: 0.6 for one robust picture or a class's samples, else 1: the whole picture)",
    )
    confidence: float | None = setting(
        None,
        Number(0.0, 1.0, optional=True),
        "end a class picture early once the network's probability for the class on every view, averaged over the last "
        "20 steps, reaches this (after at least 60); 0 runs every step (default: 0.99 for one robust class picture, "
        "else 0)",
    )
    skip_gradient: float | None = setting(
        None,
        Number(0.0, 1.0, above=True, optional=True),
        "scale the ascent's gradient through each residual block's branch by this, so it leans on the skip "
        "connections: class pictures another network names more often (default: 0.5 for one robust class picture on "
        "a network with residual blocks, else 1, the true gradient)",
    )
    transparency: bool = setting(
        False, Flag(), "fade to white where the objective's gradient was weakest (MaCo's attribution map; with --param maco)"
    )
    accentuate: bool = setting(
        False,
        Flag(),
        "strengthen the target in the --init photo while holding the picture close "
        "to it in an early layer (feature accentuation); --size is then the longer "
        "side, the photo keeps its shape",
    )
    closeness: float = setting(20.0, Number(0.0, 10_000.0), "how strongly --accentuate holds the picture to the photo")
    closeness_layer: str | None = setting(
        None, Text(), "the layer where --accentuate compares picture and photo (default: the deepest at stride 8 or less)"
    )
    precision: str = precision_setting(drawing=True)

    def check(self) -> None:
        if self.target is None:
            raise SettingsError("target", "is required: what to maximize (a class name, or LAYER:INDEX, or a LAYER)")
        if self.kind in ("channel", "neuron"):
            try:
                parse_unit(self.target)
            except DreamscopeError:
                raise SettingsError("target", f"must be LAYER:INDEX, e.g. stage5.2:17; got {shown(self.target)}") from None
        if self.kind == "channels":
            if self.samples != 1:
                raise SettingsError("samples", "does not apply to a layer's channel sheet, which has one picture per channel")
            if self.diversity:
                raise SettingsError("diversity", "does not apply to a layer's channel sheet")
        elif self.grid is not None:
            raise SettingsError("grid", "applies only to a layer's channel sheet")
        if (self.views or 1) > 1 and not (self.robust and not self.accentuate):
            raise SettingsError("views", "averages random robust views of the pictures: it needs robust on and no accentuate")
        if self.confidence and not self.one_class_picture:
            why = "watches the network's probability for the class of one robust class picture: it needs kind class, samples 1,"
            raise SettingsError("confidence", why + " no accentuate and robust on (or 0)")
        if self.crop is not None and self.crop < 1 and not self.robust:  # 1, the whole picture, is what runs without
            raise SettingsError("crop", "crops the robust views: it needs robust on")
        sides = (self.size, self.size) if isinstance(self.size, int) else self.size
        if self.robust and min(cropped(side, self.crop_fraction) for side in sides) < 32:
            raise SettingsError("crop", f"leaves views under 32 px at size {shown(self.size)}: raise it, or the size")
        if self.transparency and self.parameterization != "maco":
            raise SettingsError("transparency", "needs the maco parameterization, which records where the gradient went")
        if self.accentuate and self.samples != 1:
            raise SettingsError("samples", "must be 1 with accentuate: one photo gives one accentuated picture")
        if self.accentuate and self.kind == "channels":
            raise SettingsError("accentuate", "applies to a class, channel or neuron, not a layer's channel sheet")

    # Before `decay`: Lucid's 1/f; `view`: padded views; `views`, `crop`: one whole view; `confidence`: every step ran;
    # `skip_gradient`: the true gradient.
    BEFORE: ClassVar[dict] = {"decay": 1.0, "view": "padded", "views": 1, "crop": 1.0, "confidence": 0.0, "skip_gradient": 1.0}
    RESOLVED: ClassVar = dict(
        views="view_count",
        crop="crop_fraction",
        confidence="stop_confidence",
        param="parameterization",
        skip_gradient="branch_gradient",
    )

    @property
    def one_picture(self) -> bool:
        """One picture drawn through robust views (not samples, a sheet or an accentuated photo)."""
        return self.count == 1 and self.robust and not self.accentuate

    @property
    def through_crops(self) -> bool:
        """Two random crops a step by default: one robust picture, or a class's samples (docs/benchmarks.md)."""
        return self.robust and not self.accentuate and (self.count == 1 or self.kind == "class")

    @property
    def view_count(self) -> int:
        """The views a step that run: `views`, or by default 2 `through_crops` (docs/benchmarks.md), else 1."""
        return self.views if self.views is not None else (2 if self.through_crops else 1)

    @property
    def crop_fraction(self) -> float:
        """The views' side over the picture's that runs: `crop`, or by default 0.6 `through_crops`, else 1."""
        return self.crop if self.crop is not None else (0.6 if self.through_crops else 1.0)

    @property
    def one_class_picture(self) -> bool:
        """One picture of a class through robust views: what `confidence` watches the class's probability on."""
        return self.kind == "class" and self.one_picture

    @property
    def stop_confidence(self) -> float:
        """The class probability that ends the run early (0: never): `confidence`, or by default 0.99 for one robust
        class picture (docs/benchmarks.md)."""
        if self.confidence is not None:
            return self.confidence
        return 0.99 if self.one_class_picture else 0.0

    @property
    def branch_gradient(self) -> float:
        """The scale of the gradient through residual branches (1: the true gradient): `skip_gradient`, or by default
        0.5 for one robust class picture (docs/benchmarks.md); a network without residual blocks ignores it."""
        if self.skip_gradient is not None:
            return self.skip_gradient
        return 0.5 if self.one_class_picture else 1.0

    @property
    def parameterization(self) -> str:
        """The image parameterization that runs: `param`, or by default fft (maco when accentuating a photo: its
        own magnitude spectrum kept, only the phases move, so the picture keeps the photo's colour and contrast)."""
        return self.param or ("maco" if self.accentuate else "fft")

    @property
    def count(self) -> int:
        """How many pictures: the samples, or the channels of a sheet."""
        return (self.grid or 16) if self.kind == "channels" else self.samples


@dataclass(frozen=True)
class ZoomSettings(DreamSettings):
    """The endless zoom: dream, zoom and turn a little about the centre, dream again."""

    recipe: ClassVar[str] = "zoom"

    octaves: int = setting(2, Whole(1, 50), "pyramid levels per frame")
    steps: int = setting(5, Whole(1, 10_000), "ascent steps per octave, per frame")
    frames: int = setting(120, Whole(1, 100_000), "frames in the result")
    zoom: float = setting(1.04, Number(0.5, 2.0), "magnification per frame (below 1 zooms out)")
    rotate: float = setting(0.0, Number(-45.0, 45.0), "degrees to turn per frame")
    fps: float = setting(24.0, Number(0.1, 240.0), "frames per second of the video")
    layers: str | None = setting(None, Text(parse=name_list), "cycle through these layers (A,B,C)")
    every: int | None = setting(None, Whole(1, 100_000, optional=True), "frames per layer of the cycle")

    def check(self) -> None:
        if self.layers and self.layer:
            raise SettingsError("layers", "cycles layers; give it or {layer}, not both")
        if self.every is not None and not self.layers:
            raise SettingsError("every", "goes with {layers} (a layer cycle)")


@dataclass(frozen=True)
class MorphSettings(Settings):
    """A feature visualization whose class glides from class to class, one frame at a time."""

    recipe: ClassVar[str] = "morph"

    classes: str | None = setting(None, Text(parse=name_list), "classes to pass through, in order: A,B[,C...]")
    frames: int = setting(120, Whole(1, 100_000), "frames in the result")
    size: int | tuple = setting(224, picture_size, "picture side in px; other sizes (512, ...) work")
    steps: int = setting(15, Whole(1, 10_000), "Adam steps per frame")
    warmup: int = setting(300, Whole(0, 100_000), "Adam steps before the first frame, so the first class is clear")
    learning_rate: float = setting(0.05, Number(0.0, 10.0, above=True), "Adam's step")
    fps: float = setting(24.0, Number(0.1, 240.0), "frames per second of the video")
    precision: str = precision_setting(drawing=True)
    score: bool = setting(
        False,
        Flag(),
        "judge every frame with a held-out network (efficientnet-lite2): its probability of each class along the "
        "morph, and whether it names the last class on the last frame, its mirror and a centre crop",
    )

    def check(self) -> None:
        if self.classes is None or len(self.classes.split(",")) < 2:
            raise SettingsError(
                "classes", f"must name at least two classes, comma-separated (e.g. banana,starfish), got {shown(self.classes)}"
            )


CARRIES = ("detail", "pixels")  # what a video carries along the flow (recipes/flow.py)


@dataclass(frozen=True)
class VideoSettings(DreamSettings):
    """Dream every frame of a video, each starting from the previous dream carried along the optical flow."""

    recipe: ClassVar[str] = "video"

    octaves: int = setting(2, Whole(1, 50), "pyramid levels per frame")
    steps: int = setting(5, Whole(1, 10_000), "ascent steps per octave for the first frame")
    frame_steps: int = setting(
        2, Whole(1, 10_000), "ascent steps per octave for later frames, which start from the carried dream"
    )
    carry: str = setting(
        "detail",
        Choice(CARRIES),
        "what follows the motion into the next frame: the dream's detail (steady), or its pixels (the old way, flickers more)",
    )
    blend: float | None = setting(
        None,
        Number(0.0, 1.0, below=True, optional=True),
        "share of the previous dream carried into each frame; 0: frames on their own (default: 0.99 of the detail, "
        "0.8 with --carry pixels)",
    )
    refresh: float = setting(
        0.05,
        Number(0.0, 1.0),
        "where the dream was carried, each later step is this share of a full one; new parts get full steps",
    )

    # Records made before `carry` existed moved the pixels.
    BEFORE: ClassVar[dict] = {"carry": "pixels"}

    @property
    def carried_share(self) -> float:
        """`blend`, or its default for the way the dream is carried."""
        return self.blend if self.blend is not None else {"detail": 0.99, "pixels": 0.8}[self.carry]


@dataclass(frozen=True)
class LiveSettings(Settings):
    """Dream a camera as it comes: each frame starts from the last dream carried along the motion and takes a step
    or two, so the dream builds up while the scene holds still and follows whoever moves."""

    recipe: ClassVar[str] = "live"

    layer: str | None = setting(
        None, Text(parse=layer_spec), "layer(s) to amplify; repeat or comma-separate to mix: stage3.1,stage6.0=0.5"
    )
    channels: str | None = setting(
        None,
        Text(parse=channel_spec),
        "only some channels: 3,17, or strongest:10 / weakest:10 (ranked by their response to the first frame)",
    )
    step_size: float = setting(
        0.03, Number(0.0, 1.0, above=True), "strength: each step's change, as a fraction of the colour range"
    )
    steps: int = setting(1, Whole(1, 20), "ascent steps per camera frame: more build the dream faster and lower the frame rate")
    size: int = setting(320, Whole(64, 1920), "longest side of the dreamed frames, in px (the camera's frames are scaled to it)")
    blend: float = setting(
        0.9,
        Number(0.0, 1.0, below=True),
        "share of the last dream, carried along the motion, in each frame's start: higher builds a stronger, "
        "steadier dream; 0 dreams every frame on its own",
    )
    jitter: int = setting(16, Whole(0, 1024), "random shift each step, in px (prevents grid artefacts)")
    precision: str = precision_setting()


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """What each layer sees in a photo: dreams shallow to deep, the strongest channels, the top classes."""

    recipe: ClassVar[str] = "probe"

    layers: str | None = setting(None, Text(parse=name_list), "layers to probe, shown shallow to deep whatever the order given")
    channels: int = setting(4, Whole(0, 64), "strongest channels shown per layer; 0 for none")
    octaves: int = setting(4, Whole(1, 50), "pyramid levels of each dream")
    octave_scale: float = setting(1.4, Number(1.0, 4.0), "size ratio between pyramid levels")
    steps: int = setting(10, Whole(1, 10_000), "ascent steps per octave")
    step_size: float = setting(
        0.015,
        Number(0.0, 1.0, above=True),
        "step, as a fraction of the colour range, after normalizing the gradient by its mean magnitude",
    )
    jitter: int = setting(32, Whole(0, 1024), "random shift each step, in px (prevents grid artefacts)")
    max_size: int | None = setting(
        512, Whole(32, 16_384, optional=True), "downscale the photo first so its longest side is at most this"
    )
    precision: str = precision_setting()
    vis_size: int = setting(128, Whole(64, 2048), "side of the channels' pictures")
    vis_steps: int = setting(128, Whole(1, 10_000), "optimization steps of the channels' pictures")
    exemplar_folder: str | None = setting(
        None, Text(), "folder of pictures (searched recursively) in which to find each shown channel's natural exemplars"
    )
    exemplar_count: int = setting(4, Whole(1, 16), "natural exemplars per channel, each from a different picture of the folder")

    def check(self) -> None:
        if self.exemplar_folder is not None and not self.channels:
            raise SettingsError(
                "exemplar_folder", "finds pictures for the strongest channels, but {channels} is 0: show some channels"
            )


@dataclass(frozen=True)
class ExemplarsSettings(Settings):
    """The pictures of a folder that excite chosen channels most: natural exemplars, cut where each channel fires."""

    recipe: ClassVar[str] = "exemplars"

    units: str | None = setting(None, Text(parse=unit_list), "channels as LAYER:INDEX, e.g. stage4.2:17; several comma-separated")
    count: int = setting(8, Whole(1, 64), "exemplars per channel, each from a different picture")
    side: int | None = setting(
        None,
        Whole(64, 2048, optional=True),
        "side the pictures are seen at: scaled, then their centre square (default: the model's resolution)",
    )
    vis_size: int = setting(128, Whole(64, 2048), "side of the channels' feature visualizations on the sheet")
    vis_steps: int = setting(128, Whole(1, 10_000), "optimization steps of the channels' feature visualizations")
    precision: str = precision_setting(drawing=True)

    def check(self) -> None:
        if self.units is None:
            raise SettingsError("units", "is required: which channels, as LAYER:INDEX (e.g. stage4.2:17)")


@dataclass(frozen=True)
class ClassifySettings(Settings):
    """The network's top classes for a picture."""

    recipe: ClassVar[str] = "classify"

    top: int = setting(5, Whole(1, 100_000), "how many classes")


@dataclass(frozen=True)
class AtlasSettings(Settings):
    """An activation atlas of a folder of pictures: a layer's activations laid out in 2-D, one icon per cell."""

    recipe: ClassVar[str] = "atlas"
    # The settings that lay the vectors out and draw them, not those that collect them (a shard's collection ignores them).
    LAYOUT_ONLY: ClassVar[tuple] = (
        "grid",
        "min_count",
        "class_name",
        "compare",
        "keep",
        "icon_size",
        "icon_steps",
        "precision",
        "neighbours",
        "exemplars_per_cell",
    )

    layer: str | None = setting(None, Text(), "layer to map (default: the model's default dream layer)")
    grid: int = setting(20, Whole(2, 200), "cells across and down the atlas")
    positions: int = setting(10, Whole(1, 4096), "activation vectors taken from each picture, at random positions (seeded)")
    side: int | None = setting(
        None,
        Whole(32, 2048, optional=True),
        "side the pictures are seen at: scaled, then their centre square (default: the model's resolution)",
    )
    min_count: int = setting(3, Whole(1, 10_000_000), "a cell with fewer vectors than this stays empty")
    class_name: str | None = setting(
        None, Text(), "a class atlas: only the vectors that push toward this class, drawn by strength"
    )
    compare: str | None = setting(
        None, Text(parse=class_pair), "two classes A,B side by side, marking the features that separate them"
    )
    keep: float = setting(
        0.05, Number(0.0, 1.0, above=True), "share of all vectors a class atlas keeps: those that push hardest toward the class"
    )
    icon_size: int = setting(80, Whole(32, 512), "side of each cell's feature visualization, in px")
    icon_steps: int = setting(160, Whole(1, 10_000), "optimization steps of the icons")
    precision: str = precision_setting(drawing=True)
    neighbours: int = setting(15, Whole(2, 200), "UMAP's n_neighbors: larger keeps more of the global structure")
    exemplars_per_cell: int = setting(6, Whole(0, 50), "natural patches shown per cell")

    def check(self) -> None:
        if self.class_name is not None and self.compare is not None:
            raise SettingsError("compare", "cannot be combined with a class atlas (class_name); give one of them")


@dataclass(frozen=True)
class PatchSettings(Settings):
    """The patch experiment: paste a feature's icon into photos of one class; how often does the top class flip?"""

    recipe: ClassVar[str] = "patch"

    from_class: str | None = setting(None, Text(), "the class of the photos (only views the network calls this count)")
    to_class: str | None = setting(None, Text(), "the class the patch should tip them into")
    size: float = setting(0.3, Number(0.02, 1.0), "patch side, as a share of the picture's side")
    place: str = setting(
        "random",
        Choice(("random", "corner", "centre")),
        "where the patch goes: random (seeded, the same place for every patch of one trial), a corner or the centre",
    )
    views: int = setting(1, Whole(1, 1000), "views of each photo: 1 is the photo; more adds random crops and mirror images of it")
    side: int | None = setting(
        None, Whole(32, 2048, optional=True), "side the pictures are seen at (default: the model's resolution)"
    )

    def check(self) -> None:
        for name in ("from_class", "to_class"):
            if getattr(self, name) is None:
                raise SettingsError(name, "is required")
        if self.from_class == self.to_class:
            raise SettingsError("to_class", "must differ from from_class")


@dataclass(frozen=True)
class MicroscopeSettings(Settings):
    """Every channel of a network's layers drawn by feature visualization, as a browsable website."""

    recipe: ClassVar[str] = "microscope"

    layers: str | None = setting(None, Text(parse=name_list), "layers to draw, comma-separated (default: every dreamable layer)")
    channels: str | None = setting(
        None,
        Text(parse=channel_ranges),
        "channels of each layer to draw, as indices and ranges, e.g. 0-15 or 3,17,40-47 (default: all)",
    )
    size: int = setting(128, Whole(64, 1024), "side of each channel's picture, in px")
    # 64 steps at 0.1 against 128 at 0.05: 0.48x the time a block, every channel's strongest picture still its own,
    # activations 0.84-0.97 of the longer run's (docs/benchmarks.md, "How long a full microscope takes")
    steps: int = setting(64, Whole(1, 10_000), "optimization steps of every picture")
    learning_rate: float = setting(0.1, Number(0.0, 10.0, above=True), "Adam's step")
    samples: int = setting(3, Whole(0, 16), "diverse samples per channel, beside its main picture")
    diversity: float = setting(
        100.0,
        Number(0.0, 1000.0),
        "how hard a channel's samples are pushed apart in style (Lucid's 100; at 1 they come out alike)",
    )
    block: int = setting(16, Whole(1, 256), "channels drawn together in one batch (one work item); part of what makes a picture")
    precision: str = precision_setting(drawing=True)
    top: int = setting(5, Whole(0, 100), "classes listed per channel: those its increase pushes up most")
    exemplar_folder: str | None = setting(
        None, Text(), "folder of pictures (searched recursively) in which to find each channel's natural exemplars"
    )
    exemplar_count: int = setting(6, Whole(1, 32), "natural exemplars per channel, each from a different picture")
    side: int | None = setting(
        None, Whole(32, 2048, optional=True), "side the exemplar pictures are seen at (default: the model's resolution)"
    )


@dataclass(frozen=True)
class ExplainSettings(Settings):
    """One photo explained at one layer: what each position sees, the neuron groups, and how each pushes the classes."""

    recipe: ClassVar[str] = "explain"

    layer: str | None = setting(None, Text(), "layer to explain (default: the model's default dream layer)")
    groups: int = setting(6, Whole(1, 32), "neuron groups: the rank of the factorization of the layer's activations")
    targets: str = setting(
        "top:3",
        Text(optional=False, parse=class_targets),
        "what to attribute to: top:N (the network's N top classes), or class names, indices or LAYER:CHANNEL units, "
        "comma-separated",
    )
    attribution: str = setting(
        "integrated",
        Choice(("integrated", "gradient")),
        "integrated gradients of each target from a zero activation (ranks the groups as occlusion does: Spearman "
        "0.33 on 20 photos), or activation x gradient (0.17; one pass instead of one per point of the path)",
    )
    integrated_steps: int = setting(24, Whole(2, 512), "points on the path of integrated gradients")
    lower_layer: str | None = setting(
        None,
        Text(),
        "a shallower layer whose groups feed this layer's in the flow diagram (default: the last layer at half the "
        "stride; none to leave it out)",
    )
    microscope: str | None = setting(
        None, Text(), "a microscope site of the same model: the channels' pictures come from it instead of being drawn"
    )
    size: int = setting(224, Whole(32, 2048), "longest side of the photo as the network sees it, in px")
    cell_size: int = setting(64, Whole(32, 256), "side of each grid cell's picture, in px")
    channel_size: int = setting(96, Whole(32, 512), "side of the channels' pictures (the semantic dictionary), in px")
    top_channels: int = setting(3, Whole(1, 16), "strongest channels shown for each position")
    steps: int = setting(128, Whole(1, 10_000), "optimization steps of every picture (cells, groups, channels)")
    precision: str = precision_setting(drawing=True)


def settings_class(recipe: str | None) -> type[Settings]:
    if recipe not in RECIPES:
        raise SettingsError("recipe", f"must be one of {', '.join(RECIPES)}, got {shown(recipe)}")
    return RECIPES[recipe]
