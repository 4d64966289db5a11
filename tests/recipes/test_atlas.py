"""Activation atlases: collection (vectors, attributions, shards), layout, cells, icons, the folder and its page.

Folders are made here from the scikit-image samples (crops, flips and tints of them), plus a damaged file and a
note that is not a picture. Pictures are seen at 64 px and icons drawn small with few steps, so the module
stays quick; what the atlas shows on 1,000 real photos is judged in docs/atlas.md, not here.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from dreamscope.errors import DreamscopeError
from dreamscope.io import folders
from dreamscope.models.spec import LOGITS
from dreamscope.optvis import render
from dreamscope.recipes import atlas

pytest.importorskip("umap", reason="the atlas's layout needs umap-learn: pip install -e '.[atlas]'")

SIDE = 64
LAYER = "stage4.2"  # stride 16: a 4x4 grid at 64 px


def _samples() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(picture()).convert("RGB") for picture in (data.chelsea, data.astronaut, data.coffee, data.rocket)]


def make_folder(root: Path, count: int = 16) -> Path:
    """`count` varied pictures in two levels of folders, a damaged JPEG and a text file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "more").mkdir(exist_ok=True)
    samples = _samples()
    for i in range(count):
        picture = samples[i % len(samples)]
        width, height = picture.size
        box = (
            (i * 37) % (width // 3),
            (i * 23) % (height // 3),
            width - (i * 11) % (width // 3),
            height - (i * 19) % (height // 3),
        )
        picture = picture.crop(box).resize((96, 80))
        if i % 3 == 1:
            picture = ImageOps.mirror(picture)
        if i % 5 == 2:
            picture = Image.blend(picture, Image.new("RGB", picture.size, (200, 60, 40)), 0.3)
        (root / ("more" if i % 2 else "") / f"p{i:02d}.jpg").parent.mkdir(exist_ok=True)
        picture.save(root / ("more" if i % 2 else "") / f"p{i:02d}.jpg", quality=90)
    (root / "more" / "broken.jpg").write_bytes((root / "p00.jpg").read_bytes()[:300])
    (root / "notes.txt").write_text("not a picture")
    return root


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("atlas") / "pictures")


@pytest.fixture(scope="module")
def collection(pictures, model) -> atlas.Collection:
    return atlas.collect(pictures, LAYER, positions=4, side=SIDE, model=model)


def test_collection_reads_every_picture_and_lists_what_it_skipped(collection, pictures):
    assert len(collection.files) == 17  # 16 pictures and the damaged one; the text file is not a picture
    assert collection.skipped == [("more/broken.jpg", collection.skipped[0][1])]
    assert "damaged or truncated" in collection.skipped[0][1]
    assert len(collection) == 16 * 4 and collection.vectors.shape == (64, 80)
    assert collection.grid == (4, 4)
    assert set(collection.picture.tolist()) == set(range(17)) - {collection.files.index("more/broken.jpg")}
    assert collection.attributions.shape == (64, 1000) and collection.attributions.dtype == np.float16
    for picture in set(collection.picture.tolist()):  # positions are distinct within each picture
        places = {tuple(p) for p in collection.position[collection.picture == picture].tolist()}
        assert len(places) == 4


def test_vectors_are_the_layers_activations_at_their_positions(collection, model):
    index = int(collection.picture[5])
    square = folders.Scan(Path(collection.root), collection.files, SIDE).square(index)
    from dreamscope.io import images

    with torch.no_grad():
        act = render.activations(model, [LAYER], images.to_tensor(square))[LAYER][0]
    for member in np.flatnonzero(collection.picture == index):
        row, col = collection.position[member]
        assert np.allclose(collection.vectors[member], act[:, row, col].numpy(), rtol=1e-4, atol=1e-4)  # batch of 16 vs 1


def test_attribution_is_the_class_evidence_at_the_vectors_place(collection, model):
    """Each vector's attribution: how the logits move when the last layer's activation at the position covering
    it grows, in its own picture. With global average pooling and a linear classifier that is exact, so the
    shares of all positions add up to the logits less the bias."""
    from dreamscope.io import images

    assert atlas.evidence_layer(model) == "head"
    member = 9
    index, (row, col) = int(collection.picture[member]), collection.position[member]
    x = images.to_tensor(folders.Scan(Path(collection.root), collection.files, SIDE).square(index))
    with torch.no_grad():
        head = render.activations(model, ["head"], x)["head"][0]  # (1280, 2, 2) at 64 px; stage4.2 is 4x4
    place = head[:, row * 2 // 4, col * 2 // 4]
    fc = model.net._fc
    expected = fc.weight @ place / (head.shape[1] * head.shape[2])
    recorded = torch.from_numpy(collection.attributions[member].astype(np.float32))
    assert torch.allclose(recorded, expected, rtol=1e-2, atol=2e-3 * float(expected.abs().max()))  # stored as float16
    with torch.no_grad():
        logits = render.activations(model, [LOGITS], x)[LOGITS][0]
    shares = sum(fc.weight @ head[:, r, c] for r in range(2) for c in range(2)) / 4
    assert torch.allclose(shares + fc.bias, logits, atol=1e-3)


def test_shards_and_lists_of_files_give_the_same_collection(collection, pictures, model):
    parts = [atlas.collect(pictures, LAYER, positions=4, side=SIDE, model=model, shard=(i, 3)) for i in range(3)]
    joined = atlas.Collection.concatenate(parts)

    def rows(c):
        order = sorted(range(len(c)), key=lambda i: (c.files[c.picture[i]], tuple(c.position[i])))
        return [(c.files[c.picture[i]], tuple(c.position[i])) for i in order], c.vectors[order], c.attributions[order]

    (places, vectors, pushed), (places_all, vectors_all, pushed_all) = rows(joined), rows(collection)
    assert places == places_all
    assert np.array_equal(vectors, vectors_all) and np.array_equal(pushed, pushed_all)  # every batch has one shape
    assert sorted(joined.skipped) == sorted(collection.skipped)
    listed = atlas.collect(sorted(pictures.rglob("p0[0-3].jpg")), LAYER, positions=4, side=SIDE, model=model)
    assert len(listed) == 16 and len(listed.files) == 4


def test_the_collection_runs_as_batch_work_in_shards_and_a_rerun_keeps_them(collection, pictures, tmp_path, monkeypatch):
    from dreamscope.events import run as run_events
    from dreamscope.settings import AtlasSettings
    from dreamscope.work import atlas as atlas_work
    from dreamscope.work import batch

    monkeypatch.setattr(batch, "SHARD_PICTURES", 7)  # the folder's 18 files: 3 shards
    settings = AtlasSettings(layer=LAYER, positions=4, side=SIDE)
    items = atlas_work.collection_items(pictures, settings, tmp_path / "parts")
    assert len(items) == 3
    done = run_events(batch.run_batch(items, batch.InlineEngine()))
    assert done.count("done") == 3
    joined = atlas_work.join_parts(items)

    def places(c):
        return sorted((c.files[p], tuple(q)) for p, q in zip(c.picture.tolist(), c.position.tolist()))

    assert places(joined) == places(collection) and sorted(joined.skipped) == sorted(collection.skipped)
    assert np.allclose(np.sort(joined.vectors, axis=0), np.sort(collection.vectors, axis=0), atol=1e-4)
    again = run_events(batch.run_batch(items, batch.InlineEngine()))
    assert again.count("skipped") == 3
    other = atlas_work.collection_items(pictures, settings.replace(seed=1), tmp_path / "parts")
    assert run_events(batch.run_batch(other, batch.InlineEngine())).count("done") == 3  # other positions: collected again


def test_a_collection_survives_saving(collection, tmp_path):
    again = atlas.Collection.load(collection.save(tmp_path / "c.npz"))
    assert again.files == collection.files and again.skipped == collection.skipped and again.grid == collection.grid
    assert np.array_equal(again.vectors, collection.vectors) and np.array_equal(again.attributions, collection.attributions)
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(DreamscopeError, match="cannot read collection"):
        atlas.Collection.load(tmp_path / "bad.npz")


def test_cells_bin_the_layout_and_keep_only_full_ones():
    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.normal((0, 0), 0.05, (50, 2)), rng.normal((1, 1), 0.05, (50, 2)), [[0.0, 1.0]]])
    cells = atlas.bin_cells(coords, 4, min_count=3)
    assert sum(c.count for c in cells) == 100  # the lone point's cell stays empty
    corners = {(c.row, c.col) for c in cells if c.count >= 20}
    assert (3, 0) in corners and (0, 3) in corners  # y up: the (0, 0) cluster is bottom left
    assert all(np.all(np.diff(c.members) > 0) for c in cells)


def test_layout_puts_like_vectors_together(collection):
    coords = atlas.layout(collection.vectors, seed=0, neighbours=8)
    assert coords.shape == (64, 2) and np.isfinite(coords).all()
    assert np.array_equal(coords, atlas.layout(collection.vectors, seed=0, neighbours=8))  # seeded
    # a vector's nearest neighbour on the map is closer to it in the layer than a random vector is
    unit = collection.vectors / np.linalg.norm(collection.vectors, axis=1, keepdims=True)
    distance = ((coords[:, None] - coords[None]) ** 2).sum(-1) + np.eye(64) * 1e9
    nearest = distance.argmin(1)
    assert (unit * unit[nearest]).sum(1).mean() > (unit @ unit.T).mean() + 0.05


def test_icons_point_the_layer_along_their_directions(collection, model):
    directions = np.stack(
        [collection.vectors[collection.picture == p].mean(0) for p in sorted(set(collection.picture.tolist()))[:3]]
    )
    events = list(atlas.render_icons_iter(model, LAYER, directions, size=64, steps=30, seed=0, batch=2))
    icons = events[-1].result
    assert len(icons) == 3 and all(icon.size == (64, 64) for icon in icons)
    assert [e.stages[0].index for e in events[:-1]][-1] == 3
    from dreamscope.io import images

    with torch.no_grad():
        acts = render.activations(model, [LAYER], torch.cat([images.to_tensor(i) for i in icons]))[LAYER]
        noise = render.activations(model, [LAYER], torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)))[LAYER]
    target = torch.nn.functional.normalize(torch.as_tensor(directions, dtype=torch.float32), dim=1)

    def cosine(a):
        return (torch.nn.functional.normalize(a.mean((2, 3)), dim=1) * target).sum(1)

    # seeds 0-4: icons 0.59-0.76, noise at most 0.16
    assert (cosine(acts) > cosine(noise) + 0.3).all()
    assert (cosine(acts) > 0.5).all()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "script") and attrs.get("src"):
            self.sources.append(attrs["src"])
        if tag == "a" and attrs.get("href") and not attrs["href"].startswith("#"):
            self.sources.append(attrs["href"])


