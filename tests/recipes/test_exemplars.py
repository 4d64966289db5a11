"""Natural exemplars: the recipe against a brute-force search, the running top k, damaged files, the sheet and
the `dreamscope exemplars` command (one good run and its mistakes, each one line that leaves nothing behind).

The folder is made of scikit-image's photos (whole, cropped, turned), solid colours in several formats and
subfolders, a damaged and a truncated picture, and a note that is no picture at all. Pictures are seen at
96 px (64 px on the command line) so every pass takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dreamscope as ds
from conftest import DAMAGED, GOOD_PICTURES, error_line, picture_folder, run_good_and_mistakes, snapshot
from dreamscope.errors import DreamscopeError
from dreamscope.io import folders, images
from dreamscope.io import folders as folder_recipe
from dreamscope.optvis import render
from dreamscope.pages import sheets
from dreamscope.recipes import exemplars as ex
from dreamscope.work import redo

SIDE = 96
UNITS = [("stage2.1", 5), ("stage4.2", 17), ("stage5.2", 3)]


@pytest.fixture(scope="module")
def pics(tmp_path_factory) -> Path:
    return picture_folder(tmp_path_factory.mktemp("exemplars"))


@pytest.fixture(scope="module")
def found(pics, model) -> ex.ExemplarsResult:
    return ex.exemplars(pics, UNITS, model=model, count=4, side=SIDE)


@pytest.fixture(scope="module")
def brute(pics, model) -> dict:
    """Every readable picture's activation maps, the obvious way: {unit: {file: map (h, w)}}."""
    names, squares = [], []
    for path in folders.picture_files(pics):
        try:
            squares.append(images.to_tensor(images.centre_square(images.load_image(path, "picture"), SIDE)))
        except DreamscopeError:
            continue
        names.append(path.relative_to(pics).as_posix())
    with torch.no_grad():
        acts = render.activations(model, [layer for layer, _ in UNITS], torch.cat(squares))
    return {(layer, index): {name: acts[layer][i, index] for i, name in enumerate(names)} for layer, index in UNITS}


def test_the_top_exemplars_are_the_pictures_where_each_channel_fires_most(found, brute):
    assert found.read == GOOD_PICTURES and list(found.units) == UNITS
    for unit in UNITS:
        peaks = {name: float(a.max()) for name, a in brute[unit].items()}
        ranked = sorted(peaks, key=peaks.get, reverse=True)
        got = found.units[unit]
        assert [e.file for e in got] == ranked[:4], unit  # strongest first, as the brute force ranks them
        assert got[0].activation == pytest.approx(max(peaks.values()), rel=1e-4)  # the top one beats every picture
        assert len({e.file for e in got}) == 4  # one patch per picture
        for e in got:
            assert e.activation == pytest.approx(peaks[e.file], rel=1e-4)
            assert float(brute[unit][e.file][e.row, e.col]) == pytest.approx(peaks[e.file], rel=1e-4)  # at its peak


