"""The patch experiment: a picture pasted into photos of one class, against noise of the same size, at the same places.

The photos are views of scikit-image's cat (the network calls its centre "Egyptian cat"); a large piece of its coffee
photo pasted in should raise "espresso" far more than noise or grey does. Small pictures, few views.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from dreamscope.errors import DreamscopeError
from dreamscope.recipes import patch
from dreamscope.settings import PatchSettings


def _photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("patch") / "cats"
    folder.mkdir()
    _photo("chelsea").save(folder / "chelsea.jpg", quality=92)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return folder


@pytest.fixture(scope="module")
def coffee(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("icons") / "coffee.png"
    _photo("coffee").crop((100, 0, 500, 400)).save(path)
    return path


@pytest.fixture(scope="module")
def result(photos, coffee, model) -> patch.PatchResult:
    settings = PatchSettings(from_class="Egyptian cat", to_class="espresso", size=0.7, views=24, side=160)
    grey = Image.new("RGB", (64, 64), (128, 128, 128))
    return patch.patch_experiment(photos, Image.open(coffee), settings, controls={"grey": grey}, model=model)


def test_the_pasted_feature_flips_more_than_noise_or_grey(result):
    assert result.patches == ["icon", "noise", "grey"]
    assert 8 <= len(result.trials) <= 24 and result.views == 24  # only views called Egyptian cat are trials
    assert all(t.before > 0 for t in result.trials)
    # A close-up of a cat stays a cat under most patches: only a large one of espresso tips a few views (seeds 0-4:
    # 5 to 9 of 23-24 trials, none for noise or grey)
    assert result.flips("icon") >= 2 and result.flips("noise") == result.flips("grey") == 0
    assert result.mean_probability("icon") > 10 * max(result.mean_probability("noise"), result.mean_probability("grey"))
    rows = {row["patch"]: row for row in result.table()}
    assert rows["icon"]["flips"] == result.flips("icon") and rows["icon"]["trials"] == len(result.trials)
    assert result.skipped and result.skipped[0][0] == "broken.jpg"


def test_every_patch_of_a_trial_goes_to_the_same_place(result):
    example = result.examples
    assert list(example) == ["icon", "noise", "grey"]
    box = result.trials[0].box
    assert box[2] - box[0] == box[3] - box[1] == 112  # 0.7 of 160 px
    crops = {name: picture.crop(box) for name, picture in example.items()}
    assert crops["grey"].getextrema() == ((128, 128),) * 3
    outside = [picture.copy() for picture in example.values()]
    for picture in outside:
        picture.paste((0, 0, 0), box)
    assert all(o.tobytes() == outside[0].tobytes() for o in outside)  # the rest of the view is untouched and shared


def test_the_same_seed_gives_the_same_trials(photos, coffee, model, result):
    again = patch.patch_experiment(
        photos, Image.open(coffee), result.settings, controls={"grey": Image.new("RGB", (8, 8), (128,) * 3)}, model=model
    )
    assert [(t.file, t.view, t.box, t.after) for t in again.trials] == [(t.file, t.view, t.box, t.after) for t in result.trials]


def test_photos_the_network_never_calls_the_class_are_a_clear_error(photos, coffee, model):
    with pytest.raises(DreamscopeError, match="calls none of the 2 view"):
        patch.patch_experiment(
            photos, Image.open(coffee), from_class="banana", to_class="espresso", views=2, side=96, model=model
        )


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"from_class": "tabby"}, "to_class is required"),
        ({"from_class": "tabby", "to_class": "tabby"}, "must differ"),
        ({"from_class": "tabby", "to_class": "cup", "size": 0}, "size must be"),
        ({"from_class": "tabby", "to_class": "cup", "place": "left"}, "place must be one of random, corner, centre"),
    ],
)
def test_settings_name_what_is_wrong(fields, message):
    with pytest.raises(DreamscopeError, match=message):
        PatchSettings(**fields)


def test_the_command_prints_the_rates_and_writes_the_trials(photos, coffee, run_cli, tmp_path):
    result = run_cli(
        "patch",
        str(photos),
        "--from",
        "Egyptian cat",
        "--to",
        "espresso",
        "--icon",
        str(coffee),
        "--size",
        "0.5",
        "--views",
        "4",
        "--side",
        "128",
        "-o",
        str(tmp_path / "out"),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("patch experiment: Egyptian cat -> espresso:")
    assert lines[2].startswith("coffee.png (the icon)") and lines[3].startswith("noise (control)")
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert [row["patch"] for row in data["rates"]] == ["icon", "noise"] and data["trials"]
    assert Image.open(tmp_path / "out" / "examples.png").width > 2 * 128
    assert "skipped 1 file(s) that could not be read: broken.jpg" in result.stderr


def test_a_cell_of_an_atlas_is_an_icon_and_brings_its_rival_as_control(photos, run_cli, tmp_path):
    """ATLAS:CELL names a cell's icon; for a comparison, the cell that pushes least toward either class is the control."""
    atlas = tmp_path / "atlas"
    (atlas / "cells").mkdir(parents=True)
    cells = []
    for name, colour, strength in (
        ("r00-c00", (200, 120, 60), {"Egyptian cat": 0.1, "espresso": 0.5}),
        ("r00-c01", (60, 60, 200), {"Egyptian cat": 0.05, "espresso": 0.02}),
        ("r01-c00", (60, 200, 60), {"Egyptian cat": 0.6, "espresso": 0.0}),
    ):
        Image.new("RGB", (32, 32), colour).save(atlas / "cells" / f"{name}.png")
        cells.append({"name": name, "icon": f"cells/{name}.png", "strength": strength})
    (atlas / "atlas.json").write_text(json.dumps({"cells": cells}))
    result = run_cli(
        "patch",
        str(photos),
        "--from",
        "Egyptian cat",
        "--to",
        "espresso",
        "--icon",
        f"{atlas}:0,0",
        "--views",
        "2",
        "--side",
        "96",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert "cell r00-c00 (the icon)" in result.stdout and "cell r00-c01 (control)" in result.stdout
    result = run_cli("patch", str(photos), "--from", "Egyptian cat", "--to", "espresso", "--icon", f"{atlas}:r05-c05", "-q")
    assert result.returncode != 0 and result.stderr.startswith("error: ") and "has no cell 'r05-c05'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