SMALL = [
    "--layer",
    LAYER,
    "--side",
    str(SIDE),
    "--positions",
    "4",
    "--grid",
    "3",
    "--min-count",
    "2",
    "--icon-size",
    "32",
    "--icon-steps",
    "4",
    "--neighbours",
    "8",
    "-q",
]


@pytest.fixture(scope="module")
def made(pictures, run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("made") / "atlas"
    result = run_cli("atlas", str(pictures), "-o", str(out), *SMALL)
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_atlas_folder_holds_a_picture_a_page_and_the_data(made):
    out, result = made
    assert "skipped 1 file(s) that could not be read: more/broken.jpg" in result.stderr
    assert re.search(r"wrote .*index\.html \(atlas of \d+ cells from 64 vectors of 16 pictures\)", result.stderr)
    data = json.loads((out / "atlas.json").read_text())
    assert data["kind"] == "atlas" and data["vectors"] == 64 and data["pictures"] == 16
    assert data["skipped"][0]["file"] == "more/broken.jpg"
    assert sum(cell["count"] for cell in data["cells"]) <= 64 and all(cell["count"] >= 2 for cell in data["cells"])
    assert all(len(cell["top_classes"]) == 5 for cell in data["cells"])
    atlas_png = Image.open(out / "atlas.png")
    assert atlas_png.size == (3 * 32, 3 * 32)
    for cell in data["cells"]:
        tile = np.asarray(atlas_png.crop((cell["col"] * 32, cell["row"] * 32, cell["col"] * 32 + 32, cell["row"] * 32 + 32)))
        assert np.array_equal(tile, np.asarray(Image.open(out / cell["icon"]).convert("RGB")))
        files = [e["file"] for e in cell["exemplars"]]
        assert len(files) == len(set(files)) and 1 <= len(files) <= 6  # each from a different picture
        assert all((out / e["patch"]).is_file() for e in cell["exemplars"])
    page = _Page()
    page.feed((out / "index.html").read_text())
    assert "atlas.png" in page.sources and "collection.npz" in page.sources
    assert all((out / source).is_file() for source in page.sources)
    assert not any(name.startswith(".") for name in (p.name for p in out.parent.iterdir()))  # no staging left
    import dreamscope as ds

    record = ds.read_record(out)  # the record rides in atlas.png
    assert record.settings.grid == 3 and record.settings.layer == LAYER and record.model["name"] == "efficientnet-lite0"


def test_a_class_atlas_and_a_comparison_from_the_saved_collection(made, model, tmp_path):
    from dreamscope.pages import atlas as atlas_report

    out, _ = made
    collection = atlas.Collection.load(out / "collection.npz")
    small = dict(layer=LAYER, grid=3, min_count=2, icon_size=32, icon_steps=4, neighbours=8, keep=0.5)
    tabby = atlas.atlas(collection=collection, model=model, class_name="tabby", **small)
    assert tabby.kind == "class atlas" and tabby.classes == ["tabby"] and len(tabby.selected) <= 32
    push = collection.attributions[:, 281].astype(np.float32)  # tabby
    assert push[tabby.selected].min() > 0 and push[tabby.selected].min() >= np.sort(push)[-32]  # the hardest pushers
    assert all(set(cell.strength) == {"tabby"} for cell in tabby.cells)
    both = atlas.atlas(collection=collection, model=model, compare="tabby,space shuttle", **small)
    atlas_report.write_atlas(both, tmp_path / "vs")
    data = json.loads((tmp_path / "vs" / "atlas.json").read_text())
    assert data["kind"] == "comparison" and Image.open(tmp_path / "vs" / "atlas.png").width > 2 * 3 * 32
    favours = {cell["favours"] for cell in data["cells"]} - {None}
    assert favours and favours <= {"tabby", "space shuttle"}
    for cell in data["cells"]:
        if cell["favours"] == "tabby":
            assert cell["strength"]["tabby"] > cell["strength"]["space shuttle"]
    assert (
        atlas_report.unrelated(tmp_path / "vs", "tabby", "space shuttle")
        == min(data["cells"], key=lambda c: max(c["strength"].values()))["name"]
    )


def test_an_atlas_that_cannot_be_drawn_names_only_the_flags_that_apply(collection, model, tmp_path, capsys):
    """The library names settings by field, the command line as flags; --keep is named only to a class atlas, the
    one kind it applies to (a plain atlas was once told "a larger --keep", and too few pushing vectors "a larger
    keep")."""
    import dataclasses

    from dreamscope import cli
    from dreamscope.work.flags import flag_of

    small = dict(layer=LAYER, grid=3, icon_size=32, icon_steps=4, neighbours=8)
    # Every vector in one cell cannot be: the layout's extremes fall in different cells of a grid of 3.
    with pytest.raises(DreamscopeError) as plain:
        atlas.atlas(collection=collection, model=model, min_count=len(collection), **small)
    assert plain.value.worded(flag_of) == (
        f"no cell of the 3x3 grid holds {len(collection)} of the {len(collection)} vectors; use a smaller --grid or "
        "--min-count, or more pictures"
    )
    with pytest.raises(DreamscopeError) as one_class:  # at most 32 vectors kept, never all in one cell
        atlas.atlas(collection=collection, model=model, class_name="tabby", keep=0.5, min_count=32, **small)
    assert one_class.value.worded(flag_of).endswith("use a smaller --grid or --min-count, a larger --keep, or more pictures")
    assert str(one_class.value).endswith("use a smaller grid or min_count, a larger keep, or more pictures")  # the fields

    pushed = collection.attributions.copy()
    pushed[:, 281] = -1  # tabby: three vectors push toward it, no more
    pushed[:3, 281] = 1
    few = dataclasses.replace(collection, attributions=pushed).save(tmp_path / "few.npz")
    assert cli.main(["atlas", str(few), "--class", "tabby", "-o", str(tmp_path / "out"), *SMALL]) == 1
    assert capsys.readouterr().err == (
        "error: only 3 activation vectors push toward the class: too few for an atlas; give more pictures (of that "
        "class or like it) or a larger --keep\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_min_count_no_cell_can_reach_is_refused_before_the_collection(pictures, collection, model, tmp_path, capsys):
    """Where the numbers tell (pictures x positions, a class atlas's share of them, a collection's size), the refusal
    comes when the atlas is asked for, not after the collection and the layout: the runs raise on the call itself,
    before their first event."""
    from dreamscope import cli
    from dreamscope.errors import SettingsError
    from dreamscope.settings import AtlasSettings
    from dreamscope.work import atlas as atlas_work
    from dreamscope.work import batch
    from dreamscope.work.flags import flag_of
    from dreamscope.work.jobs import Job

    over = dict(layer=LAYER, side=SIDE, positions=4, min_count=69)  # 17 picture files at 4 positions: 68 at most
    with pytest.raises(SettingsError) as caught:
        atlas.atlas_iter(pictures, model=model, **over)
    assert caught.value.field == "min_count"
    with pytest.raises(SettingsError):  # the job, collecting in shards on an engine or here
        atlas_work.atlas_job(Job(AtlasSettings(**over), str(tmp_path / "a"), {"folder": str(pictures)}), model=model)
    with pytest.raises(SettingsError):
        atlas_work.atlas_job(
            Job(AtlasSettings(**over), str(tmp_path / "a"), {"folder": str(pictures)}), model=model, engine=batch.InlineEngine()
        )
    assert cli.main(["atlas", str(pictures), "-o", str(tmp_path / "out"), *SMALL, "--min-count", "69"]) == 2
    assert capsys.readouterr().err == (
        "error: --min-count of 69 is more than any cell can hold: at most 68 vectors from 17 pictures at --positions 4; "
        "use a smaller --min-count, a larger --positions or more pictures\n"
    )
    with pytest.raises(SettingsError) as share:  # a class atlas keeps a quarter of the collection's 64: 16
        atlas.atlas_iter(collection=collection, model=model, layer=LAYER, class_name="tabby", keep=0.25, min_count=17)
    assert share.value.worded(flag_of) == (
        "--min-count of 17 is more than any cell can hold: the collection holds 64 vectors, of which a class atlas keeps "
        "at most 16 (--keep 0.25); use a smaller --min-count or a larger --keep"
    )
    with pytest.raises(SettingsError, match="min_count of 65 is more than any cell can hold: the collection holds 64"):
        atlas.atlas_iter(collection=collection, model=model, layer=LAYER, min_count=65)
    atlas.check_counts(AtlasSettings(**{**over, "min_count": 68}), pictures=17)  # what might fit is left to the layout
    assert not (tmp_path / "out").exists() and not (tmp_path / "a").exists()


MISTAKES = {
    "missing folder": (["missing-folder"], "folder not found: missing-folder"),
    "no pictures": (["empty"], "no pictures in folder empty"),
    "unknown layer": (["{pictures}", "--layer", "stage9"], "--layer names 'stage9'"),
    "unknown class": (["{pictures}", "--class", "not a class"], "not a class"),
    "one class to compare": (["{pictures}", "--compare", "tabby"], "--compare must name two different classes"),
    "class and compare": (["{pictures}", "--class", "tabby", "--compare", "tabby,tiger cat"], "cannot be combined"),
    "grid too small": (["{pictures}", "--grid", "1"], "--grid"),
    "not an atlas folder": (["{pictures}", "-o", "mine"], "holds no dreamscope report"),
    "shard out of range": (["{pictures}", "--shard", "2/2", "-o", "s.npz"], "--shard 2/2 does not exist"),
    "shard not I/N": (["{pictures}", "--shard", "half", "-o", "s.npz"], "--shard must be I/N"),
    "shard with a layout setting": (
        ["{pictures}", "--shard", "0/2", "-o", "s.npz", "--class", "tabby"],
        "--class does not apply to --shard",
    ),
    "shard to a picture": (["{pictures}", "--shard", "0/2", "-o", "s.png"], "-o names the .npz file"),
    "folder and collection": (["{pictures}", "c.npz"], "not both"),
}


def test_bad_input_is_one_line_and_writes_nothing(pictures, tmp_path):
    """Each mistake stops before any work (in one interpreter, one after another): one line, nothing written."""
    from conftest import USAGE_DRIVER, CliResult, run_python

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    jobs = [
        [
            str(tmp_path),
            ["atlas", *(SHARD if "--shard" in args else SMALL), *(a.format(pictures=pictures) for a in args)]
            + (["-o", "out"] if "-o" not in args else []),
        ]
        for args, _ in MISTAKES.values()
    ]
    driver = run_python("-c", USAGE_DRIVER, json.dumps(jobs))
    assert driver.returncode == 0, driver.stderr
    for (name, (_, message)), result in zip(MISTAKES.items(), (CliResult(*r) for r in json.loads(driver.stdout))):
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
            name,
            result,
        )
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("s.*"))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["keep.txt"]


