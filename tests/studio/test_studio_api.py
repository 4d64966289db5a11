"""The studio's HTTP API in-process (FastAPI's test client over the real app, worker thread, SQLite and model):
uploads are sniffed and checked, jobs run to files that carry their record, mistakes are 4xx naming the field,
cancelling leaves no result, the guard refuses foreign hosts, origins and missing tokens, and a bounded
schemathesis run finds no 5xx anywhere in the schema."""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import shutil
import time
import warnings
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the studio extra is not installed: pip install -e '.[studio]'")

with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx is what this project installs
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from conftest import chelsea, pan_frames, write_clip
from dreamscope.io import provenance, videos
from dreamscope.studio.app import Studio, create_app
from dreamscope.studio.uploads import Limits
from dreamscope.studio.worker import ENDED_KEEP, GIF_SIDE, Worker

BASE = "http://127.0.0.1:8765"
QUICK = {"max_size": 96, "octaves": 2, "steps": 2, "layer": "stage3.1"}
SLOW = {"max_size": 96, "octaves": 2, "steps": 400, "layer": "stage3.1"}  # runs until it is cancelled


def png_bytes(picture=None) -> bytes:
    buffer = io.BytesIO()
    (picture or chelsea()).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, data: bytes, name: str = "cat.png", content_type: str = "image/png"):
    return client.post("/api/uploads", files={"file": (name, data, content_type)})


def wait(client, job_id: str, until=("done", "failed", "cancelled"), timeout: float = 90, check=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in until and (check is None or check(job)):
            return job
        assert job["state"] not in ("failed",) or "failed" in until, job["error"]
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s: {job}"
        time.sleep(0.05)


def detail(response) -> dict:
    body = response.json()
    assert set(body) == {"detail"} and set(body["detail"]) == {"field", "message"}, body
    assert "\n" not in body["detail"]["message"] and "Traceback" not in body["detail"]["message"]
    return body["detail"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory, model):
    made = Studio(tmp_path_factory.mktemp("studio"), model, host="127.0.0.1", port=8765)
    with TestClient(create_app(made), base_url=BASE) as client:
        yield client, made


@pytest.fixture(scope="module")
def client(studio):
    return studio[0]


@pytest.fixture(scope="module")
def photo_id(client) -> str:
    made = upload(client, png_bytes())
    assert made.status_code == 201, made.text
    return made.json()["id"]


@pytest.fixture(scope="module")
def dream(client, photo_id) -> dict:
    made = client.post("/api/jobs", json={"recipe": "dream", "settings": QUICK, "inputs": {"input": photo_id}})
    assert made.status_code == 201, made.text
    return wait(client, made.json()["id"])


@pytest.fixture(scope="module")
def zoom(client, photo_id) -> dict:
    settings = {"frames": 2, "max_size": 64, "octaves": 1, "steps": 1, "fps": 4, "layer": "stage3.1"}
    made = client.post("/api/jobs", json={"recipe": "zoom", "settings": settings, "inputs": {"input": photo_id}})
    assert made.status_code == 201, made.text
    return wait(client, made.json()["id"])


def test_info_describes_the_model_recipes_presets_and_limits(client):
    info = client.get("/api/info").json()
    assert info["model"]["name"] == "efficientnet-lite0" and info["model"]["default_layer"] == "stage5.2"
    assert {"name": "stage3.1", "channels": 40, "stride": 8} in info["model"]["layers"]
    assert info["model"]["class_names"][954] == "banana"
    fields = {f["name"]: f for f in info["recipes"]["dream"]["fields"]}
    assert fields["octaves"] == {
        "name": "octaves",
        "default": 4,
        "help": fields["octaves"]["help"],
        "kind": "whole",
        "min": 1,
        "max": 50,
        "optional": False,
    }
    assert fields["tile"]["kind"] == "tile" and "model" not in fields and "weights" not in fields
    assert info["recipes"]["visualize"]["inputs"] == ["init"] and info["recipes"]["video"]["required"] == "input"
    assert {f["name"]: f for f in info["recipes"]["visualize"]["fields"]}["kind"]["options"] == [
        "class",
        "channel",
        "neuron",
        "channels",
    ]
    presets = {p["name"]: p for p in info["presets"]}
    assert {"gentle", "default", "deep", "strokes", "layers"} <= set(presets)
    assert presets["layers"] == {
        **presets["layers"],
        "recipe": "probe",
        "settings": {"channels": 0, "max_size": 192, "octaves": 2, "steps": 15},
    }
    assert presets["strokes"]["settings"]["layer"] == "stage3.1" and presets["deep"]["recipe"] == "dream"
    assert info["samples"] == ["astronaut", "chelsea", "coffee", "rocket"]
    assert (
        info["limits"] == {"picture_bytes": 50_000_000, "video_bytes": 500_000_000, "picture_pixels": 50_000_000}
        and info["device"] == "cpu"
    )


def test_a_dream_job_runs_to_a_picture_that_carries_its_record(client, photo_id, dream):
    assert dream["state"] == "done", dream
    assert dream["fraction"] == 1 and dream["attempts"] == 1 and dream["error"] is None and dream["output"] == "dream.png"
    assert dream["settings"]["steps"] == 2 and dream["settings"]["recipe"] == "dream" and dream["settings"]["jitter"] == 32
    assert dream["inputs"] == {"input": photo_id}
    url = f"/api/jobs/{dream['id']}/files/dream.png"
    assert dream["result"] == {"kind": "picture", "files": [{"name": "dream.png", "url": url, "label": "dream"}]}
    got = client.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(got.content)) as picture:
        picture.load()
        assert picture.size == (96, 72)
        dreamed = picture.convert("RGB")
    plain = chelsea().resize((96, 72), Image.LANCZOS)
    assert sum(abs(a - b) for a, b in zip(dreamed.tobytes(), plain.tobytes())) / len(plain.tobytes()) > 2  # it dreamed
    saved = Path(client.app.state.studio.data.job(dream["id"])) / "dream.png"
    assert saved.read_bytes() == got.content
    record = provenance.read(saved)
    assert record.settings.steps == 2 and record.settings.layer == "stage3.1" and record.model["name"] == "efficientnet-lite0"
    served = client.get(f"/api/jobs/{dream['id']}/record").json()
    assert served["seed"] == 0 and served["settings"]["max_size"] == 96 and served["inputs"]["input"]["size"] == [160, 120]


