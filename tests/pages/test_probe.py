"""`dreamscope probe`: the recipe, the HTML report and contact sheet, bad inputs, and the page in Chromium.

One real report is made once per module (a small photo, three layers, few steps) by the real command in a
subprocess; the structure tests and the Chromium test read it. The bad inputs run side by side with it.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dreamscope as ds
from browser import render
from conftest import chelsea, error_line, snapshot
from dreamscope.errors import DreamscopeError
from dreamscope.pages import probe as report
from dreamscope.recipes import probe as probe_recipe
from dreamscope.recipes.classify import Prediction

LAYERS = ["stage2.1", "stage4.2", "stage5.2"]
QUICK = ["--octaves", "2", "--steps", "3", "--channels", "2", "--vis-size", "64", "--vis-steps", "24"]
REPORT_ARGS = ("probe", "photo.png", "-o", "report/", "--layers", ",".join(reversed(LAYERS)), *QUICK)
SHEET_ARGS = ("probe", "photo.png", "-o", "sheet.png", "--layers", ",".join(LAYERS), "--octaves", "2", "--steps", "3")

# Each bad case runs in a fresh folder holding photo.png (160x120), small.png (40x40), a file `afile`, a
# folder `notes/` with someone's file in it and an empty folder `empty/`.
BAD = {
    "output-is-a-file": (("probe", "photo.png", "-o", "afile"), ["output path is a file", "afile", "new folder name"]),
    "unknown-layer": (
        ("probe", "photo.png", "-o", "r/", "--layers", "stage2.1,stage9"),
        ["--layers names 'stage9'", "not a layer of", "did you mean"],
    ),
    "folder-not-a-report": (("probe", "photo.png", "-o", "notes"), ["not empty and holds no dreamscope report", "notes"]),
    "html-file": (("probe", "photo.png", "-o", "report.html"), ["the report is a folder", "name it report/"]),
    "missing-input": (("probe", "nothere.png", "-o", "r/"), ["image file not found: nothere.png"]),
    "parent-missing": (
        ("probe", "photo.png", "-o", "nowhere/report/"),
        ["output folder does not exist", "nowhere", "create it first"],
    ),
    "parent-is-a-file": (("probe", "photo.png", "-o", "afile/report/"), ["afile is a file", "write elsewhere"]),
    "too-small-for-deep-layers": (("probe", "small.png", "-o", "r/"), ["smallest octave", "fewer --octaves"]),
    "too-many-channels": (
        ("probe", "photo.png", "-o", "r/", "--channels", "100"),
        ["channels must be a whole number from 0 to 64"],
    ),
    "vis-size-too-small": (("probe", "photo.png", "-o", "r/", "--vis-size", "16"), ["--vis-size must be", "from 64 to 2048"]),
    "steps-zero": (("probe", "photo.png", "-o", "r/", "--steps", "0"), ["--steps must be", "whole number from 1"]),
    "channels-for-a-sheet": (
        ("probe", "photo.png", "-o", "s.png", "--channels", "2"),
        ["--channels does not apply to a contact sheet"],
    ),
    "exemplars-for-a-sheet": (
        ("probe", "photo.png", "-o", "s.png", "--exemplars", "notes"),
        ["--exemplars does not apply to a contact sheet"],
    ),
    "exemplar-folder-missing": (
        ("probe", "photo.png", "-o", "r/", "--layers", "stage3.1", "--exemplars", "nothere"),
        ["folder not found: nothere"],
    ),
}
SETTINGS_MISTAKES = (
    "too-small-for-deep-layers",
    "too-many-channels",
    "vis-size-too-small",
    "steps-zero",
    "channels-for-a-sheet",
    "exemplars-for-a-sheet",
)


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    chelsea().save(folder / "photo.png")
    chelsea((40, 40)).save(folder / "small.png")
    (folder / "afile").write_text("not a folder\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("someone's file\n")
    (folder / "empty").mkdir()
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_cli_many):
    """Every CLI run of this module, side by side: {name: (result, folder, snapshot before)}."""
    root = tmp_path_factory.mktemp("probe")
    jobs = {"report": REPORT_ARGS, "sheet": SHEET_ARGS, **{name: args for name, (args, _) in BAD.items()}}
    folders = {name: _folder(root, name) for name in jobs}
    before = {name: snapshot(folder) for name, folder in folders.items()}
    results = run_cli_many([(args, folders[name]) for name, args in jobs.items()], env={"OMP_NUM_THREADS": "1"})
    return {name: (result, folders[name], before[name]) for name, result in zip(jobs, results)}


@pytest.fixture(scope="module")
def made(runs):
    result, folder, _ = runs["report"]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == ["wrote report/index.html"]  # no progress bar when not a terminal
    return folder / "report"


class _Links(HTMLParser):
    """Every picture and link a page refers to, and its text."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("a", "link", "script") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src"))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float64)