def test_shards_from_the_command_line_join_into_the_whole_folders_atlas(made, pictures, tmp_path):
    """`--shard I/N -o part.npz` on separate runs (machines), then the parts together: the same vectors as the
    atlas made from the folder in one go."""
    import contextlib
    import io

    from dreamscope import cli

    out, _ = made
    parts = [tmp_path / f"part{i}.npz" for i in range(3)]
    for i, part in enumerate(parts):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            assert cli.main(["atlas", str(pictures), "--shard", f"{i}/3", "-o", str(part), *SHARD]) == 0
        assert f"shard {i} of 3" in err.getvalue()
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["atlas", *map(str, parts), "-o", str(tmp_path / "joined"), *SMALL]) == 0
    whole, joined = (atlas.Collection.load(folder / "collection.npz") for folder in (out, tmp_path / "joined"))
    # Row for row the whole folder's collection (shards once joined in shard order, which UMAP laid out otherwise)
    assert joined.files == whole.files and joined.skipped == whole.skipped and len(joined.skipped) == 1
    assert np.array_equal(joined.picture, whole.picture) and np.array_equal(joined.position, whole.position)
    assert np.array_equal(joined.vectors, whole.vectors)  # every batch one shape: the same bits in any shard
    layout = [json.loads((folder / "atlas.json").read_text()) for folder in (out, tmp_path / "joined")]
    assert layout[0]["pictures"] == layout[1]["pictures"] == 16
    assert [(c["name"], c["count"]) for c in layout[0]["cells"]] == [(c["name"], c["count"]) for c in layout[1]["cells"]]
    shuffled = atlas.Collection.concatenate([atlas.Collection.load(part) for part in reversed(parts)])
    assert shuffled.files == whole.files and np.array_equal(shuffled.picture, whole.picture)


