"""Real Chromium for the tests of pages: the binary, a DevTools session on a pipe that records every console message,
exception and request of a page opened from disk (`render`), and, for Playwright, its launch flags and a watch on
a page's problems. A missing browser skips the test and says what to install."""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

# This machine's network is closed: without these, Chromium tries Google's hosts at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_binary() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


def needs_playwright():
    """Skip (saying what to install) when the browser, Playwright or the studio's extra is missing."""
    if chromium_binary() is None:
        pytest.skip(
            "Chromium is not installed, so the page was not tested in a browser "
            "(`make test` installs the Debian package `chromium` where it can: apt-get install chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "Playwright for Python is not installed (pip install playwright; the system's chromium is used, "
            "so `playwright install` is not needed)"
        )
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        pytest.skip("the studio's dependencies are not installed: pip install -e '.[studio]'")


class Watch:
    """Everything that goes wrong on a page: console errors and warnings, uncaught exceptions, requests that
    fail or are answered with an HTTP error, and any request that leaves the studio's own address."""

    def __init__(self, page, base: str):
        self.problems: list[str] = []
        self.base = base
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"exception: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"request failed: {request.url} {request.failure}"))
        page.on(
            "response",
            lambda r: self.problems.append(f"HTTP {r.status}: {r.request.method} {r.url}") if r.status >= 400 else None,
        )
        page.on(
            "request",
            lambda r: None if r.url.startswith((base, "data:", "blob:")) else self.problems.append(f"off-site request: {r.url}"),
        )

    def _console(self, message):
        if message.type in ("error", "warning", "assert"):
            where = (message.location or {}).get("url") or ""
            self.problems.append(f"console.{message.type}: {message.text} {where}".rstrip())

    def unexpected(self, *allowed: str) -> list[str]:
        """The problems, less those containing any of `allowed`. A preview asked for in the instant its job ends is
        no exception: the server keeps an ended job's last preview (docs/studio.md), so it is never a 404."""
        return [p for p in self.problems if not any(a in p for a in allowed)]


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
    ending in NUL on fds 3 and 4), so the test sees every console message, exception and request."""

    def __init__(self, binary: str, profile: str, width: int = 1280, height: int = 2000):
        self.width, self.height = width, height
        commands, self._theirs_in = os.pipe()
        self._theirs_out, replies = os.pipe()
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def wire():  # in the child: commands on fd 3, replies on fd 4
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self.proc = subprocess.Popen(
            args, pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(commands)
        os.close(replies)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._theirs_out], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._theirs_out, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._theirs_in, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, self.session, **params)

    def open(self, url: str, timeout: float = 60) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.page(f"{domain}.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (EOFError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._theirs_in)
        os.close(self._theirs_out)


def problems(events: list[dict]) -> list[str]:
    """Console errors and warnings, uncaught exceptions, browser log errors and any request off the disk."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
            found.append(f"console.{params['type']}: {params['args']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "data:")):
            found.append(f"network request: {params['request']['url']}")
    return found


PAGE_STATE = """({
    images: document.images.length,
    broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    sections: document.querySelectorAll('section.layer').length,
    title: document.title})"""


def render(page: Path, tmp_path: Path) -> tuple[list[str], dict, Image.Image]:
    """Open a page in headless Chromium: (its problems, facts about its DOM, a 1280x2000 screenshot)."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "Chromium is not installed, so the report was not rendered in a browser "
            "(`make test` installs the Debian package `chromium` where it can: apt-get install chromium)"
        )
    browser = Browser(binary, tempfile.mkdtemp(dir=tmp_path))
    try:
        browser.open(page.as_uri())
        state = browser.page("Runtime.evaluate", returnByValue=True, expression=PAGE_STATE)["result"]["value"]
        shot = browser.page("Page.captureScreenshot", format="png")["data"]
    finally:
        browser.close()
    return problems(browser.events), state, Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB")
