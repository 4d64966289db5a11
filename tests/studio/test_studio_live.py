"""The studio's Live tab in real Chromium with a fake camera (a .y4m clip this test writes), against the real server;
and the live WebSocket's guard and its one-at-a-time rule, from a plain WebSocket client."""

from __future__ import annotations

import io
import json
import struct
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_studio_browser import Server, api, wait_until

from browser import CHROMIUM_ARGS, Watch, chromium_binary, needs_playwright
from conftest import chelsea

W, H, FPS = 320, 240, 15  # the dreams' size (the default 320 px); the fake camera gives 640 x 480


def camera_args(clip: Path) -> list[str]:
    """Chromium's flags for a fake camera that plays `clip` (a .y4m), with the camera allowed without asking."""
    return [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]


def write_y4m(path: Path, frames: list[Image.Image], fps: int = FPS) -> None:
    """A raw 4:2:0 clip Chromium's fake camera plays in a loop (--use-file-for-fake-video-capture)."""
    width, height = frames[0].size
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, cb, cr = frame.convert("YCbCr").split()
            out.write(b"FRAME\n")
            out.write(np.asarray(y).tobytes())
            for plane in (cb, cr):
                out.write(np.asarray(plane.resize((width // 2, height // 2), Image.BILINEAR)).tobytes())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    needs_playwright()
    server = Server(tmp_path_factory.mktemp("studio-live"))
    yield server
    server.stop()
    assert "Traceback" not in "\n".join(server.lines), "\n".join(server.lines[-40:])


@pytest.fixture(scope="module")
def camera_browser(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # 640 x 480, the size the page asks for: Chromium's fake camera does not scale a file of another size, it pads it
    big = chelsea((902, 600))
    clip = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(clip, [big.crop((4 * i, 2 * i, 4 * i + 640, 2 * i + 480)) for i in range(30)])
    args = camera_args(clip)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=args)
        yield browser
        browser.close()


def info(server) -> dict:
    with urllib.request.urlopen(server.url + "api/info", timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def context(camera_browser):
    context = camera_browser.new_context(viewport={"width": 1280, "height": 800})
    yield context
    context.close()  # a failed test's live view ends with it, so the next test gets the room


def test_the_live_tab_dreams_the_camera_records_it_and_lets_go_when_closed(server, context):
    page = context.new_page()
    watch = Watch(page, server.url)
    page.goto(server.url)
    page.wait_for_selector("body.ready", timeout=30_000)
    page.click("#tab-live")
    assert page.locator("#form-live").is_visible() and page.locator("#live-stage").is_visible()
    assert page.locator("#canvas").is_hidden()  # the recipes' stage gives way to the live one
    page.click("#live-start")
    # dreams arrive and are drawn, with the rate and latency shown
    wait_until(page, "Number(document.getElementById('live-canvas').dataset.frames || 0) >= 12", timeout=60_000)
    stats = page.locator("#live-stats")
    assert float(stats.get_attribute("data-fps")) > 1 and float(stats.get_attribute("data-latency")) > 0
    assert "dreams a second" in stats.inner_text() and "latency" in stats.inner_text()
    assert info(server)["live"]["busy"] is True
    # the cat, dreamed, fills the canvas: not black, not blank (a fake camera's first frames can be black)
    size = "[document.getElementById('live-canvas').width, document.getElementById('live-canvas').height]"
    assert page.evaluate(size) == [W, H]
    deadline = time.monotonic() + 20
    while True:
        shot = np.asarray(Image.open(io.BytesIO(page.locator("#live-canvas").screenshot())).convert("L"), np.float32)
        dark = float((shot < 16).mean())  # the share of black pixels
        if (dark < 0.05 and 40 < shot.mean() < 235) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    assert dark < 0.05 and 40 < shot.mean() < 235, (dark, shot.mean())

    # the job queue waits while the live view runs
    sample = api(server, "POST", "/api/samples/chelsea")
    request = urllib.request.Request(
        server.url + "api/jobs",
        data=json.dumps(
            {"recipe": "dream", "settings": {"max_size": 96, "octaves": 1, "steps": 2}, "inputs": {"input": sample["id"]}}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        queued = json.loads(response.read())["id"]
    time.sleep(2.0)
    assert api(server, "GET", f"/api/jobs/{queued}")["state"] == "queued"

    # a control changes the dream without restarting it: a smaller size gives smaller dreams
    page.fill("#f-live-size", "160")
    page.locator("#f-live-size").dispatch_event("change")
    wait_until(page, "document.getElementById('live-canvas').width === 160", timeout=20_000)
    # a mistake is shown by its field, and the session goes on
    page.fill("#f-live-steps", "0")
    page.locator("#f-live-steps").dispatch_event("change")
    error = page.locator('#form-live .field[data-field="steps"] .field-error')
    error.wait_for(timeout=10_000)
    assert "steps must be a whole number from 1 to 20" in error.inner_text()
    page.fill("#f-live-steps", "1")
    page.locator("#f-live-steps").dispatch_event("change")

    # record a second or two: it lands in the gallery as a video with its provenance
    page.click("#live-record")
    page.wait_for_selector("#live-record.on", timeout=10_000)
    page.wait_for_timeout(1500)
    page.click("#live-record")
    page.wait_for_selector("#live-record:not(.on)", timeout=20_000)
    recorded = [job for job in api(server, "GET", "/api/jobs") if job["recipe"] == "live"]
    assert len(recorded) == 1 and recorded[0]["state"] == "done" and recorded[0]["result"]["kind"] == "video"
    assert recorded[0]["notes"][0].startswith("recorded live: ")
    from dreamscope.io import videos

    recording = server.data / "jobs" / recorded[0]["id"] / "live.mp4"
    kept = videos.open_video(recording)  # every frame decodes, at one size
    assert kept.frames >= 30 and float(kept.fps) == 30 and kept.size == (160, 120)
    record = api(server, "GET", f"/api/jobs/{recorded[0]['id']}/record")
    assert record["recipe"] == "live" and record["settings"]["size"] == 160
    page.wait_for_selector(f'#gallery-list [data-job-id="{recorded[0]["id"]}"]', timeout=20_000)

    # the full-screen mirror hides the controls; Escape leaves it
    page.click("#live-mirror")
    assert page.evaluate("document.body.classList.contains('live-mirror')")
    assert page.locator("#controls").is_hidden() or page.evaluate(
        "getComputedStyle(document.getElementById('live-stage')).position === 'fixed'"
    )
    page.keyboard.press("Escape")
    wait_until(page, "!document.body.classList.contains('live-mirror')", timeout=5_000)
    assert watch.unexpected() == []

    # closing the tab ends the session on the server at once, and the queue goes on
    page.close()
    deadline = time.monotonic() + 10
    while info(server)["live"]["busy"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert info(server)["live"]["busy"] is False
    deadline = time.monotonic() + 90
    while api(server, "GET", f"/api/jobs/{queued}")["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert api(server, "GET", f"/api/jobs/{queued}")["state"] == "done"


def test_the_live_socket_is_guarded_and_one_at_a_time(server):
    pytest.importorskip("websockets")
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    address = server.url.replace("http://", "ws://") + "api/live"
    deadline = time.monotonic() + 15
    while info(server)["live"]["busy"] and time.monotonic() < deadline:  # a live view of a test before may be ending
        time.sleep(0.2)
    with pytest.raises(InvalidStatus) as refused:
        connect(address, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(address, additional_headers={"Host": "evil.example"})
    with pytest.raises(InvalidStatus) as refused:  # Fetch Metadata of a cross-site page, Origin or not
        connect(address, additional_headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.value.response.status_code == 403
    with connect(address) as first:
        ready = json.loads(first.recv(timeout=60))
        assert ready["type"] == "ready" and ready["settings"]["recipe"] == "live"
        assert {field["name"] for field in ready["fields"]} >= {"layer", "step_size", "steps", "size", "blend"}
        with connect(address) as second:
            said = json.loads(second.recv(timeout=10))
            assert said["fatal"] and "another live view is open" in said["message"]
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=10)
            assert closed.value.rcvd.code == 4409
        # a frame that is not a picture, an unknown message, a setting out of range: said, and the session goes on
        first.send(struct.pack(">I", 1) + b"not a picture")
        assert json.loads(first.recv(timeout=10))["field"] == "frame"
        first.send(json.dumps({"type": "dance"}))
        assert json.loads(first.recv(timeout=10))["field"] == "type"
        first.send(json.dumps({"type": "settings", "settings": {"blend": 1.5}}))
        assert json.loads(first.recv(timeout=10))["field"] == "blend"
        first.send(json.dumps({"type": "settings", "settings": {"model": "efficientnet-lite2"}}))
        assert json.loads(first.recv(timeout=10))["field"] == "model"
        photo = chelsea((W, H))
        from io import BytesIO

        buffer = BytesIO()
        photo.save(buffer, format="JPEG")
        first.send(struct.pack(">I", 7) + buffer.getvalue())
        while True:
            message = first.recv(timeout=60)
            if isinstance(message, bytes):
                break
        assert struct.unpack(">I", message[:4])[0] == 7  # the dream names the camera frame it came from
        assert Image.open(BytesIO(message[4:])).size == (W, H)