SHARD = ["--layer", LAYER, "--side", str(SIDE), "--positions", "4", "-q"]


def test_positions_depend_only_on_the_seed_and_the_picture():
    a = atlas._positions(0, "a/b.jpg", (14, 14), 10)
    assert torch.equal(a, atlas._positions(0, "a/b.jpg", (14, 14), 10))
    assert not torch.equal(a, atlas._positions(1, "a/b.jpg", (14, 14), 10))
    assert not torch.equal(a, atlas._positions(0, "a/c.jpg", (14, 14), 10))
    assert len(atlas._positions(0, "x", (3, 3), 50)) == 9  # a small grid gives all it has
    rows, cols = np.divmod(atlas._positions(0, "x", (14, 14), 144).numpy(), 14)
    assert rows.min() == cols.min() == 1 and rows.max() == cols.max() == 12  # away from the zero-padded border


def test_patch_boxes_stay_inside_the_picture():
    assert folders.patch_box(0, 0, (14, 14), 224, 64) == (0, 0, 64, 64)
    assert folders.patch_box(13, 13, (14, 14), 224, 64) == (160, 160, 224, 224)
    assert folders.patch_box(7, 7, (14, 14), 224, 64) == (88, 88, 152, 152)
    with pytest.raises(DreamscopeError, match="shard 3/3 does not exist"):
        folders.scan(["a.jpg"], 64, shard=(3, 3))


