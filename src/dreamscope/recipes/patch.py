"""The patch experiment of the activation atlas paper: a feature that an atlas says separates class B from class
A, pasted as a small picture into photos of A, should tip the network into calling them B.

Each trial is one view of a photo that the network calls A (top-1) before anything is pasted. The same place
receives, in turn, the icon and each control: a patch of noise of the same size, and optionally another
picture (an unrelated icon). A trial "flips" for a patch when the network's top-1 becomes B. The flip rates,
side by side, say whether the feature itself does the work or any patch there would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image, ImageOps

from .. import imaging
from ..errors import DreamscopeError
from ..events import Event, Run, Stage, finish
from ..io import folders, images
from ..models import LoadedModel
from ..settings import PatchSettings
from . import base
from .classify import class_probabilities

NOISE = "noise"
SMALLEST_CROP = 0.6  # a random view keeps at least this share of the photo's shorter side


@dataclass
class Trial:
    file: str
    view: int  # 0: the photo's centre square; more: random crops and mirror images
    box: tuple[int, int, int, int]  # where the patches went, in the view
    before: float  # probability of the photo's class before pasting
    after: dict[str, tuple[str, float]] = field(default_factory=dict)  # patch -> (top-1 class after, probability of B)


@dataclass
class PatchResult:
    settings: PatchSettings
    from_label: str
    to_label: str
    patches: list[str]  # "icon", then the controls
    trials: list[Trial]
    views: int  # views tried; only those the network called A became trials
    skipped: list[tuple[str, str]]
    examples: dict[str, Image.Image]  # the first trial's view with each patch pasted
    icon_name: str = "icon"  # what the icon is (a cell of an atlas, a file), for tables and captions

    def label(self, patch: str) -> str:
        """How tables and captions name a patch: the icon, or a control."""
        if patch == "icon":
            return f"{self.icon_name} (the icon)"
        return "noise (control)" if patch == NOISE else f"{patch} (control)"

    def flips(self, patch: str) -> int:
        return sum(trial.after[patch][0] == self.to_label for trial in self.trials)

    def flip_rate(self, patch: str) -> float:
        return self.flips(patch) / max(1, len(self.trials))

    def mean_probability(self, patch: str) -> float:
        return sum(trial.after[patch][1] for trial in self.trials) / max(1, len(self.trials))

    def kept(self, patch: str) -> int:
        """Trials still called A after the patch."""
        return sum(trial.after[patch][0] == self.from_label for trial in self.trials)

    def table(self) -> list[dict]:
        return [
            {
                "patch": name,
                "trials": len(self.trials),
                "flips": self.flips(name),
                "flip_rate": round(self.flip_rate(name), 4),
                "mean_probability": round(self.mean_probability(name), 4),
                "still_from_class": self.kept(name),
            }
            for name in self.patches
        ]


def check(settings: PatchSettings, model: LoadedModel, sizes: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Refuse, before any work, classes the model does not score."""
    for name in ("from_class", "to_class"):
        base.known_class(model, name, getattr(settings, name))


def patch_iter(
    photos: str | os.PathLike | Sequence[str | os.PathLike],
    icon: Image.Image,
    settings: PatchSettings | None = None,
    *,
    controls: dict[str, Image.Image] | None = None,
    icon_name: str = "icon",
    model: str | LoadedModel | None = None,
    device: str | None = None,
    **fields,
) -> Run:
    """Run the experiment on `photos` (a folder, searched recursively, or picture files) with `icon` (named
    `icon_name` in tables) and, besides the noise control, each picture in `controls` (name -> picture). The last
    event's result is a PatchResult."""
    settings, net = base.prepare(PatchSettings, settings, fields, model, device)
    check(settings, net)
    source, target = net.resolve_class(settings.from_class), net.resolve_class(settings.to_class)
    scan = folders.scan(photos, settings.side or net.spec.resolution)
    patches = {"icon": icon.convert("RGB"), NOISE: None, **{name: p.convert("RGB") for name, p in (controls or {}).items()}}
    return Run(_experiment(net, scan, settings, source, target, patches, icon_name), settings, None, net)