# --- the report made by the real command ---------------------------------------------------------------


def test_every_referenced_picture_exists_and_nothing_else_is_left(made):
    page = parse(made / "index.html")
    local = [link for link in page.links if not link.startswith("#")]
    assert all(not re.match(r"[a-z]+:", link) for link in page.images + local), "the page must not load anything remote"
    referenced = set(page.images) | set(local)
    for name in referenced:
        assert (made / name).is_file(), name
        with Image.open(made / name) as img:
            img.verify()
    on_disk = {str(p.relative_to(made)) for p in made.rglob("*") if p.is_file()}
    assert on_disk == referenced | {"index.html"}
    assert "sheet.png" in referenced
    # photo + per layer: a dream, and a visualization and a heat map per channel
    # the photo; each dream twice (the strip at the top, the layer's section); two pictures per channel
    assert len(page.images) == 1 + 2 * len(LAYERS) + 2 * 2 * len(LAYERS)
    assert not list(made.parent.glob(".*")), "temporary folders were left behind"


def test_layers_run_shallow_to_deep_with_their_facts(made, model):
    text = (made / "index.html").read_text(encoding="utf-8")
    positions = [text.index(f'id="{name}"') for name in LAYERS]
    assert positions == sorted(positions)  # given deep first on the command line, shown shallow first
    for name in LAYERS:
        info = model.layer(name)
        section = text[text.index(f'id="{name}"') :]
        section = section[: section.index("</section>")]
        assert f"{info.channels} channels" in section and f"stride {info.stride}" in section


def test_dreams_differ_between_layers_and_from_the_photo(made):
    photo = pixels(made / "photo.jpg")
    dreams = [pixels(p) for p in sorted((made / "dreams").glob("*.jpg"))]
    assert len(dreams) == len(LAYERS)
    for dream in dreams:
        assert dream.shape == photo.shape
        assert np.abs(dream - photo).mean() > 3.0, "a dream should change the photo"
    for a, b in zip(dreams, dreams[1:]):
        assert np.abs(a - b).mean() > 3.0, "each layer should dream differently"


def test_channel_pictures_show_something_and_differ(made):
    visualizations = [pixels(p) for p in sorted((made / "channels").glob("*-visualization.jpg"))]
    heatmaps = [pixels(p) for p in sorted((made / "channels").glob("*-heatmap.jpg"))]
    assert len(visualizations) == len(heatmaps) == 2 * len(LAYERS)
    assert all(v.std() > 10 for v in visualizations), "a feature visualization should not be flat"
    assert all(np.abs(a - b).mean() > 3.0 for a, b in zip(heatmaps, heatmaps[1:]))


def test_top_class_is_named_with_its_probability(made, model):
    with Image.open(made / "photo.jpg") as img:
        assert img.size == chelsea().size  # probed at its own size: it is under --max-size
    top = ds.classify(chelsea(), model=model)[0]
    assert top.label in ("Egyptian cat", "tabby", "tiger cat")
    text = (made / "index.html").read_text(encoding="utf-8")
    first = re.search(r'<li><span class="label">(.*?)</span><span class="prob">(.*?)</span>', text)
    assert (html.unescape(first.group(1)), first.group(2)) == (top.label, f"{top.probability:.1%}")


def test_settings_say_how_to_reproduce_it(made):
    text = html.unescape((made / "index.html").read_text(encoding="utf-8"))
    assert f"dreamscope {ds.__version__}" in text
    command = re.search(r"<pre><code>(.*?)</code></pre>", text, re.S).group(1)
    assert command.startswith("dreamscope probe photo.png -o report/ ")
    for setting in (
        "--layers stage5.2,stage4.2,stage2.1",
        "--octaves 2",
        "--steps 3",
        "--channels 2",
        "--vis-size 64",
        "--vis-steps 24",
    ):
        assert setting in command
    assert "--seed" not in command and "--max-size" not in command  # settings at their defaults go without saying
    for fact in (
        "<th>seed</th><td>0</td>",
        "<th>max_size</th><td>512</td>",
        "<th>model</th><td>efficientnet-lite0</td>",
        "<th>layers</th><td>stage2.1, stage4.2, stage5.2</td>",
        "<th>threads</th>",
        "<th>device</th><td>cpu</td>",
    ):
        assert fact in text, fact
    record = ds.read_record(made)  # the report carries its provenance record (in sheet.png)
    assert record.recipe == "probe" and record.settings.layers == "stage5.2,stage4.2,stage2.1"