def test_the_page_zooms_and_shows_a_cell_in_chromium(made):
    """Opened from disk in real Chromium: no console errors or failed or outside requests; hovering a cell shows
    its count, classes and exemplar pictures (all loaded); the zoom button zooms."""
    from browser import CHROMIUM_ARGS, Watch, chromium_binary, needs_playwright

    needs_playwright()
    from playwright.sync_api import sync_playwright

    out, _ = made
    data = json.loads((out / "atlas.json").read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            watch = Watch(page, "file://")
            page.goto((out / "index.html").as_uri())
            page.wait_for_load_state("load")
            cells = page.locator(".cell")
            assert cells.count() == len(data["cells"])
            biggest = max(range(len(data["cells"])), key=lambda i: data["cells"][i]["count"])
            cells.nth(biggest).hover()
            details = page.locator("#details")
            details.locator("text=fell here").wait_for(timeout=5_000)
            assert f"{data['cells'][biggest]['count']} activation vector" in details.inner_text()
            assert data["cells"][biggest]["top_classes"][0]["class"] in details.inner_text()
            pictures = details.locator("img")
            assert pictures.count() == 1 + len(data["cells"][biggest]["exemplars"])
            page.wait_for_function(
                "() => [...document.querySelectorAll('#details img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            before = page.locator("#map").evaluate("m => m.getBoundingClientRect().width")
            page.click("#zoom-in")
            after = page.locator("#map").evaluate("m => m.getBoundingClientRect().width")
            assert after == pytest.approx(1.5 * before, rel=0.01)
            assert page.locator("#zoom-level").inner_text() == "150%"
            assert watch.unexpected() == []
        finally:
            browser.close()
