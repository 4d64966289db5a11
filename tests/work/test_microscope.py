"""The microscope: every channel of a small network drawn, its classes and exemplars, as a site whose every link and
picture resolves, rendered cleanly in Chromium; resumable; exemplars found in shards equal one pass."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from PIL import ImageOps

from browser import render as render_in_chromium
from conftest import chelsea
from dreamscope import cli, load_model
from dreamscope.events import run as run_events
from dreamscope.optvis import render
from dreamscope.work import batch, microscope

TOY = dict(model="toy_models:factory", size=64, steps=8, samples=2, block=8, exemplar_count=2)


def pictures_folder(folder: Path, count: int = 5) -> Path:
    folder.mkdir(parents=True)
    for number in range(count):
        picture = chelsea((80, 64)).rotate(11 * number)
        (ImageOps.mirror(picture) if number % 2 else picture).save(folder / f"p{number}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    return folder


def draw(site: Path, engine=None, **fields):
    return run_events(microscope.microscope_iter(None, site, engine=engine or batch.InlineEngine(), **{**TOY, **fields}))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("microscope")
    result = draw(root / "site", exemplar_folder=str(pictures_folder(root / "pictures")))
    return root / "site", result


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.pictures = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
        elif tag == "img":
            self.pictures.append(attrs["src"])


def test_every_page_link_and_picture_resolves(site):
    folder, result = site
    toy = load_model("toy_models:factory")
    assert result.channels == sum(info.channels for info in toy.layers.values()) and not result.batch.failures
    pages = sorted(folder.rglob("*.html"))
    assert len(pages) == 1 + len(toy.layers) + result.channels
    reached = set()
    for page in pages:
        parsed = _Links()
        parsed.feed(page.read_text())
        for target in parsed.links + parsed.pictures:
            assert "://" not in target, (page, target)
            resolved = (page.parent / target).resolve()
            assert resolved.is_file(), (page, target)
            reached.add(resolved)
    assert set(p.resolve() for p in pages) - reached <= {(folder / "index.html").resolve()}  # every page is linked
    facts = json.loads((folder / "microscope.json").read_text())
    channel = facts["layers"]["features.2"]["channels"]["5"]
    assert len(channel["classes"]) == 5 and len(channel["exemplars"]) == 2
    assert {e["file"] for e in channel["exemplars"]} <= {f"p{n}.png" for n in range(5)}
    assert facts["exemplar_pictures"]["read"] == 5 and facts["exemplar_pictures"]["skipped"][0][0] == "broken.png"


def test_the_classes_of_the_last_layer_are_the_classifiers_weights(site):
    """After global average pooling and a linear classifier, a channel's push on the classes is exactly its column."""
    folder, _ = site
    toy = load_model("toy_models:factory")
    weights = toy.net.classifier.weight if hasattr(toy.net, "classifier") else dict(toy.net.named_modules())["classifier"].weight
    facts = json.loads((folder / "microscope.json").read_text())["layers"]["features"]["channels"]
    for channel in ("0", "7", "15"):
        column = weights[:, int(channel)].detach()
        expected = column.topk(5)
        assert [name for name, _ in facts[channel]["classes"]] == [f"class {i}" for i in expected.indices.tolist()]
        assert [value for _, value in facts[channel]["classes"]] == pytest.approx(expected.values.tolist(), abs=1e-3)


def test_chromium_renders_the_front_a_layer_and_a_channel_page_cleanly(site, tmp_path):
    folder, _ = site
    for page, pictures in (
        (folder / "index.html", 5 * 8),
        (folder / "features.3" / "index.html", 16),
        (folder / "features.2" / "4.html", 1 + 2 + 2),
    ):
        found, state, _ = render_in_chromium(page, tmp_path)
        assert found == [] and state["broken"] == [] and state["images"] == pictures, (page, found, state)
        assert state["overflow"] <= 0


