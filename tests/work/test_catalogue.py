"""A new recipe is one module and one registration: a toy recipe, registered here and nowhere else, is a command of
the CLI (with its flags, help and errors), is spelled by `command_line`, runs as a Job to a file carrying its record,
runs over a folder with `batch`, and is offered by the studio's /api/info and run by its worker. Every registered
run, check, job, page writer and batch task ("module:function" strings, which import tools cannot follow) loads."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image, ImageEnhance

import dreamscope as ds
from conftest import chelsea
from dreamscope import settings as S
from dreamscope.events import Event, Run, Stage, finish
from dreamscope.io import provenance
from dreamscope.recipes import base
from dreamscope.work import batch, catalogue, jobs
from dreamscope.work.flags import command_line


@dataclass(frozen=True)
class ToySettings(S.Settings):
    """Brighten a photo (a toy recipe for the test of registration)."""

    recipe: ClassVar[str] = "toy"

    brightness: float = S.setting(1.5, S.Number(0.0, 4.0), "how much brighter")


def toy_iter(image: Image.Image, settings: ToySettings | None = None, *, model=None, device=None, **fields) -> Run:
    settings, net = base.prepare(ToySettings, settings, fields, model, device)
    record = provenance.make(settings, net, {"input": image})

    def events():
        yield Event((Stage("step", 1, 1),), 0.5)
        picture = ImageEnhance.Brightness(image.convert("RGB")).enhance(settings.brightness)
        yield finish(picture, note=f"brightness {settings.brightness:g}")

    return Run(events(), settings, record, net)


def toy_check(settings: ToySettings, model, sizes=None) -> None:
    if settings.brightness == 0.0:
        raise S.SettingsError("brightness", "of 0 makes a black picture; give more")


TOY = catalogue.Recipe(
    "toy",
    ToySettings,
    run=f"{__name__}:toy_iter",
    check=f"{__name__}:toy_check",
    inputs=(catalogue.Input("input", required=True, help="picture to brighten", label="Photo", param="image"),),
    output=catalogue.Output("picture", "where to write it (default: INPUT_toy.png)", catalogue.beside_input("_toy.png")),
    batch=True,
    help="brighten a photo",
    description="Brighten a photo, as a test.",
    batch_help="brighten every picture",
    form=catalogue.Form("Toy", "Brighten", "Make a photo brighter.", ("brightness",)),
)


@pytest.fixture(autouse=True)
def registered():
    catalogue.register(TOY)
    yield
    catalogue.unregister("toy")


@pytest.fixture(scope="module", autouse=True)
def forgotten():
    yield
    S.RECIPES.pop("toy", None)  # the settings class registered itself when this module was imported


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "photo.png"
    chelsea().save(path)
    return path


def test_the_cli_offers_it_with_its_flags_help_and_errors(photo_file, capsys):
    from dreamscope.cli import build_parser, main

    assert "brighten a photo" in build_parser().format_help()
    assert main(["toy", str(photo_file), "--brightness", "2", "-q"]) == 0
    made = photo_file.with_name("photo_toy.png")
    assert "wrote" in capsys.readouterr().err and made.is_file()
    assert provenance.read(made).settings == ToySettings(brightness=2.0)
    assert main(["toy", str(photo_file), "--brightness", "0", "-q"]) == 2  # its own check, worded as a flag
    assert "--brightness of 0 makes a black picture" in capsys.readouterr().err
    assert main(["toy", str(photo_file), "--octaves", "2"]) == 2  # a flag of another recipe is refused


def test_command_line_spells_it(photo_file):
    job = jobs.Job(ToySettings(brightness=0.5), "out.png", {"input": str(photo_file)})
    assert command_line(job) == f"dreamscope toy {photo_file} -o out.png --brightness 0.5"


def test_it_runs_as_a_job_and_redoes_to_the_same_bytes(photo_file, tmp_path):
    output = tmp_path / "bright.png"
    done = ds.run_job(jobs.Job(ToySettings(brightness=1.2), str(output), {"input": str(photo_file)})).result()
    assert done == str(output) and Image.open(output).getpixel((5, 5)) != chelsea().getpixel((5, 5))
    again = ds.redo(output).result()
    assert ds.redo.__module__ == "dreamscope.work.redo" and Path(again).read_bytes() == output.read_bytes()
    with pytest.raises(ds.SettingsError, match="brightness"):
        jobs.check(jobs.Job(ToySettings(brightness=0.0), None, {"input": str(photo_file)}))


def test_batch_runs_it_over_a_folder(tmp_path, capsys):
    from dreamscope.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        chelsea().save(folder / f"{name}.png")
    assert main(["batch", "toy", str(folder), "-o", str(tmp_path / "out"), "--workers", "0", "--brightness", "0.5", "-q"]) == 0
    assert "2 toy outputs" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "batch.json"]
    assert provenance.read(tmp_path / "out" / "a.png").settings == ToySettings(brightness=0.5)


def test_the_studio_offers_it_and_runs_it(tmp_path, model):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from dreamscope.studio.app import Studio, create_app

    with TestClient(create_app(Studio(tmp_path / "studio", model)), base_url="http://127.0.0.1:8765") as client:
        offered = client.get("/api/info").json()["recipes"]["toy"]
        assert offered["form"]["tab"] == "Toy" and offered["inputs"] == ["input"] and offered["output"] == "picture"
        assert [field["name"] for field in offered["fields"]] == ["seed", "brightness"]
        upload = client.post("/api/uploads", files={"file": ("cat.png", _png(), "image/png")}).json()
        refused = client.post(
            "/api/jobs", json={"recipe": "toy", "settings": {"brightness": 0}, "inputs": {"input": upload["id"]}}
        )
        assert refused.status_code == 422 and refused.json()["detail"]["field"] == "brightness"
        made = client.post("/api/jobs", json={"recipe": "toy", "settings": {"brightness": 2}, "inputs": {"input": upload["id"]}})
        assert made.status_code == 201, made.text
        job = _wait(client, made.json()["id"])
        assert job["state"] == "done", job
        assert client.get(job["result"]["files"][0]["url"]).status_code == 200


def _png() -> bytes:
    import io

    buffer = io.BytesIO()
    chelsea().save(buffer, format="PNG")
    return buffer.getvalue()


def _wait(client, job_id: str, timeout: float = 60) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def test_every_registered_function_and_batch_task_loads():
    import dreamscope.work.atlas
    import dreamscope.work.microscope  # noqa: F401

    named = [
        name
        for recipe in catalogue.RECIPES.values()
        for name in (recipe.run, recipe.check, recipe.job, recipe.output.write, recipe.output.name)
        if isinstance(name, str)
    ]
    assert len(named) > 20
    for name in named:
        assert callable(catalogue.function(name)), name
    assert len(batch.TASKS) >= 8
    for name, task in batch.TASKS.items():
        assert catalogue.function(name) is task, name  # what a worker in another process will import by this name


def test_every_recipe_names_the_settings_that_need_less_memory():
    """Out of memory says what to reduce (jobs.out_of_memory words the record's `lower`), for every recipe."""
    from dreamscope.work.flags import flag_of

    for recipe in catalogue.RECIPES.values():
        if recipe is not TOY:  # this module's toy, registered for each test
            assert recipe.lower and set(recipe.lower) <= set(recipe.settings.field_names()), recipe.name
    assert jobs.out_of_memory(MemoryError(), "classify").worded(flag_of) == "out of memory; use a smaller --model"


def test_registering_needs_the_matching_settings():
    with pytest.raises(ValueError, match="recipe must be 'other'"):
        catalogue.register(catalogue.Recipe("other", ToySettings, run=f"{__name__}:toy_iter"))
    assert json.dumps(sorted(catalogue.RECIPES))  # names only, plain data