def _experiment(
    net, scan: folders.Scan, settings: PatchSettings, source: int, target: int, patches: dict, icon_name: str
) -> Iterator[Event]:
    side = scan.side
    patch_side = max(2, round(settings.size * side))
    from_label, to_label = net.class_label(source), net.class_label(target)
    trials, examples, skipped, views = [], {}, [], 0
    for number, name in enumerate(scan.files, start=1):
        try:
            photo = images.load_image(scan.root / name, "photo")
        except DreamscopeError as exc:
            skipped.append((name, str(exc)))
            continue
        pictures = [_view(photo, side, settings.seed, name, view) for view in range(settings.views)]
        views += len(pictures)
        x = torch.cat([imaging.to_tensor(p, net.device) for p in pictures])
        with torch.no_grad():
            before = class_probabilities(net, x)
        for view, (picture, scores) in enumerate(zip(pictures, before)):
            if int(scores.argmax()) != source:
                continue
            generator = _generator(settings.seed, name, view)
            box = _box(settings.place, side, patch_side, generator)
            variants = {label: _pasted(picture, box, _patch(patch, patch_side, generator)) for label, patch in patches.items()}
            with torch.no_grad():
                after = class_probabilities(net, torch.cat([imaging.to_tensor(v, net.device) for v in variants.values()]))
            trial = Trial(name, view, box, float(scores[source]))
            for label, result in zip(variants, after):
                trial.after[label] = (net.class_label(int(result.argmax())), float(result[target]))
            trials.append(trial)
            if not examples:
                examples = variants
        yield Event((Stage("photo", number, len(scan.files)),), number / len(scan.files))
    if not trials:
        raise DreamscopeError(
            f"the network calls none of the {views} view(s) of the photos {from_label} (its top class), so "
            "there is nothing to flip: give photos of that class, or more views (--views)"
        )
    yield finish(PatchResult(settings, from_label, to_label, list(patches), trials, views, skipped, examples, icon_name))


def patch_experiment(photos, icon: Image.Image, settings: PatchSettings | None = None, **options) -> PatchResult:
    """Like `patch_iter`, but returns the finished PatchResult."""
    return patch_iter(photos, icon, settings, **options).result()


def _generator(seed: int, name: str, view: int) -> torch.Generator:
    """Seeded by the seed, the photo's path and the view only: the same trial gets the same crop and place in any run."""
    return base.generator_for(seed, name, view)


def _view(photo: Image.Image, side: int, seed: int, name: str, view: int) -> Image.Image:
    """View 0: the centre square as classifiers are evaluated. Others: a random square crop (60-100% of the
    shorter side, anywhere), mirrored half the time."""
    if view == 0:
        return imaging.centre_square(photo, side)
    generator = _generator(seed, name, -view)
    width, height = photo.size
    crop = round(min(width, height) * (SMALLEST_CROP + (1 - SMALLEST_CROP) * float(torch.rand(1, generator=generator))))
    left = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
    top = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
    picture = photo.crop((left, top, left + crop, top + crop)).resize((side, side), Image.BICUBIC)
    return ImageOps.mirror(picture) if float(torch.rand(1, generator=generator)) < 0.5 else picture


def _box(place: str, side: int, size: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    if place == "centre":
        left = top = (side - size) // 2
    elif place == "corner":  # the bottom right, where the paper's patches went
        left = top = side - size
    else:
        left, top = (int(v) for v in torch.randint(0, side - size + 1, (2,), generator=generator))
    return left, top, left + size, top + size


def _patch(picture: Image.Image | None, size: int, generator: torch.Generator) -> Image.Image:
    """The picture at the patch's size, or (None) uniform noise of that size from the trial's generator."""
    if picture is None:
        noise = torch.rand(1, 3, size, size, generator=generator)
        return imaging.to_pil(noise)
    return picture.resize((size, size), Image.LANCZOS)


def _pasted(picture: Image.Image, box: tuple[int, int, int, int], patch: Image.Image) -> Image.Image:
    out = picture.copy()
    out.paste(patch, box[:2])
    return out