def test_a_rerun_keeps_what_is_done_and_other_settings_redraw(site, tmp_path):
    folder, _ = site
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")}
    again = draw(folder, exemplar_folder=str(folder.parent / "pictures"))
    assert again.batch.count("skipped") == len(again.plan.items) and again.batch.count("done") == 0
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    copy = tmp_path / "copy"
    draw(copy, layers="features.0")
    redrawn = draw(copy, layers="features.0", steps=10)
    assert redrawn.batch.count("done") == 1 and redrawn.batch.count("skipped") == 0


def test_exemplars_found_in_shards_equal_one_pass(site, tmp_path, monkeypatch):
    folder, _ = site
    monkeypatch.setattr(batch, "SHARD_PICTURES", 2)  # 6 files: 3 shards
    result = draw(tmp_path / "sharded", layers="features.2,features", exemplar_folder=str(folder.parent / "pictures"), steps=1)
    assert result.plan.shards == 3
    whole = json.loads((folder / "microscope.json").read_text())["layers"]
    parts = json.loads((tmp_path / "sharded" / "microscope.json").read_text())["layers"]
    for layer in ("features.2", "features"):
        for channel, facts in parts[layer]["channels"].items():
            assert [(e["file"], e["activation"]) for e in facts["exemplars"]] == [
                (e["file"], e["activation"]) for e in whole[layer]["channels"][channel]["exemplars"]
            ]


def test_each_picture_of_a_registered_model_excites_its_own_channel_most(tmp_path):
    """EfficientNet-Lite0's stage3.0 at 64 px, 8 steps: every channel's picture drives that channel harder than the
    other 15 pictures do, and harder than noise; the classes are ImageNet's names."""
    from dreamscope.io.images import load_image, to_tensor
    from dreamscope.models.classes import imagenet_labels

    result = draw(tmp_path / "lite", model="efficientnet-lite0", layers="stage3.0", samples=0, steps=8, block=16)
    assert result.channels == 40 and not result.batch.failures
    net = load_model("efficientnet-lite0")
    pictures = torch.cat([to_tensor(load_image(tmp_path / "lite" / "stage3.0" / f"{c}.png")) for c in range(16)])
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        acts = render.activations(net, ["stage3.0"], torch.cat([pictures, noise]))["stage3.0"].mean(dim=(2, 3))[:, :16]
    own = acts[torch.arange(16), torch.arange(16)]
    others = acts[:16].clone().fill_diagonal_(float("-inf")).max(dim=0).values
    assert bool((own > others).all()) and bool((own > acts[16] + 1.0).all()), (own, others, acts[16])
    facts = json.loads((tmp_path / "lite" / "microscope.json").read_text())["layers"]["stage3.0"]["channels"]
    assert all(name in imagenet_labels() for name, _ in facts["0"]["classes"])