def test_the_report_shows_the_precision_that_ran_not_the_setting(made):
    """The settings say "auto", which chooses by the CPU (bfloat16 with AMX, else float32); the facts table says what
    the report was computed in, as its record does."""
    record = ds.read_record(made)
    assert record.settings.precision == "auto" and record.precision in ("fp32", "bf16")
    text = (made / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<th>precision</th><td>(.*?)</td>", text) == [record.precision]


def test_contact_sheet_alone(runs):
    result, folder, before = runs["sheet"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["wrote sheet.png"]
    assert {p[0] for p in snapshot(folder)} - {p[0] for p in before} == {"sheet.png"}
    with Image.open(folder / "sheet.png") as img:
        tile = report.SHEET_TILE_WIDTH
        assert img.format == "PNG" and img.width == 4 * tile + 3 * 4  # the photo and three layers in one row
        sheet = np.asarray(img.convert("RGB"), dtype=np.float64)
    tiles = [sheet[:, i * (tile + 4) : i * (tile + 4) + tile] for i in range(4)]
    assert all(np.abs(a - b).mean() > 3.0 for a, b in zip(tiles, tiles[1:]))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_error_and_leaves_nothing(runs, case):
    result, folder, before = runs[case]
    line = error_line(result)
    assert result.returncode == (2 if case in SETTINGS_MISTAKES else 1), line
    for needle in BAD[case][1]:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert snapshot(folder) == before, "files were written or changed"


# --- the recipe and the report, in this process ----------------------------------------------------------


def test_default_layers_are_stage_ends_shallow_to_deep(model):
    names = probe_recipe.default_layers(model)
    assert names == ["stage1.0", "stage2.1", "stage3.1", "stage4.2", "stage5.2", "stage6.3"]
    assert probe_recipe.parse_layers(model, "stage4.2, stage1.0,stage4.2") == ["stage1.0", "stage4.2"]
    with pytest.raises(DreamscopeError, match="layers must be names separated by commas"):
        ds.ProbeSettings(layers=" , ")


def test_progress_runs_across_layers_and_a_seed_repeats_it(model):
    photo = chelsea((96, 64))
    settings = dict(model=model, layers=["stage2.1", "stage3.1"], channels=1, octaves=1, steps=2, vis_size=64, vis_steps=2)
    events = list(probe_recipe.probe_iter(photo, **settings))
    assert [e.done for e in events] == [False] * 8 + [True]
    assert [e.at("layer").index for e in events[:-1]] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert events[0].stage == "layer 1 of 2 (stage2.1), octave 1 of 1, step 1 of 2"
    assert events[2].stage == "layer 1 of 2 (stage2.1), step 1 of 2"  # the channel pictures' steps
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[3] == pytest.approx(0.5) and fractions[-1] == 1.0
    first = events[-1].result
    again = probe_recipe.probe(photo, **settings)
    for a, b in zip(first.layers, again.layers):
        assert a.dream.tobytes() == b.dream.tobytes()
        assert a.top[0].visualization.tobytes() == b.top[0].visualization.tobytes()


def test_heat_map_is_hot_where_the_channel_fires():
    photo = torch.full((1, 3, 64, 96), 0.5)
    activation = torch.zeros(1, 8, 12)
    activation[0, :2, :3] = 5.0  # fires in the top-left corner only
    heat = np.asarray(probe_recipe.heatmap(photo, activation), dtype=np.float64)
    assert heat.shape == (64, 96, 3)
    assert heat[:8, :16].mean() > 150 and heat[40:, 60:].mean() < 80


def _fake_result(tag: int = 0) -> probe_recipe.ProbeResult:
    def picture(w, h, seed):
        rng = np.random.default_rng(seed + tag)
        return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))

    layers = [
        probe_recipe.LayerProbe(
            name,
            16,
            4,
            picture(96, 64, i),
            [probe_recipe.ChannelProbe(c, 2.0, picture(48, 32, 10 * i + c), picture(32, 32, 50 + c)) for c in (3, 5)],
        )
        for i, name in enumerate(["a.1", "b.2"])
    ]
    settings = ds.ProbeSettings()
    record = ds.Record(settings, {"name": "net", "weights": "sha256:00"}, {}, "cpu", 2, "9.9", "2.0")
    return probe_recipe.ProbeResult(
        picture(96, 64, 99), "net", [Prediction(1, "goldfish & <friends>", 0.5)], layers, settings, record
    )


