"""The explain page (pages/explain.py): its folder, explain.json, groups.png, and the page in Chromium.

One real explanation is made once per module (a small photo, few steps, small pictures) with a private channel
cache, and written once; the tests read that folder. The folder tests write fresh ones beside it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import Browser, chromium_binary, render
from conftest import chelsea, snapshot
from dreamscope.errors import DreamscopeError
from dreamscope.io import images, provenance
from dreamscope.pages import explain as page
from dreamscope.recipes import explain as explain_recipe
from dreamscope.recipes.explain import explain

SOURCE = "chelsea & <friends>.png"  # escaped on the page
COMMAND = "dreamscope explain chelsea.png -o report/ --size 96"
DATA = re.compile(r'<script type="application/json" id="data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # the channels' pictures are cached: never in the user's home
        patch.setenv("DREAMSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        return explain(chelsea(), model="efficientnet-lite0", size=96, steps=3, cell_size=32, channel_size=32, groups=3)


@pytest.fixture(scope="module")
def made(result, tmp_path_factory) -> Path:
    return page.write(result, tmp_path_factory.mktemp("explain") / "report", source=SOURCE, command=COMMAND)


@pytest.fixture(scope="module")
def facts(made) -> dict:
    return json.loads((made / "explain.json").read_text(encoding="utf-8"))


def _named(facts: dict) -> set[str]:
    """Every file explain.json names."""
    named = {facts["photo"], facts["cells"]["picture"], *facts["channels"].values()}
    named |= {g["picture"] for g in facts["groups"] + (facts["lower"]["groups"] if facts["lower"] else [])}
    return named


def test_every_named_picture_exists_and_nothing_else_is_left(made, facts):
    named = _named(facts)
    for name in named | {"groups.png"}:
        with Image.open(made / name) as img:
            img.verify()
    on_disk = {str(p.relative_to(made)) for p in made.rglob("*") if p.is_file()}
    assert on_disk == named | {"index.html", "explain.js", "explain.json", "groups.png"}
    assert sorted(p.name for p in made.parent.iterdir()) == ["report"], "a staging folder was left behind"
    text = (made / "index.html").read_text(encoding="utf-8")
    assert all(f'src="{name}"' in text or f'href="{name}"' in text for name in named - set(facts["channels"].values()))


def test_grid_picture_holds_every_cell_in_place(made, result):
    rows, cols = result.grid
    with Image.open(made / "grid.png") as img:
        assert img.size == (cols * 32, rows * 32)
        grid = np.asarray(img.convert("RGB"))
    for r, c in ((0, 0), (1, 2), (rows - 1, cols - 1)):
        cell = np.asarray(result.cells[r * cols + c].convert("RGB"))
        assert np.array_equal(grid[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32], cell), (r, c)


def test_json_matches_the_result(facts, result, model):
    rows, cols = result.grid
    names = [t.name for t in result.targets]
    assert (facts["format"], facts["model"], facts["layer"], facts["grid"]) == (
        1,
        "efficientnet-lite0",
        result.layer,
        [rows, cols],
    )
    assert facts["classes"] == names and [t["name"] for t in facts["targets"]] == names
    assert facts["targets"][0]["probability"] == pytest.approx(result.targets[0].probability, rel=1e-4)
    assert sum(g["share"] for g in facts["groups"]) == pytest.approx(1.0, abs=1e-3)
    channels = model.layer(result.layer).channels
    for group, ours in zip(facts["groups"], result.groups, strict=True):
        assert np.array(group["spatial"]).shape == (rows, cols) and len(group["channels"]) == channels
        assert np.allclose(group["spatial"], ours.spatial, rtol=1e-4, atol=1e-6)
        assert list(group["attribution"]) == names
    cells = facts["cells"]
    assert cells["top_channels"] == result.top_channels.tolist()
    expected = np.take_along_axis(result.activations, result.top_channels, axis=2)
    assert np.allclose(cells["top_values"], expected, rtol=1e-4)
    assert list(cells["attribution"]) == names
    for name in names:
        assert np.allclose(cells["attribution"][name], result.cell_attribution[name], rtol=1e-4, atol=1e-7)
    shown = set(np.unique(result.top_channels).tolist())  # the cells' strongest channels and the groups' heaviest
    for group in result.groups:
        shown |= set(explain_recipe.strongest_channels(group).tolist())
    assert set(facts["channels"]) == {str(c) for c in shown}
    assert facts["reconstruction_error"] == pytest.approx(result.factorization.error, rel=1e-4)
    assert result.lower is not None, "the default lower layer is there at 96 px"
    assert facts["lower"]["layer"] == result.lower.layer
    assert np.array(facts["flow"]).shape == (len(result.lower.groups), len(result.groups))
    assert facts["record"] == json.loads(result.record.to_text())


def test_page_embeds_the_json_less_the_record(made, facts):
    text = (made / "index.html").read_text(encoding="utf-8")
    embedded = json.loads(DATA.search(text).group(1).replace("<\\/", "</"))
    assert embedded == {k: v for k, v in facts.items() if k != "record"}
    assert '<meta name="generator" content="dreamscope explain ' in text
    assert page.check_explain_folder(made) == made  # so a later explanation may replace it


def test_page_says_what_it_shows(made, facts, result):
    text = " ".join((made / "index.html").read_text(encoding="utf-8").split())
    header = html.unescape(re.sub("<.*?>", "", re.search(r"<h1>(.*?)</h1>", text).group(1)))
    assert header == f"Why efficientnet-lite0 calls {SOURCE} “{facts['classes'][0]}”"
    assert page.ATTRIBUTION_WORDS[result.attribution_kind] in text
    assert f"reconstruct the activation with {100 * result.factorization.error:.0f}% relative error" in text
    assert text.count('class="cell"') == result.grid[0] * result.grid[1]
    assert html.escape(COMMAND) in text and "<th>cell_size</th><td>32</td>" in text
    assert "http://" not in text and "https://" not in text


def test_groups_picture_carries_the_record_and_colours_the_photo(made, result):
    assert images.read_metadata(made / "groups.png")[provenance.KEY] == result.record.to_text()
    with Image.open(made / "groups.png") as img:
        assert img.size == result.photo.size
        hsv = np.asarray(img.convert("HSV"), dtype=np.float64)
    assert hsv[..., 1].mean() > 40, "the groups' colours should cover the greyed photo"


# --- in Chromium ------------------------------------------------------------------------------------------------


def test_the_browser_check_catches_a_broken_page(made, facts, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(made, broken)
    (broken / facts["groups"][0]["picture"]).unlink()
    index = broken / "index.html"
    index.write_text(index.read_text(encoding="utf-8").replace("</body>", "<script>undefinedFunction()</script></body>"))
    found, state, _ = render(index, tmp_path)
    assert any("exception" in p for p in found), found
    assert [Path(src).name for src in state["broken"]] == [Path(facts["groups"][0]["picture"]).name]


def test_chromium_renders_the_page_cleanly(made, facts, tmp_path):
    found, state, screenshot = render(made / "index.html", tmp_path)
    assert found == []
    assert state["broken"] == [] and state["images"] > 2 + len(facts["groups"])
    assert state["overflow"] <= 0, "the page is wider than the window"
    assert SOURCE in state["title"]
    assert np.asarray(screenshot, dtype=np.float64)[:, 200:1000].std() > 20, "the screenshot is blank"


PANEL = """(() => { const p = document.getElementById('cell-panel'), z = getComputedStyle(p.querySelector('.zoom'));
  return {row: p.dataset.row, col: p.dataset.col, where: p.querySelector('.where').textContent,
    position: z.backgroundPosition, size: z.backgroundSize,
    channels: Array.from(p.querySelectorAll('.dict img')).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
    names: Array.from(p.querySelectorAll('.attr .name')).map(e => e.textContent),
    numbers: Array.from(p.querySelectorAll('.attr .num')).map(e => e.textContent),
    on: Array.from(document.querySelectorAll('.cell.on')).map(e => [e.dataset.row, e.dataset.col])}; })()"""


def _evaluate(browser: Browser, expression: str):
    return browser.page("Runtime.evaluate", returnByValue=True, expression=expression)["result"].get("value")


def _panel(browser: Browser) -> dict:
    """The panel's state, once its channel pictures have loaded (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        state = _evaluate(browser, PANEL)
        if all(loaded for _, loaded in state["channels"]) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def _check_panel(state: dict, facts: dict, row: int, col: int) -> None:
    zoom, (rows, cols) = facts["cells"]["zoom"], facts["grid"]
    assert (state["row"], state["col"], state["where"]) == (str(row), str(col), f"row {row}, column {col}")
    assert state["on"] == [[str(row), str(col)]]
    assert state["position"] == f"{-col * zoom}px {-row * zoom}px"  # the cell's square of grid.png, scaled up
    assert state["size"] == f"{cols * zoom}px {rows * zoom}px"
    top = facts["cells"]["top_channels"][row][col]
    assert [src for src, _ in state["channels"]] == [facts["channels"][str(c)] for c in top]
    assert all(loaded for _, loaded in state["channels"])
    assert state["names"] == facts["classes"]
    for shown, name in zip(state["numbers"], facts["classes"], strict=True):
        assert float(shown) == float(f"{facts['cells']['attribution'][name][row][col]:.3g}"), name