def test_again_makes_the_same_bytes(client, dream):
    made = client.post(f"/api/jobs/{dream['id']}/again")
    assert made.status_code == 201 and made.json()["parent"] == dream["id"] and made.json()["state"] == "queued"
    again = wait(client, made.json()["id"])
    assert again["state"] == "done" and again["settings"] == dream["settings"]
    first = client.get(dream["result"]["files"][0]["url"]).content
    assert client.get(again["result"]["files"][0]["url"]).content == first
    changed = client.post(f"/api/jobs/{dream['id']}/again", json={"settings": {"seed": 5}})
    assert changed.status_code == 201 and changed.json()["settings"]["seed"] == 5
    assert client.post(f"/api/jobs/{dream['id']}/again", json={"settings": {"octaves": 0}}).status_code == 422
    wait(client, changed.json()["id"])


def test_the_event_stream_sends_progress_then_end(client, dream):
    with client.stream("GET", f"/api/jobs/{dream['id']}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block for block in text.split("\n\n") if block.strip()]
    assert events[0].startswith("event: progress\ndata: ") and events[-1].startswith("event: end\ndata: ")
    assert json.loads(events[-1].split("data: ", 1)[1])["state"] == "done"


@pytest.mark.parametrize(
    "settings, field, words",
    [
        ({"octaves": 0}, "octaves", "octaves must be a whole number from 1 to 50"),
        ({"octavez": 3}, "octavez", "did you mean octaves"),
        ({"layer": "stage9.9"}, "layer", "not a layer of efficientnet-lite0"),
        ({"layer": 12}, "layer", "layer"),
        ({"step_size": "big"}, "step_size", "step_size must be a number"),
        ({"model": "googlenet"}, "model", "the server's"),
        ({"{x}": 1}, "settings", "not a setting"),
    ],
)
def test_a_bad_setting_is_422_naming_the_field(client, photo_id, settings, field, words):
    response = client.post("/api/jobs", json={"recipe": "dream", "settings": settings, "inputs": {"input": photo_id}})
    assert response.status_code == 422, response.text
    found = detail(response)
    assert found["field"] == field and words in found["message"], found


@pytest.mark.parametrize(
    "body, field",
    [
        ({"recipe": "paint"}, "recipe"),
        ({"recipe": "dream"}, "input"),
        ({"recipe": "dream", "inputs": {"input": "0" * 32}}, "input"),
        ({"recipe": "dream", "inputs": {"input": "../studio.sqlite3"}}, "input"),
        ({"recipe": "visualize", "settings": {"target": "not-a-class"}}, "target"),
        ({"recipe": "visualize", "settings": {"kind": "channel", "target": "stage3.1:999"}}, "target"),
        ({"recipe": "morph", "settings": {"classes": "banana"}}, "classes"),
        ({"recipe": "dream", "settings": [1, 2]}, "settings"),
        ({"recipe": "dream", "inputs": {"input": 5}}, "input"),
        ({"settings": {}}, "recipe"),
        ({"recipe": "probe", "settings": {"exemplar_folder": "/"}}, "exemplar_folder"),  # a folder on the server: CLI only
        ({"recipe": "probe", "settings": {"exemplar_count": 8}}, "exemplar_count"),
    ],
)
def test_a_bad_job_is_422_naming_what_to_fix(client, body, field):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    assert detail(response)["field"] == field


def test_the_forms_offer_no_folder_on_the_server(client):
    probe = {f["name"] for f in client.get("/api/info").json()["recipes"]["probe"]["fields"]}
    assert {"channels", "vis_steps"} <= probe and not probe & {"exemplar_folder", "exemplar_count"}


def test_a_body_that_is_not_json_is_422(client):
    response = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and detail(response)["field"] == "body"


def test_inputs_must_be_of_the_kind_the_recipe_takes(client, photo_id, tmp_path):
    write_clip(tmp_path / "clip.mp4", pan_frames(4))
    clip = upload(client, (tmp_path / "clip.mp4").read_bytes(), "clip.mp4", "video/mp4")
    assert clip.status_code == 201, clip.text
    assert clip.json() == {**clip.json(), "kind": "video", "name": "clip.mp4", "width": 96, "height": 64, "frames": 4}
    as_picture = client.post("/api/jobs", json={"recipe": "dream", "inputs": {"input": clip.json()["id"]}})
    assert as_picture.status_code == 422 and detail(as_picture)["field"] == "input" and "video" in detail(as_picture)["message"]
    as_video = client.post("/api/jobs", json={"recipe": "video", "inputs": {"input": photo_id}})
    assert as_video.status_code == 422 and "picture" in detail(as_video)["message"]
    wrong_role = client.post("/api/jobs", json={"recipe": "probe", "inputs": {"input": photo_id, "guide": photo_id}})
    assert wrong_role.status_code == 422 and detail(wrong_role)["field"] == "guide"
    served = client.get(f"/api/uploads/{clip.json()['id']}")
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert served.content == (tmp_path / "clip.mp4").read_bytes()


def test_an_upload_is_sniffed_by_content_and_stored_under_a_generated_name(client, studio):
    jpeg = io.BytesIO()
    chelsea().save(jpeg, format="JPEG")
    made = upload(client, jpeg.getvalue(), "../../evil name.png", "application/x-evil")
    assert made.status_code == 201
    row = studio[1].store.upload(made.json()["id"])
    assert made.json()["name"] == "evil name.png" and row.file == made.json()["id"] + ".jpg"
    assert client.get(f"/api/uploads/{row.id}").headers["content-type"] == "image/jpeg"
    assert client.get("/api/uploads/" + "0" * 32).status_code == 404
    assert client.get("/api/uploads/..%2Fstudio.sqlite3").status_code == 404


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "bomb"])
def test_a_bad_picture_upload_is_refused_with_one_line(client, studio, bad_pictures, kind):
    path = bad_pictures[kind]
    response = upload(client, path.read_bytes(), path.name, "image/jpeg" if path.suffix == ".jpg" else "image/png")
    assert 400 <= response.status_code < 500, response.text
    found = detail(response)
    assert found["field"] == "file" and ".part" not in found["message"] and str(studio[1].data.root) not in found["message"]
    assert not [p.name for p in studio[1].data.uploads.glob(".*")]  # the temporary file is gone


