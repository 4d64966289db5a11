"""`dreamscope studio` as a user runs it: a real server process on 127.0.0.1, spoken to over HTTP. It prints its
address (port 0: a free one), serves jobs end to end under load, stops promptly with an event stream open, and
after being killed mid-job runs that job again to a complete file with no debris; its option mistakes are one
`error:` line."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the studio extra is not installed: pip install -e '.[studio]'")
httpx = pytest.importorskip("httpx")

from conftest import INTERRUPTIBLE, USAGE_DRIVER, chelsea, run_python  # noqa: E402
from dreamscope.io import provenance, videos  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
ADDRESS = re.compile(r"dreamscope studio: (http://127\.0\.0\.1:(\d+)/)")


class Server:
    """A `python -m dreamscope studio --port 0` process and its address; its output is read on threads, so its
    pipes never fill, and kept for the checks."""

    def __init__(self, data: Path, *options: str):
        self.proc = subprocess.Popen(
            [*INTERRUPTIBLE, "-m", "dreamscope", "studio", "--port", "0", "--data", str(data), "--threads", "1", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=ENV,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.printed = threading.Event()
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self.readers:
            reader.start()
        assert self.printed.wait(90) and self.out, f"no address printed; stderr: {''.join(self.err)}"
        match = ADDRESS.fullmatch(self.out[0].strip())
        assert match, f"the first line is not the address: {self.out[0]!r}"
        self.url, self.port = match.group(1), int(match.group(2))
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _read(self, pipe, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)
            if lines is self.out:
                self.printed.set()
        self.printed.set()  # it ended without a word

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for reader in self.readers:
                reader.join(10)

    @property
    def tracebacks(self) -> str:
        text = "".join(self.err)
        return text if "Traceback" in text else ""


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(data: Path, *options: str) -> Server:
        started.append(Server(data, *options))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    chelsea().save(buffer, format="PNG")
    return buffer.getvalue()


def submit(client, recipe: str, settings: dict, photo: str) -> dict:
    made = client.post("/api/jobs", json={"recipe": recipe, "settings": settings, "inputs": {"input": photo}})
    assert made.status_code == 201, made.text
    return made.json()


def wait(client, job_id: str, check, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if check(job):
            return job
        assert job["state"] not in ("done", "failed", "cancelled"), f"ended before it was seen: {job}"
        assert time.monotonic() < deadline, f"gave up waiting: {job}"
        time.sleep(0.05)


def debris(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".")]


def test_the_studio_serves_jobs_end_to_end_under_load_and_stops_promptly(tmp_path, servers):
    server = servers(tmp_path / "data")
    client = server.client
    assert server.port != 0
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert client.get("/api/info").json()["model"]["name"] == "efficientnet-lite0"
    photo = client.post("/api/uploads", files={"file": ("cat.png", png_bytes(), "image/png")}).json()["id"]
    job = submit(client, "dream", {"max_size": 96, "octaves": 2, "steps": 100, "layer": "stage3.1"}, photo)
    wait(client, job["id"], lambda j: j["state"] == "running")

    # 50 clients at once, each with its own connection, poll the job list while the dream runs
    def poll(_):
        with httpx.Client(base_url=server.url, timeout=60) as own:
            answers = [own.get("/api/jobs") for _ in range(3)]
        return [(a.status_code, [j["id"] for j in a.json()]) for a in answers]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = [answer for answers in pool.map(poll, range(50)) for answer in answers]
    assert len(results) == 150 and all(status == 200 and ids == [job["id"]] for status, ids in results)

    # the event stream over a real connection: progress while it runs, end once it is done
    events = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
    assert events[0] == "progress" and events[-1] == "end" and events.count("end") == 1
    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["state"] == "done", done["error"]
    with Image.open(io.BytesIO(client.get(done["result"]["files"][0]["url"]).content)) as picture:
        picture.load()
        assert picture.size == (96, 72)
    kept = client.get(f"/api/jobs/{job['id']}/preview")  # its last preview outlives it: no 404 for a page a moment late
    assert kept.status_code == 200 and kept.headers["content-type"] == "image/jpeg" and kept.headers["x-preview"] != "0"

    # SIGTERM with an event stream open: the server stops within its grace period, the running job is queued again
    slow = submit(client, "dream", {"max_size": 96, "octaves": 2, "steps": 2000, "layer": "stage3.1"}, photo)
    wait(client, slow["id"], lambda j: j["state"] == "running" and j["fraction"] > 0)
    opened = threading.Event()

    def listen():
        try:
            with httpx.Client(base_url=server.url, timeout=60) as own, own.stream("GET", f"/api/jobs/{slow['id']}/events") as s:
                for _ in s.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(30)
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 15
    assert server.out == [server.out[0]] and not server.tracebacks  # one line on stdout; no server error
    listener.join(10)
    assert not listener.is_alive()
    again = servers(tmp_path / "data")
    assert again.client.get(f"/api/jobs/{slow['id']}").json()["state"] in ("queued", "running")
    shown = again.client.get(f"/api/jobs/{job['id']}/preview")  # after a restart: the done dream's result, as a JPEG
    assert shown.status_code == 200 and shown.headers["x-preview"] == "0"
    with Image.open(io.BytesIO(shown.content)) as picture:
        assert picture.format == "JPEG" and picture.size == (96, 72)
    assert again.client.delete(f"/api/jobs/{slow['id']}").status_code == 204
    assert again.stop(signal.SIGINT) == 0 and not again.tracebacks


def test_a_job_killed_with_the_server_runs_again_to_a_complete_file(tmp_path, servers):
    data = tmp_path / "data"
    server = servers(data)
    photo = server.client.post("/api/uploads", files={"file": ("cat.png", png_bytes(), "image/png")}).json()["id"]
    settings = {"frames": 8, "max_size": 64, "octaves": 1, "steps": 12, "fps": 8, "layer": "stage3.1"}
    job = submit(server.client, "zoom", settings, photo)
    wait(server.client, job["id"], lambda j: j["state"] == "running" and j["fraction"] > 0.2)  # frames are being written
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    restarted = servers(data)
    done = wait(restarted.client, job["id"], lambda j: j["state"] in ("done", "failed"))
    assert done["state"] == "done", done["error"]
    assert done["attempts"] == 2
    path = data / "jobs" / job["id"] / "zoom.mp4"
    assert videos.open_video(path).frames == 8 and provenance.read(path).settings.frames == 8
    assert restarted.client.get(done["result"]["files"][0]["url"]).content == path.read_bytes()
    assert debris(data) == []
    assert restarted.stop() == 0 and "1 interrupted job(s) queued again" in "".join(restarted.err)
    assert not restarted.tracebacks


def test_option_mistakes_are_one_error_line(tmp_path):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    (tmp_path / "file").write_text("not a folder")
    mistakes = {
        "port range": ["studio", "--port", "70000"],
        "port in use": ["studio", "--port", str(port), "--data", str(tmp_path / "d")],
        "upload limit": ["studio", "--max-upload-mb", "0"],
        "data is a file": ["studio", "--data", str(tmp_path / "file")],
        "unknown model": ["studio", "--port", "0", "--model", "no-such-net", "--data", str(tmp_path / "d")],
        "not a number": ["studio", "--port", "eighty"],
    }
    try:
        driver = run_python("-c", USAGE_DRIVER, json.dumps([[str(tmp_path), args] for args in mistakes.values()]), env=ENV)
    finally:
        taken.close()
    assert driver.returncode == 0, driver.stderr
    results = dict(zip(mistakes, json.loads(driver.stdout)))
    for name, (code, _out, err) in results.items():
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), (name, err)
    assert f"port {port} on 127.0.0.1 is in use" in results["port in use"][2]
    assert "--port 0" in results["port in use"][2]
    assert "--port must be from 0 to 65535" in results["port range"][2]


def test_without_the_studio_extra_the_command_says_how_to_install_it(tmp_path):
    script = "import sys; sys.modules['fastapi'] = None\nfrom dreamscope.cli import main\nsys.exit(main(['studio']))"
    result = run_python("-c", script, cwd=tmp_path, env=ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: dreamscope studio needs fastapi, not installed here; run: pip install -e '.[studio]'"
    )