def test_with_an_exemplar_folder_each_channel_card_shows_its_natural_exemplars(model, tmp_path):
    from conftest import DAMAGED, GOOD_PICTURES, picture_folder
    from dreamscope.recipes import exemplars

    pics = picture_folder(tmp_path)
    settings = dict(
        model=model,
        layers="stage2.1,stage4.2",
        channels=2,
        octaves=1,
        steps=1,
        vis_size=64,
        vis_steps=2,
        exemplar_folder=str(pics),
        exemplar_count=3,
    )
    events = list(probe_recipe.probe_iter(chelsea((96, 64)), **settings))
    result = events[-1].result
    assert sorted(e.note.split(":")[0] for e in events if e.note) == sorted(f"skipped {name}" for name in DAMAGED)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and [e for e in events if e.stages][-1].at("exemplars") is not None
    units = [(layer.name, channel.index) for layer in result.layers for channel in layer.top]
    alone = exemplars.exemplars(pics, units, model=model, count=3)  # one pass for all finds what a pass per channel would
    for layer in result.layers:
        for channel in layer.top:
            assert [(e.file, e.row, e.col) for e in channel.exemplars] == [
                (e.file, e.row, e.col) for e in alone[(layer.name, channel.index)]
            ]
    folder = report.write_report(result, tmp_path / "report", source="cat.png")
    page = parse(folder / "index.html")
    assert all((folder / src).is_file() for src in page.images)  # every picture of the page is there
    shown = [src for src in page.images if src.startswith("exemplars/")]
    assert len(shown) == len(units) * 3 and len(set(shown)) == len(shown)
    text = (folder / "index.html").read_text(encoding="utf-8")
    assert f"{GOOD_PICTURES} pictures read, 2 skipped (broken.jpg, more/truncated.png)" in text
    assert text.count("strongest in the folder&rsquo;s pictures") == len(units)
    first = result.layers[0].top[0].exemplars[0]
    assert f'alt="{first.file}, activation {first.activation:.3g}"' in text
    with Image.open(folder / shown[0]) as img:
        assert img.size == (report.EXEMPLAR_SIDE, report.EXEMPLAR_SIDE)


def test_without_an_exemplar_folder_the_page_says_nothing_of_exemplars():
    assert "exemplar" not in report.render_html(_fake_result()).lower()


def test_report_replaces_an_earlier_report_but_nothing_else(tmp_path):
    folder = tmp_path / "out"
    report.write_report(_fake_result(0), folder, source="x.png")
    first = (folder / "dreams" / "01-a.1.jpg").read_bytes()
    assert "goldfish &amp; &lt;friends&gt;" in (folder / "index.html").read_text()
    report.write_report(_fake_result(1), folder, source="x.png")
    assert (folder / "dreams" / "01-a.1.jpg").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing set aside is left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DreamscopeError, match="holds no dreamscope report"):
        report.write_report(_fake_result(), tmp_path / "mine")


def test_a_failed_report_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_save(picture, path, metadata=None):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return Path(path).write_bytes(b"x")

    monkeypatch.setattr(report.images, "save_image", failing_save)
    with pytest.raises(OSError):
        report.write_report(_fake_result(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_the_browser_check_catches_a_broken_page(tmp_path):
    """The check below must be able to fail: a missing picture, a request off the disk and a script error."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!doctype html><title>x</title><img src="missing.jpg"><img src="http://127.0.0.1:9/x.png">'
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    found, state, _ = render(page, tmp_path)
    assert len(state["broken"]) == 2
    text = "\n".join(found)
    for needle in ("missing.jpg", "network request: http://127.0.0.1:9/x.png", "console.error", "exception"):
        assert needle in text, (needle, found)


def test_chromium_renders_the_report_cleanly(made, tmp_path):
    found, state, screenshot = render(made / "index.html", tmp_path)
    assert found == []
    assert state["broken"] == [] and state["images"] == 1 + 2 * len(LAYERS) + 2 * 2 * len(LAYERS)
    assert state["overflow"] <= 0, "the page is wider than the window"
    assert state["sections"] == len(LAYERS) and "efficientnet-lite0" in state["title"]
    screenshot.save(tmp_path / "report.png")  # to look at: pytest --basetemp=DIR
    assert screenshot.size == (1280, 2000)
    array = np.asarray(screenshot, dtype=np.float64)
    assert array.std() > 20, "the screenshot is blank"
    # The dark page background fills the margins; pictures fill the middle with colour.
    assert np.abs(array[:, :20] - array[0, 0]).max() < 8 and array[:, 200:1000].std() > 30