def test_an_upload_without_a_file_field_is_422(client):
    response = client.post("/api/uploads", files={"other": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 422 and detail(response)["field"] == "file"
    assert client.post("/api/uploads", json={"file": "x"}).status_code == 422


def test_an_upload_over_the_limit_is_413(tmp_path, model):
    small = Studio(tmp_path / "small", model, port=8765, limits=Limits(picture=20_000, video=20_000), run_worker=False)
    with TestClient(create_app(small), base_url=BASE) as client:
        big = png_bytes(chelsea((320, 240)))
        assert len(big) > 40_000
        response = upload(client, big)
        assert response.status_code == 413 and detail(response)["field"] == "file"
        assert "20 MB" not in detail(response)["message"] and "0.02 MB" in detail(response)["message"]
        head = b'--abc\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
        chunked = client.post(
            "/api/uploads",
            content=iter([head, big, big, b"\r\n--abc--\r\n"]),  # no Content-Length:
            headers={"content-type": "multipart/form-data; boundary=abc"},
        )  # counted as it comes
        assert chunked.status_code == 413
        assert upload(client, png_bytes(chelsea((40, 30)))).status_code == 201
    assert not list((tmp_path / "small" / "uploads").glob(".*"))


def test_files_of_a_job_cannot_be_reached_outside_its_result(client, dream):
    base = f"/api/jobs/{dream['id']}/files/"
    for path in [
        "..%2F..%2Fstudio.sqlite3",
        "%2e%2e/%2e%2e/studio.sqlite3",
        "../../studio.sqlite3",
        "%2Fetc%2Fpasswd",
        "dream.png%00.txt",
        ".dream.png.1234.part",
        "missing.png",
        "",
        "dream.png/..%2F..%2Fstudio.sqlite3",
    ]:
        response = client.get(base + path)
        assert response.status_code == 404, (path, response.status_code)
    assert client.get(base + "dream.png").status_code == 200


def test_unknown_jobs_are_404(client):
    unknown = "0123456789ab"
    for method, path in [
        ("GET", ""),
        ("POST", "/cancel"),
        ("POST", "/again"),
        ("DELETE", ""),
        ("GET", "/events"),
        ("GET", "/preview"),
        ("GET", "/record"),
        ("GET", "/files/dream.png"),
    ]:
        response = client.request(method, f"/api/jobs/{unknown}{path}")
        assert response.status_code == 404, (method, path, response.text)
        assert "no job" in detail(response)["message"]
    assert client.post(f"/api/jobs/{unknown}/continue", json={"frames": 2}).status_code == 404
    assert client.get("/api/jobs", params={"state": "sleeping"}).status_code == 422


def test_cancelling_a_running_job_stops_it_and_leaves_no_result(client, studio, photo_id):
    made = client.post("/api/jobs", json={"recipe": "dream", "settings": SLOW, "inputs": {"input": photo_id}}).json()
    running = wait(client, made["id"], until=("running",), check=lambda job: job["fraction"] > 0 and job["preview"])
    assert running["eta_s"] is None or running["eta_s"] >= 0
    preview = client.get(f"/api/jobs/{made['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(preview.content)) as picture:
        assert max(picture.size) <= 512
    response = client.post(f"/api/jobs/{made['id']}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    folder = studio[1].data.job(made["id"])
    assert studio[1].worker.wait_released(made["id"], 30)
    assert not list(folder.iterdir())
    assert client.get(f"/api/jobs/{made['id']}/files/dream.png").status_code == 404
    assert client.get(f"/api/jobs/{made['id']}").json()["state"] == "cancelled"
    kept = client.get(f"/api/jobs/{made['id']}/preview")  # its last preview outlives it
    assert kept.status_code == 200 and kept.headers["content-type"] == "image/jpeg"
    again = client.post(f"/api/jobs/{made['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in detail(again)["message"]


def test_cancelling_a_queued_job_and_deleting_jobs(client, studio, photo_id):
    first = client.post("/api/jobs", json={"recipe": "dream", "settings": SLOW, "inputs": {"input": photo_id}}).json()
    second = client.post("/api/jobs", json={"recipe": "dream", "settings": QUICK, "inputs": {"input": photo_id}}).json()
    assert client.post(f"/api/jobs/{second['id']}/cancel").json()["state"] == "cancelled"  # still queued behind the first
    assert next(job["id"] for job in client.get("/api/jobs", params={"state": "cancelled"}).json()) == second["id"]
    assert client.delete(f"/api/jobs/{first['id']}").status_code == 204  # running or queued: stopped, then removed
    assert client.get(f"/api/jobs/{first['id']}").status_code == 404
    assert studio[1].worker.wait_released(first["id"], 30)
    assert not studio[1].data.job(first["id"]).exists()
    assert all(job["id"] != first["id"] for job in client.get("/api/jobs").json())


def test_a_probe_job_lists_its_report_and_each_layers_dream(client, studio):
    named = upload(client, png_bytes(), "Tabby & me.png").json()
    settings = {"channels": 0, "max_size": 64, "octaves": 1, "steps": 1, "layers": "stage2.1,stage4.2"}
    made = client.post("/api/jobs", json={"recipe": "probe", "settings": settings, "inputs": {"input": named["id"]}})
    assert made.status_code == 201, made.text
    job = wait(client, made.json()["id"])
    assert job["state"] == "done", job["error"]
    result = job["result"]
    assert result["kind"] == "report" and result["files"][0]["name"] == "index.html"
    assert [(f["name"], f["label"]) for f in result["files"][1:]] == [
        ("dreams/01-stage2.1.jpg", "stage2.1"),
        ("dreams/02-stage4.2.jpg", "stage4.2"),
    ]
    page = client.get(result["files"][0]["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "stage4.2" in page.text
    # the photo is named as it was uploaded, not by the file the server stored it in
    shown = html.escape("Tabby & me.png")
    assert f"<title>What efficientnet-lite0 sees in {shown}</title>" in page.text and f"<em>{shown}</em>" in page.text
    assert studio[1].store.upload(named["id"]).file not in page.text  # nor by the server's paths in its command:
    assert html.escape("dreamscope probe 'Tabby & me.png' -o report/ --layers stage2.1,stage4.2") in page.text
    dream = client.get(result["files"][2]["url"])
    assert dream.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(dream.content)) as picture:
        picture.load()
    assert client.get(f"/api/jobs/{job['id']}/record").json()["recipe"] == "probe"


def test_a_zoom_continues_from_where_it_ended(client, studio, zoom, dream):
    assert zoom["state"] == "done", zoom["error"]
    assert zoom["result"]["kind"] == "video" and zoom["result"]["files"][0]["name"] == "zoom.mp4"
    assert client.post(f"/api/jobs/{zoom['id']}/continue", json={"frames": 0}).status_code == 422
    made = client.post(f"/api/jobs/{zoom['id']}/continue", json={"frames": 1})
    assert made.status_code == 201 and made.json()["settings"]["frames"] == 3 and made.json()["continues"]
    longer = wait(client, made.json()["id"])
    assert longer["state"] == "done", longer["error"]
    path = studio[1].data.job(longer["id"]) / "zoom.mp4"
    assert videos.open_video(path).frames == 3 and videos.open_video(studio[1].data.job(zoom["id"]) / "zoom.mp4").frames == 2
    assert client.get(longer["result"]["files"][0]["url"]).headers["content-type"] == "video/mp4"
    assert videos.open_video(studio[1].data.job(longer["id"]) / "zoom.gif").frames == 3  # its GIF is the whole zoom
    assert client.post(f"/api/jobs/{dream['id']}/continue", json={"frames": 2}).status_code == 409


def test_a_video_result_comes_as_mp4_and_gif(client, studio, zoom):
    assert zoom["state"] == "done", zoom["error"]
    files = zoom["result"]["files"]
    assert [(f["name"], f["label"]) for f in files] == [("zoom.mp4", "zoom"), ("zoom.gif", "GIF")]
    assert len(zoom["notes"]) == 1 and zoom["notes"][0].startswith("2 frames, 64x48, ")  # the summary the CLI prints
    folder = studio[1].data.job(zoom["id"])
    mp4, gif = videos.open_video(folder / "zoom.mp4"), videos.open_video(folder / "zoom.gif")  # each decodes whole
    assert mp4.frames == gif.frames == 2 and gif.size == mp4.size == (64, 48)
    served = client.get(files[1]["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/gif"
    assert served.content == (folder / "zoom.gif").read_bytes()
    assert provenance.read(folder / "zoom.gif").settings.frames == 2  # it carries the video's record
    assert sorted(p.name for p in folder.iterdir()) == ["zoom.gif", "zoom.mp4"]  # no temporary file left


def test_a_gif_is_at_most_gif_side_and_failing_costs_only_the_gif(studio, tmp_path, caplog):
    worker = Worker(studio[1].store, studio[1].data, studio[1].model)  # not started: its GIF maker alone
    write_clip(tmp_path / "wide.mp4", [frame.resize((640, 426)) for frame in pan_frames(3)])
    worker._write_gif("wide", tmp_path / "wide.mp4")
    made = videos.open_video(tmp_path / "wide.gif")
    assert made.frames == 3 and made.size == (GIF_SIDE, 320)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with caplog.at_level(logging.WARNING, logger="dreamscope.studio"):
        worker._write_gif("broken", tmp_path / "broken.mp4")  # no exception: the job would still be done
    assert "job broken: no GIF" in caplog.text and "Traceback" not in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "wide.gif", "wide.mp4"]


def test_an_ended_jobs_preview_is_kept_and_after_a_restart_a_picture_shows_its_result(client, studio, zoom):
    big = upload(client, png_bytes(chelsea((800, 600)))).json()["id"]
    settings = {"max_size": 640, "octaves": 1, "steps": 1, "layer": "stage3.1"}
    job = wait(
        client, client.post("/api/jobs", json={"recipe": "dream", "settings": settings, "inputs": {"input": big}}).json()["id"]
    )
    assert job["state"] == "done", job["error"]
    kept = client.get(f"/api/jobs/{job['id']}/preview", params={"v": 99})  # asked as the page would, just too late
    assert kept.status_code == 200 and kept.headers["content-type"] == "image/jpeg" and int(kept.headers["x-preview"]) >= 1
    assert client.get(f"/api/jobs/{zoom['id']}/preview").status_code == 200  # a video job's too
    # a restarted server keeps no previews: a done picture job shows its result, shrunk; a video job has none
    restarted = Studio(studio[1].data.root, studio[1].model, port=8765, run_worker=False)
    with TestClient(create_app(restarted), base_url=BASE) as again:
        shown = again.get(f"/api/jobs/{job['id']}/preview")
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg" and shown.headers["x-preview"] == "0"
        with Image.open(io.BytesIO(shown.content)) as picture:
            assert picture.format == "JPEG" and picture.size == (512, 384)
        assert again.get(f"/api/jobs/{job['id']}/preview").content == shown.content
        missing = again.get(f"/api/jobs/{zoom['id']}/preview")
        assert missing.status_code == 404 and "no preview" in detail(missing)["message"]
    # only the most recently ended jobs keep theirs
    worker = Worker(studio[1].store, studio[1].data, studio[1].model)
    for number in range(ENDED_KEEP + 1):
        worker.keep_preview(f"job{number}", 1, b"jpeg")
    assert worker.preview("job0") is None and worker.preview("job1") == (1, b"jpeg")


def test_too_many_octaves_for_the_picture_is_422_before_it_is_queued(client, photo_id, dream, tmp_path):
    queued = len(client.get("/api/jobs").json())
    tiny = upload(client, png_bytes(chelsea((40, 30)))).json()["id"]
    write_clip(tmp_path / "clip.mp4", pan_frames(2))
    clip = upload(client, (tmp_path / "clip.mp4").read_bytes(), "clip.mp4", "video/mp4").json()["id"]
    refused = [
        client.post("/api/jobs", json={"recipe": "dream", "settings": {"layer": "stage3.1"}, "inputs": {"input": tiny}}),
        client.post(
            "/api/jobs",
            json={"recipe": "zoom", "settings": {"octaves": 5, "layers": "stage2.1,stage4.2"}, "inputs": {"input": photo_id}},
        ),
        client.post("/api/jobs", json={"recipe": "video", "settings": {"octaves": 4}, "inputs": {"input": clip}}),
        client.post(
            "/api/jobs", json={"recipe": "probe", "settings": {"octaves": 6, "max_size": 96}, "inputs": {"input": photo_id}}
        ),
        client.post(f"/api/jobs/{dream['id']}/again", json={"settings": {"octaves": 6}}),
    ]
    for response in refused:
        assert response.status_code == 422, response.text
        found = detail(response)
        assert found["field"] == "octaves" and found["message"].startswith("octaves is too many for this"), found
    assert "96x72 px picture" in detail(refused[-1])["message"]  # the size the dream runs at (max_size 96)
    assert len(client.get("/api/jobs").json()) == queued  # none was queued


def test_a_sample_becomes_an_upload(client):
    made = client.post("/api/samples/coffee")
    assert made.status_code == 201 and made.json() == {**made.json(), "kind": "picture", "name": "coffee.png", "frames": 1}
    assert made.json()["width"] == 600 and made.json()["height"] == 400
    assert client.post("/api/samples/mona-lisa").status_code == 404


def test_the_guard_refuses_foreign_hosts_and_origins(client):
    assert client.get("/api/info", headers={"host": "evil.example:8765"}).status_code == 403  # DNS rebinding
    assert client.get("/api/info", headers={"host": "127.0.0.1:9999"}).status_code == 403
    refused = client.post("/api/samples/chelsea", headers={"origin": "http://evil.example"})
    assert refused.status_code == 403 and "another site" in detail(refused)["message"]
    assert client.get("/api/info", headers={"origin": "null"}).status_code == 403
    assert client.get("/api/info", headers={"origin": "http://["}).status_code == 403
    assert client.get("/api/info", headers={"host": "[::1"}).status_code == 403
    assert client.get("/api/info", headers={"origin": BASE}).status_code == 200
    assert client.get("/api/info", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/info").headers["x-content-type-options"] == "nosniff"


def test_a_token_is_required_when_set(tmp_path, model):
    guarded = Studio(tmp_path / "guarded", model, port=8765, token="s3cret-token", run_worker=False)
    with TestClient(create_app(guarded), base_url=BASE) as client:
        refused = client.get("/api/info")
        assert refused.status_code == 401 and "token" in detail(refused)["message"]
        assert client.get("/api/info", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/info", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
        opened = client.get("/?token=s3cret-token", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/api/info").status_code == 200  # the cookie now
        assert client.get("/api/info", headers={"host": "evil.example:8765"}).status_code == 403  # and the Host still


def test_no_server_errors_anywhere_in_the_schema(tmp_path, model):
    """A bounded schemathesis run (at most 50 examples an operation) over the OpenAPI schema: no 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error

    # No worker: a generated job that happens to be valid stays queued instead of dreaming.
    fuzzed = Studio(tmp_path / "fuzzed", model, port=8765, run_worker=False, extra_hosts=("testserver",))
    app = create_app(fuzzed)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/jobs", "/api/uploads", "/api/jobs/{job_id}/files/{path}"}
    started = time.monotonic()
    for operation in operations:
        if operation.path.endswith("/events"):
            continue  # an endless stream: its own test above

        @settings(
            max_examples=50,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def no_5xx(case):
            case.call_and_validate(checks=[not_a_server_error])

        no_5xx()
    assert time.monotonic() - started < 120


def test_the_worker_yields_the_cpu_to_the_servers_threads(client, studio, dream):
    """The worker thread (and the OpenMP threads it starts) run at a lower priority than the request threads,
    so a request gets a core at once while a dream keeps both busy."""
    import os

    from dreamscope.studio.worker import WORKER_NICE

    if not hasattr(os, "getpriority"):
        pytest.skip("thread priorities are a Linux feature")
    worker_thread = studio[1].worker._thread
    assert worker_thread is not None and worker_thread.is_alive()  # it ran `dream` already, so it has set its priority
    assert os.getpriority(os.PRIO_PROCESS, worker_thread.native_id) == WORKER_NICE
    assert os.getpriority(os.PRIO_PROCESS, 0) < WORKER_NICE  # the process (and the threads serving requests) did not change


# --- hostile requests: never a 5xx, nothing unbounded, nothing outside the data folder -------------------------


def test_over_long_names_and_boundaries_are_4xx_not_500(client, dream):
    long = "a" * 5000
    for path in (f"/static/{long}", f"/api/jobs/{dream['id']}/files/{long}", f"/static/{long}/x.js"):
        response = client.get(path)
        assert response.status_code == 404 and len(detail(response)["message"]) < 300, (path, response.status_code)
    boundary = "b" * 5000
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nx\r\n--{boundary}--\r\n'
    response = client.post(
        "/api/uploads", content=body.encode(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 422 and detail(response)["field"] == "file", response.text


def test_a_large_or_malformed_body_is_refused_by_name_without_echoing_it(client, photo_id):
    big = {"recipe": "dream", "settings": {"layer": "x" * 200_000}, "inputs": {"input": photo_id}}
    response = client.post("/api/jobs", json=big)
    assert response.status_code == 413 and detail(response)["field"] == "body" and len(response.text) < 400
    for body in (b'{"recipe": "dream", "settings": {"layer": "\xff\xfe"}}', b"[" * 30_000 + b"]" * 30_000, b"{not json"):
        response = client.post("/api/jobs", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422 and detail(response)["field"] == "body", (body[:20], response.text[:200])
    number = {"recipe": "dream", "settings": {"octaves": int("9" * 3000)}, "inputs": {"input": photo_id}}
    response = client.post("/api/jobs", content=json.dumps(number), headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500 and len(response.text) < 600, response.text[:300]


def test_every_check_runs_before_queueing_with_the_forms_words(client, photo_id):
    before = len(client.get("/api/jobs").json())
    for body, field, words in (
        ({"recipe": "dream", "settings": {"channels": "5000"}, "inputs": {"input": photo_id}}, "channels", "channel 5000"),
        (
            {"recipe": "visualize", "settings": {"target": "banana", "accentuate": True, "closeness_layer": "nope"}},
            "closeness_layer",
            "not a layer",
        ),
        ({"recipe": "visualize", "settings": {"target": "banana", "accentuate": True}}, "accentuate", "init picture"),
        ({"recipe": "dream", "inputs": {"input": photo_id}, "priority": "high"}, "priority", ""),
    ):
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 422 and detail(response)["field"] == field, (body, response.text)
        assert words in detail(response)["message"] and "--" not in detail(response)["message"], response.text
    assert len(client.get("/api/jobs").json()) == before  # none was queued


def test_cross_site_fetch_metadata_is_refused(client):
    from starlette.websockets import WebSocketDisconnect

    response = client.post("/api/samples/coffee", headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403 and "another site" in detail(response)["message"]
    with pytest.raises(WebSocketDisconnect) as refused:  # the live view's socket: closed at its handshake
        with client.websocket_connect("/api/live", headers={"host": "127.0.0.1:8765", "sec-fetch-site": "cross-site"}):
            pass
    assert refused.value.code == 1008 and "another site" in refused.value.reason


def test_links_in_the_data_folder_are_not_followed(studio, dream, tmp_path):
    from dreamscope.studio import store

    client, made = studio
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not yours")
    result = made.data.job(dream["id"]) / dream["output"]
    kept = result.read_bytes()
    result.unlink()
    result.symlink_to(outside)
    try:
        assert client.get(f"/api/jobs/{dream['id']}/files/{dream['output']}").status_code == 404
    finally:
        result.unlink()
        result.write_bytes(kept)
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    linked = made.data.jobs / "linkedjob"
    linked.symlink_to(folder)
    store.empty(linked)  # what recovery and the worker do to a job folder
    assert (folder / "keep.txt").read_text() == "mine" and linked.is_dir() and not linked.is_symlink()


def test_a_huge_picture_is_refused_from_its_header_and_runaway_clients_meet_limits(client, photo_id, monkeypatch):
    import zlib

    from dreamscope.studio import app as studio_app

    side = 10_000  # 100 megapixels of zeros: a few hundred KB as a PNG, gigabytes once decoded
    rows = zlib.compress(b"\x00" * (side + 1) * side, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    started = time.monotonic()
    response = upload(client, png, "zeros.png")
    assert response.status_code == 422 and detail(response)["field"] == "file", response.text
    assert "100 megapixels" in detail(response)["message"] and time.monotonic() - started < 5

    monkeypatch.setattr(studio_app, "MAX_QUEUED", 0)
    refused = client.post("/api/jobs", json={"recipe": "dream", "settings": QUICK, "inputs": {"input": photo_id}})
    assert refused.status_code == 429 and "jobs are waiting" in detail(refused)["message"]
    monkeypatch.setattr(studio_app, "UPLOADS_PER_MINUTE", 0)
    refused = upload(client, png_bytes())
    assert refused.status_code == 429 and detail(refused)["field"] == "file"


def test_long_values_are_answered_with_a_short_excerpt(client, photo_id):
    long = "x" * 60_000  # a body under the 64 KB limit: refused by what it says, and not echoed
    for response, field in (
        (client.post("/api/jobs", json={"recipe": long}), "recipe"),
        (
            client.post("/api/jobs", json={"recipe": "dream", "settings": {"a" * 60_000: 1}, "inputs": {"input": photo_id}}),
            "settings",
        ),
        (client.post("/api/jobs", json={"recipe": "dream", "inputs": {"a" * 60_000: photo_id}}), "inputs"),
        (client.post("/api/jobs", json={"recipe": "dream", "inputs": {"input": long}}), "input"),
        (client.get("/api/jobs", params={"state": "q" * 8_000}), "state"),
        (client.get("/api/jobs/" + "j" * 8_000), None),
        (client.get(f"/api/jobs/{'j' * 8_000}/events"), None),
        (client.get("/api/uploads/" + "u" * 8_000), None),
        (client.post("/api/samples/" + "s" * 8_000), None),
        (client.get("/static/" + "f" * 8_000), None),
        (client.get("/api/info", headers={"host": "h" * 8_000}), None),
        (client.post("/api/samples/coffee", headers={"origin": "http://" + "o" * 8_000}), None),
    ):
        said = detail(response)
        assert 400 <= response.status_code < 500 and said["field"] == field, (response.status_code, response.text[:300])
        assert len(response.content) < 600 and "characters)" in said["message"], response.text[:300]


def test_every_way_in_meets_the_queue_and_upload_limits(studio, zoom, monkeypatch):
    from dreamscope.studio import app as studio_app

    client, made = studio
    before = len(client.get("/api/jobs").json())
    monkeypatch.setattr(studio_app, "MAX_QUEUED", 0)
    for refused in (
        client.post(f"/api/jobs/{zoom['id']}/continue", json={"frames": 1}),
        client.post(f"/api/jobs/{zoom['id']}/again"),
    ):
        assert refused.status_code == 429 and "jobs are waiting" in detail(refused)["message"], refused.text
    assert len(client.get("/api/jobs").json()) == before  # none was queued
    assert made.store.add_job("dream", zoom["settings"], {}, most_queued=0) is None  # counted with the insert
    monkeypatch.setattr(studio_app, "UPLOADS_PER_MINUTE", 0)
    refused = client.post("/api/samples/coffee")  # a sample is an upload too
    assert refused.status_code == 429 and detail(refused)["field"] == "file"
    monkeypatch.setattr(studio_app, "UPLOADS_PER_MINUTE", 10**6)
    count, size = made.store.uploads_stored()
    assert count >= 1 and size > 0
    monkeypatch.setattr(studio_app, "STORED_UPLOADS", count + 1)  # room for one more, then none
    assert upload(client, png_bytes()).status_code == 201
    for refused in (upload(client, png_bytes()), client.post("/api/samples/coffee")):
        assert refused.status_code == 507 and detail(refused)["field"] == "file", refused.text
        assert f"stores {count + 1:,} uploads" in detail(refused)["message"]
    monkeypatch.setattr(studio_app, "STORED_UPLOADS", 10**6)
    monkeypatch.setattr(studio_app, "STORED_UPLOAD_BYTES", size)
    refused = upload(client, png_bytes())
    assert refused.status_code == 507 and detail(refused)["field"] == "file"
    assert made.store.uploads_stored()[0] == count + 1  # only the one allowed was stored


def test_links_are_not_read_copied_or_taken_as_inputs(studio, dream, zoom, tmp_path):
    client, made = studio
    # an upload replaced by a link to a picture outside: not served, no input of a new job nor of a queued one
    photo = upload(client, png_bytes()).json()["id"]
    stored = made.data.uploads / made.store.upload(photo).file
    outside = tmp_path / "outside.png"
    shutil.copyfile(stored, outside)
    stored.unlink()
    stored.symlink_to(outside)
    assert client.get(f"/api/uploads/{photo}").status_code == 404
    refused = client.post("/api/jobs", json={"recipe": "dream", "settings": QUICK, "inputs": {"input": photo}})
    assert refused.status_code == 422 and detail(refused)["field"] == "input", refused.text
    queued = made.store.add_job("dream", dream["settings"], {"input": photo})  # queued before the link came
    made.worker.wake()
    failed = wait(client, queued.id)
    assert failed["state"] == "failed" and f"upload {photo} is gone" in failed["error"], failed
    # a result replaced by a link (to a copy of itself, record and all): no preview after a restart, no record
    result = made.data.job(dream["id"]) / dream["output"]
    kept = tmp_path / "kept.png"
    shutil.copyfile(result, kept)
    result.unlink()
    result.symlink_to(kept)
    try:
        restarted = Studio(made.data.root, made.model, port=8765, run_worker=False)
        with TestClient(create_app(restarted), base_url=BASE) as again:
            assert again.get(f"/api/jobs/{dream['id']}/preview").status_code == 404
            assert again.get(f"/api/jobs/{dream['id']}/record").status_code == 404
    finally:
        result.unlink()
        shutil.copyfile(kept, result)
    assert client.get(f"/api/jobs/{dream['id']}/record").status_code == 200  # the real file again
    # a zoom whose video was replaced by a link is not continued from it
    video = made.data.job(zoom["id"]) / "zoom.mp4"
    copy = tmp_path / "zoom.mp4"
    shutil.copyfile(video, copy)
    video.unlink()
    video.symlink_to(copy)
    try:
        continued = client.post(f"/api/jobs/{zoom['id']}/continue", json={"frames": 1})
        assert continued.status_code == 201, continued.text
        ended = wait(client, continued.json()["id"])
        assert ended["state"] == "failed" and "gone from its folder" in ended["error"], ended
    finally:
        video.unlink()
        shutil.copyfile(copy, video)


def test_recovery_removes_or_leaves_linked_job_folders_never_what_they_point_to(tmp_path, model):
    made = Studio(tmp_path / "data", model, port=8765, run_worker=False)
    theirs = tmp_path / "theirs"
    (theirs / ".hidden").mkdir(parents=True)  # dot files: what recovery clears from a done job's folder
    (theirs / ".keep").write_text("mine")
    (theirs / "keep.txt").write_text("mine")
    done = made.store.add_done("d0d0d0d0d0d0", "dream", {"recipe": "dream"}, "dream.png", time.time(), [])
    queued = made.store.add_job("dream", {"recipe": "dream"}, {})
    for name in (done.id, queued.id, "deleted0000"):  # a done job's, a queued job's, and a deleted job's folder
        (made.data.jobs / name).symlink_to(theirs, target_is_directory=True)
    (made.data.uploads / ".upload-0123.part").symlink_to(theirs / "keep.txt")  # an upload's temporary file
    try:
        made.recover()
    finally:
        made.store.close()
    assert sorted(p.name for p in theirs.iterdir()) == [".hidden", ".keep", "keep.txt"]
    assert (theirs / "keep.txt").read_text() == "mine"
    assert not os.path.lexists(made.data.jobs / "deleted0000") and not os.path.lexists(made.data.uploads / ".upload-0123.part")
    assert (made.data.jobs / queued.id).is_dir() and not (made.data.jobs / queued.id).is_symlink()  # a real, empty one
    assert (made.data.jobs / done.id).is_symlink()  # left as it is: its files are not served


def test_running_out_of_memory_fails_the_job_with_what_to_lower(studio, photo_id, monkeypatch):
    client, made = studio

    def exhausted(*_args, **_kwargs):  # PyTorch's own words when the CPU allocator fails
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
            "8589934592 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(made.model.net, "forward", exhausted)
    settings = {**QUICK, "precision": "fp32"}  # the network patched above, not its bfloat16 twin
    made_job = client.post("/api/jobs", json={"recipe": "dream", "settings": settings, "inputs": {"input": photo_id}})
    assert made_job.status_code == 201, made_job.text
    failed = wait(client, made_job.json()["id"])
    assert failed["state"] == "failed", failed
    assert re.fullmatch(r"out of memory( at \d+x\d+ px on cpu)?; use a smaller max_size or tile", failed["error"]), failed[
        "error"
    ]
    assert list(made.data.job(failed["id"]).iterdir()) == []  # nothing left behind