def test_the_command_draws_a_site_and_refuses_mistakes_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(
        [
            "microscope",
            "-o",
            "site",
            "--model",
            "toy_models:factory",
            "--layers",
            "features.0",
            "--size",
            "64",
            "--steps",
            "2",
            "--samples",
            "0",
            "--workers",
            "0",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "microscope of 8 channels" in err and (tmp_path / "site" / "features.0" / "7.html").is_file()
    assert cli.main(["redo", "site/features.0/3.png"]) == 1
    assert "one channel of a microscope" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for argv, needle in (
        (["--layers", "nope"], "--layers names nope"),
        (["--layers", "features.0", "--channels", "6-9"], "--channels names channel 8 of features.0, which has channels 0-7"),
        (["--channels", "4-2"], "--channels must be channel indices and ranges"),
        (["-o", "other"], "not empty"),
        (["--exemplars", str(tmp_path / "missing")], "missing"),
    ):
        argv = ["microscope", "--model", "toy_models:factory", *(argv if "-o" in argv else ["-o", "new", *argv])]
        assert cli.main(argv) != 0
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
        assert not (tmp_path / "new").exists() and (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_channels_draws_only_those_and_a_whole_block_as_the_full_microscope_does(site, tmp_path):
    folder, _ = site
    part = draw(tmp_path / "part", layers="features.2", channels="3,8-15")
    assert part.channels == 9 and not part.batch.failures
    drawn = sorted(int(p.stem) for p in (tmp_path / "part" / "features.2").glob("*.html") if p.stem.isdigit())
    assert drawn == [3, *range(8, 16)]
    page = (tmp_path / "part" / "features.2" / "3.html").read_text()
    assert 'href="8.html"' in page and "2.html" not in page  # the next drawn channel, not channel 4
    assert [item.arguments["channels"] for item in part.plan.items] == [[3, 4], [8, 16]]
    # channels 8-15 are the full microscope's second block (block=8): the same pictures
    for channel in range(8, 16):
        same = folder / "features.2" / f"{channel}.png", tmp_path / "part" / "features.2" / f"{channel}.png"
        assert _load(same[0]).tobytes() == _load(same[1]).tobytes()


def _load(path: Path):
    from PIL import Image

    with Image.open(path) as picture:
        return picture.convert("RGB")


def test_a_sample_pushed_flat_is_drawn_again_and_the_page_says_so():
    """At efficientnet-lite0's stage1.0 the diversity term pushes some samples to flat grey (11 of 48 at 64 px and
    64 steps of Adam at 0.05; 5 of 48 at 128 px and 128 steps; 2 at today's 64 steps at 0.1): each is drawn again,
    and none is left flat. Seeds 1-3 drew 9, 6 and 9 again, none left flat, the least varied picture then at
    10.8-12.3 levels against FLAT's 10."""
    from dreamscope.pages import microscope as pages
    from dreamscope.recipes import microscope as drawing
    from dreamscope.settings import MicroscopeSettings

    net = load_model()
    made = drawing.render_channels(
        net, "stage1.0", list(range(16)), MicroscopeSettings(samples=3, size=64, steps=64, learning_rate=0.05)
    )
    assert len(made.redrawn) >= 3 and all(index % 4 for index in made.redrawn)  # samples only, never a main picture
    stds = [float(picture.std()) for picture in made.pictures]
    assert min(stds) >= drawing.FLAT and made.flat == [], sorted(stds)[:3]
    notes = pages._sample_notes({"redrawn": [1, 3], "flat": [3]})
    assert "Sample 1 drawn again without the push apart" in notes and "Sample 3 stayed flat grey" in notes


def test_the_samples_drawn_again_are_in_the_sites_record_and_on_their_pages(site):
    """draw_block writes which samples it drew again into its block record; the site reads them back onto the
    channel's page (the toy network's few steps leave some samples flat)."""
    folder, _ = site
    data = json.loads((folder / "microscope.json").read_text())["layers"]
    marked = [(layer, c, f["redrawn"]) for layer, facts in data.items() for c, f in facts["channels"].items() if f.get("redrawn")]
    assert marked, "no sample was drawn again: this test no longer sees what it checks"
    for layer, channel, numbers in marked:
        assert all(1 <= n <= 2 for n in numbers)  # samples, numbered from 1; never the main picture
        page = (folder / layer / f"{channel}.html").read_text()
        assert "drawn again without the push apart" in page or "stayed flat grey" in page


def test_a_results_repr_is_short_and_names_no_class(tmp_path):
    """repr(MicroscopeResult) once printed all 1,000 class names of efficientnet-lite0 (the site keeps them for its
    pages). One block of a real model's microscope: its settings, layers and outcome, none of the classes."""
    made = draw(tmp_path / "site", model="efficientnet-lite0", layers="stage1.0", channels="0-1", steps=2, samples=0)
    assert made.channels == 2 and len(made.plan.classes) == 1000 and not made.batch.failures
    text = repr(made)
    assert [name for name in made.plan.classes if repr(name) in text] == []
    assert "stage1.0" in text and len(text) < 1000 + 4 * len(str(tmp_path)), text