def test_each_patch_is_cut_around_its_position_from_the_picture_as_the_network_saw_it(pics, found, model):
    scan = folder_recipe.scan(pics, SIDE)
    for (layer, _index), got in found.units.items():
        stride = model.layer(layer).stride
        size = folder_recipe.patch_size(stride, SIDE)
        for e in got:
            grid = (-(-SIDE // stride), -(-SIDE // stride))
            assert e.box == folder_recipe.patch_box(e.row, e.col, grid, SIDE, size)
            assert e.patch.size == (size, size)
            square = scan.square(scan.files.index(e.file))
            assert e.patch.tobytes() == square.crop(e.box).tobytes()
    assert found["stage4.2:17"] is found.units[("stage4.2", 17)]


def test_damaged_files_are_skipped_and_named_and_other_files_are_not_pictures(pics, model):
    events = list(ex.exemplars_iter(pics, "stage4.2:17", model=model, count=2, side=SIDE))
    result = events[-1].result
    assert {name for name, _ in result.skipped} == DAMAGED
    assert all(why and str(pics) not in why for _, why in result.skipped)  # the reason, without the path again
    notes = [e.note for e in events if e.note]
    assert sorted(notes) == sorted(f"skipped {name}: {why}" for name, why in result.skipped)
    assert "notes.txt" not in " ".join(notes)
    assert result.record.recipe == "exemplars" and result.settings.units == "stage4.2:17"


def test_batching_does_not_change_the_result(pics, model, found):
    for size in (1,):  # one picture at a time against the default batches of 16
        again = ex.exemplars(pics, UNITS, model=model, count=4, side=SIDE, batch_size=size)
        for unit in UNITS:
            a, b = found.units[unit], again.units[unit]
            assert [(e.file, e.row, e.col, e.box) for e in a] == [(e.file, e.row, e.col, e.box) for e in b], (unit, size)
            assert [e.activation for e in a] == pytest.approx([e.activation for e in b], rel=1e-4)


def test_progress_runs_over_the_batches_then_the_pictures_cut(pics, model):
    events = list(ex.exemplars_iter(pics, "stage5.2:3", model=model, count=2, side=SIDE, batch_size=4))
    progress = [e for e in events if e.stages]
    assert [e.stage for e in progress[:3]] == ["batch 1 of 3", "batch 2 of 3", "batch 3 of 3"]
    assert [e.at("picture").count for e in progress[3:]] == [2, 2]
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and events[-1].done and fractions[-1] == 1.0


def test_the_running_top_k_holds_k_and_ties_go_to_the_earlier_picture():
    top = ex._TopK(3)
    rng = np.random.default_rng(0)
    scores = torch.tensor(rng.normal(size=50), dtype=torch.float32)
    scores[[7, 30, 41]] = 9.0  # a three-way tie at the top
    for start in range(0, 50, 7):
        chunk = slice(start, min(start + 7, 50))
        top.add(scores[chunk], torch.arange(50)[chunk], torch.zeros(50, dtype=torch.long)[chunk])
        assert len(top.scores) <= 3
    assert top.pictures.tolist() == [7, 30, 41]
    top.add(torch.tensor([9.0, float("nan")]), torch.tensor([50, 51]), torch.tensor([0, 0]))
    assert top.pictures.tolist() == [7, 30, 41]  # a later tie and a NaN do not get in


def test_bad_units_and_folders_fail_before_any_work(pics, model, tmp_path):
    def fails(match, *args, **options):
        with pytest.raises(DreamscopeError, match=match):
            ex.exemplars_iter(*args, model=model, side=SIDE, **options)  # at the call, not when iterated

    fails(r"names 'stage9'.*did you mean", pics, "stage9:1")
    fails("names channel 80 of stage4.2, which has channels 0-79", pics, "stage4.2:80")
    fails("not a feature map", pics, "logits:3")
    fails("must be LAYER:INDEX", pics, "stage4.2")
    fails("folder not found", tmp_path / "nothere", "stage4.2:1")
    (tmp_path / "empty").mkdir()
    fails("no pictures in folder", tmp_path / "empty", "stage4.2:1")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"")
    (tmp_path / "bad" / "b.jpg").write_text("no")
    with pytest.raises(
        DreamscopeError, match=r"none of the 2 picture files in .*bad could be read \(a.png: picture file is empty"
    ):
        ex.exemplars(tmp_path / "bad", "stage4.2:1", model=model, side=SIDE)


def test_notes_name_ten_skipped_files_then_count_the_rest():
    skipped = [(f"f{i}.jpg", "damaged") for i in range(13)]
    notes = ex.skipped_notes(skipped)
    assert notes[:2] == ["skipped f0.jpg: damaged", "skipped f1.jpg: damaged"] and len(notes) == 11
    assert notes[-1] == "and 3 more files that could not be read were skipped"
    assert ex.skipped_notes(skipped[:2]) == notes[:2]


def test_the_sheet_has_a_row_per_channel(found):
    pictures = [Image.new("RGB", (64, 64), "black") for _ in UNITS]
    sheet = sheets.exemplar_sheet(found, pictures)
    tile, gap = sheets.EXEMPLAR_TILE, sheets.EXEMPLAR_GAP
    assert sheet.size == (5 * tile + 4 * gap, 3 * (tile + sheets.EXEMPLAR_CAPTION) + 2 * gap)
    assert np.asarray(sheet)[:tile, :tile].max() == 0  # the visualization comes first
    assert sheets.exemplar_sheet(found).width == 4 * tile + 3 * gap  # no visualizations: the exemplars alone


def test_settings_check_units_and_the_probe_needs_channels_for_exemplars():
    assert ds.ExemplarsSettings(units=["stage4.2:17, stage5.2:3", ("stage4.2", 17)]).units == "stage4.2:17,stage5.2:3"
    for bad, says in (("", "is required"), ("stage4.2:x", "LAYER:INDEX"), (["a:1", "b"], "got 'b'")):
        with pytest.raises(DreamscopeError, match=says):
            ds.ExemplarsSettings(units=bad)
    with pytest.raises(DreamscopeError, match="channels is 0"):
        ds.ProbeSettings(channels=0, exemplar_folder="pics")


# --- the command -----------------------------------------------------------------------------------------------

QUICK = ("--side", "64", "--vis-size", "64", "--vis-steps", "4")
GOOD = {"sheet": ("exemplars", "pics", "--channel", "stage4.2:17", "--channel", "stage5.2:3", "--count", "3", *QUICK)}
MISTAKES = {  # name: (args, exit code, words the error line must have)
    "unknown-layer": (
        ("exemplars", "pics", "--channel", "stage9:1", "-o", "a.png"),
        1,
        ["--channel names 'stage9'", "did you mean"],
    ),
    "out-of-range": (
        ("exemplars", "pics", "--channel", "stage4.2:80", "-o", "b.png"),
        2,
        ["--channel names channel 80 of stage4.2, which has channels 0-79"],
    ),
    "missing-folder": (("exemplars", "nothere", "--channel", "stage4.2:1", "-o", "c.png"), 1, ["folder not found: nothere"]),
    "unknown-extension": (
        ("exemplars", "pics", "--channel", "stage4.2:1", "-o", "d.xyz"),
        1,
        ["cannot write '.xyz' files", ".png"],
    ),
    "no-channel": (("exemplars", "pics", "-o", "e.png"), 2, ["--channel is required"]),
    "not-a-unit": (("exemplars", "pics", "--channel", "stage4.2", "-o", "f.png"), 2, ["--channel must be LAYER:INDEX"]),
    "nothing-readable": (
        ("exemplars", "broken-only", "--channel", "stage4.2:1", "-o", "g.png"),
        1,
        ["could not be read", "give a folder with readable pictures"],
    ),
    "output-folder-missing": (
        ("exemplars", "pics", "--channel", "stage4.2:1", "-o", "nowhere/h.png"),
        1,
        ["output folder does not exist"],
    ),
    "count-out-of-range": (
        ("exemplars", "pics", "--channel", "stage4.2:1", "--count", "65", "-o", "i.png"),
        2,
        ["--count must be"],
    ),
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory, run_cli_many):
    root = tmp_path_factory.mktemp("exemplars-cli")
    picture_folder(root)
    (root / "broken-only").mkdir()
    (root / "broken-only" / "only.png").write_text("no picture here\n")
    before = snapshot(root)
    results = run_good_and_mistakes(
        root, GOOD, {name: args for name, (args, _, _) in MISTAKES.items()}, run_cli_many, env={"OMP_NUM_THREADS": "1"}
    )
    return root, before, results


def test_the_command_writes_a_sheet_named_after_the_channels_and_says_what_it_read(cli, model):
    root, before, results = cli
    result = results["sheet"]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == f"wrote stage4.2_17_stage5.2_3-exemplars.png ({GOOD_PICTURES} pictures read, 2 skipped)"
    assert len(lines) == 3 and all(any(line.startswith(f"note: skipped {name}: ") for line in lines[:-1]) for name in DAMAGED)
    assert {p[0] for p in snapshot(root)} - {p[0] for p in before} == {"stage4.2_17_stage5.2_3-exemplars.png"}
    sheet_path = root / "stage4.2_17_stage5.2_3-exemplars.png"
    with Image.open(sheet_path) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == (
            4 * sheets.EXEMPLAR_TILE + 3 * sheets.EXEMPLAR_GAP,
            2 * (sheets.EXEMPLAR_TILE + sheets.EXEMPLAR_CAPTION) + sheets.EXEMPLAR_GAP,
        )
    record = ds.read_record(sheet_path)
    assert record.recipe == "exemplars" and record.settings.units == "stage4.2:17,stage5.2:3" and record.settings.side == 64
    with pytest.raises(DreamscopeError, match="redo cannot make .* again: dreamscope exemplars reads a folder"):
        redo.redo(sheet_path, model=model)


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_is_one_line_and_leaves_nothing(cli, case):
    root, before, results = cli
    _args, code, needles = MISTAKES[case]
    line = error_line(results[case])
    assert results[case].returncode == code, line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    written = {p[0] for p in snapshot(root)} - {p[0] for p in before}
    assert written <= {"stage4.2_17_stage5.2_3-exemplars.png"}, written  # only the good run's sheet
