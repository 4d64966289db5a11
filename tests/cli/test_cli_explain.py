"""`dreamscope explain` on the command line: a page made and made again by `redo`, a batch of them, and the mistakes
refused in one line before anything is written."""

from __future__ import annotations

import json

import pytest

from conftest import chelsea, error_line, run_good_and_mistakes, snapshot

QUICK = ["--size", "96", "--steps", "3", "--cell-size", "32", "--channel-size", "32", "--groups", "3"]

MISTAKES = {
    "unknown-layer": (["--layer", "stage9"], ["--layer names 'stage9'", "not a layer of efficientnet-lite0", "did you mean"]),
    "no-spatial-grid": (["--layer", "head", "--size", "32"], ["--layer", "head has a 1x1 map at 32 px", "shallower --layer"]),
    "more-groups-than-channels": (["--layer", "stage1.0", "--groups", "20"], ["--groups must be at most stage1.0's 16 channels"]),
    "unknown-class": (["--classes", "tabby,zebraa"], ["--classes cannot be 'zebraa'", "no such class", "did you mean zebra"]),
    "bad-class-spec": (["--classes", "top:0"], ["--classes must be top:N with N from 1 to 20"]),
    "unit-before-the-layer": (["--classes", "stage2.1:3"], ["--classes names stage2.1:3, which is not after stage5.2"]),
    "lower-layer-after": (["--lower-layer", "stage6.0"], ["--lower-layer must come before stage5.2"]),
    "not-a-microscope-site": (["--microscope", "notes"], ["--microscope notes is not a microscope site"]),
    "attribution-unknown": (["--attribution", "shapley"], ["--attribution", "invalid choice: 'shapley'"]),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory, run_cli_many):
    folder = tmp_path_factory.mktemp("explain")
    chelsea((96, 72)).save(folder / "photo.png")
    (folder / "pictures").mkdir()
    chelsea((80, 60)).save(folder / "pictures" / "cat.png")
    chelsea((60, 80)).save(folder / "pictures" / "turned.png")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("someone's notes")
    env = {"DREAMSCOPE_CACHE": str(folder / "cache")}
    before = snapshot(folder)
    good = {
        "page": ("explain", "photo.png", "-o", "page/", *QUICK),
        "batch": ("batch", "explain", "pictures", "-o", "pages/", *QUICK),
    }
    mistakes = {name: ("explain", "photo.png", "-o", f"{name}/", *args) for name, (args, _) in MISTAKES.items()}
    results = run_good_and_mistakes(folder, good, mistakes, run_cli_many, env=env)
    return folder, results, before, env


def test_the_page_is_written_with_its_data_and_record(made):
    folder, results, _, _ = made
    assert results["page"].returncode == 0, results["page"].stderr
    assert "wrote page/index.html" in results["page"].stderr
    data = json.loads((folder / "page" / "explain.json").read_text())
    assert data["layer"] == "stage5.2" and data["grid"] == [5, 6] and len(data["groups"]) == 3
    assert data["attribution"] == "integrated" and len(data["classes"]) == 3
    assert data["record"]["recipe"] == "explain" and data["record"]["settings"]["groups"] == 3


def test_redo_makes_the_same_explanation_again(made, run_cli):
    folder, _, _, env = made
    redone = run_cli("redo", "page", cwd=folder, env=env)
    assert redone.returncode == 0, redone.stderr
    original = json.loads((folder / "page" / "explain.json").read_text())
    again = json.loads((folder / "page_redo" / "explain.json").read_text())
    assert again.pop("channel_source") == f"{len(again['channels'])} from the cache"  # the first run drew them
    mine = {k: v for k, v in original.items() if k not in ("record", "channel_source")}
    assert {k: v for k, v in again.items() if k != "record"} == mine
    assert (folder / "page_redo" / "grid.png").read_bytes() == (folder / "page" / "grid.png").read_bytes()


def test_batch_writes_a_page_for_every_picture(made):
    folder, results, _, _ = made
    assert results["batch"].returncode == 0, results["batch"].stderr
    for name, grid in (("cat", [4, 5]), ("turned", [5, 4])):
        data = json.loads((folder / "pages" / name / "explain.json").read_text())
        assert data["grid"] == grid
        assert (folder / "pages" / name / "index.html").is_file()


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_is_one_line_and_writes_nothing(made, name):
    folder, results, before, _ = made
    run = results[name]
    line = error_line(run)
    assert run.returncode != 0
    for words in MISTAKES[name][1]:
        assert words in line, line
    assert not (folder / name).exists()
    written = {entry[0].split("/")[0] for entry in snapshot(folder) - before}
    assert written <= {"page", "pages", "cache", "page_redo"}, written


def test_an_input_inside_the_output_folder_is_refused_as_the_folder_would_replace_it(made, run_cli):
    folder, _, _, env = made
    before = snapshot(folder / "page")
    run = run_cli("explain", "page/photo.png", "-o", "page/", "--steps", "2", cwd=folder, env=env)
    assert "the input picture page/photo.png is inside the output folder page/, which is replaced" in error_line(run)
    assert snapshot(folder / "page") == before