def test_hovering_a_cell_fills_the_panel(made, facts, tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    browser = Browser(binary, tempfile.mkdtemp(dir=tmp_path))
    try:
        browser.open((made / "index.html").as_uri())
        first = _panel(browser)  # the page opens on the cell that pushes the first class most
        attribution = np.array(facts["cells"]["attribution"][facts["classes"][0]])
        _check_panel(first, facts, *np.unravel_index(attribution.argmax(), attribution.shape))
        row, col = (1, 2) if (first["row"], first["col"]) != ("1", "2") else (0, 1)
        cell = f'document.querySelector(\'.cell[data-row="{row}"][data-col="{col}"]\')'
        _evaluate(browser, f"{cell}.scrollIntoView({{block: 'center'}})")
        x, y, width, height = _evaluate(browser, f"(r => [r.x, r.y, r.width, r.height])({cell}.getBoundingClientRect())")
        x, y = x + width / 2, y + height / 2
        assert _evaluate(browser, f"document.elementFromPoint({x}, {y}) === {cell}"), "something covers the cell"
        browser.page("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        _check_panel(_panel(browser), facts, row, col)
        _evaluate(browser, 'document.querySelector(\'.cell[data-row="0"][data-col="0"]\').focus()')  # the keyboard's way
        _check_panel(_panel(browser), facts, 0, 0)
        # Colour the cells by attribution instead: the strongest cell is red (a push toward) and opaque.
        name = facts["classes"][0]
        _evaluate(
            browser,
            f"(s => {{ s.value = {json.dumps(name)}; s.dispatchEvent(new Event('change')); }})(document.getElementById('mode'))",
        )
        r, c = np.unravel_index(np.abs(attribution).argmax(), attribution.shape)
        pixel = _evaluate(
            browser, f"Array.from(document.getElementById('attr-canvas').getContext('2d').getImageData({c}, {r}, 1, 1).data)"
        )
        assert pixel[3] == 255 and (pixel[0] > pixel[2]) == (attribution[r, c] > 0), pixel
        found = [p for p in browser.events if p.get("method") == "Runtime.exceptionThrown"]
        assert found == []
    finally:
        browser.close()


# --- the folder -------------------------------------------------------------------------------------------------


def test_a_folder_holding_something_else_is_refused_before_writing(result, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    before = snapshot(tmp_path)
    with pytest.raises(DreamscopeError, match="holds no dreamscope report"):
        page.write(result, mine)
    assert snapshot(tmp_path) == before


def test_an_earlier_explanation_is_replaced(result, tmp_path):
    folder = tmp_path / "out"
    page.write(result, folder, source="first.png")
    (folder / "stale.txt").write_text("from the earlier explanation")
    page.write(result, folder, source="second.png")
    assert "second.png" in (folder / "index.html").read_text(encoding="utf-8")
    assert not (folder / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing set aside is left


def test_a_failed_write_leaves_nothing(result, tmp_path, monkeypatch):
    calls = []
    save = images.save_image

    def failing_save(picture, path, metadata=None):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return save(picture, path, metadata=metadata)

    monkeypatch.setattr(page.images, "save_image", failing_save)
    with pytest.raises(OSError, match="disk full"):
        page.write(result, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [] and len(calls) == 3
