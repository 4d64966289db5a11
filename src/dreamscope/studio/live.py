"""The studio's live view: the browser's camera over a WebSocket into one `LiveSession`, its dreams sent back as they
come, and what was shown recorded as an MP4 job on request.

One live session at a time (the CPU has room for one); while it runs the worker holds its job between steps, and
when the socket closes (the tab is closed, the page goes elsewhere) the session stops and the worker goes on.

The protocol (docs/studio.md), on `GET /api/live` upgraded to a WebSocket, behind the same Host/Origin/token guard as
every request:

- page to server, binary: a camera frame, 4 bytes of its number (big-endian) then a JPEG or PNG.
- page to server, text: `{"type": "settings", "settings": {...}}` (changes, checked as a job's are; applied from
  the next frame) or `{"type": "record", "on": true | false}`.
- server to page, binary: a dream, 4 bytes of the number of the camera frame it was made from, then a JPEG.
- server to page, text: `ready` (the settings and their fields), `settings` (after a change), `stats` (frames
  received, dreamed, dropped; every second), `recording` / `recorded` (the job that holds the MP4), and `error`
  (`field` and `message`: a refused change or frame; with `"fatal": true` the socket then closes).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import struct
import threading
import time
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import DreamscopeError, SettingsError, literal
from ..io import provenance, videos
from ..models import precision
from ..recipes.live import LiveSession, Shown
from ..settings import LiveSettings
from . import info
from .store import new_job_id

log = logging.getLogger("dreamscope.studio")

RECORD_FPS = 30  # the recording's rate: each dream is held for the frames until the next, as it was shown
RECORDING = "live.mp4"  # the recording's name in its job's folder
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a camera frame as JPEG or PNG; far more than a 1920 px JPEG needs
MAX_FRAME_SIDE = 4096  # a frame's decoded side: the server scales it to the settings' size anyway
STATS_EVERY = 1.0  # seconds between stats messages
JPEG_QUALITY = 85
BUSY = 4409  # close code: another live session is running
FATAL = 4400  # close code: the session cannot go on (its message says why)


class Recorder:
    """What the page was shown, as an MP4 at RECORD_FPS in a new job's folder; `finish` makes it a done job."""

    def __init__(self, studio, settings: LiveSettings):
        self.studio = studio
        self.id = new_job_id()
        self.folder = studio.data.job(self.id)
        self.folder.mkdir(parents=True, exist_ok=False)
        self.settings = settings
        chosen = precision.name_of(precision.at(studio.model, settings.precision))
        record = provenance.make(settings, studio.model, {}, precision=chosen)
        self.writer = videos.FrameWriter(self.folder / RECORDING, RECORD_FPS, metadata={provenance.KEY: record.to_text()})
        self.writer.__enter__()
        self.started, self.created = time.monotonic(), time.time()
        self.current: Image.Image | None = None
        self.shown = 0
        self.changes: list[str] = []
        self._lock = threading.Lock()  # the sender shows, a command finishes: never both at once
        self._ended = False

    def show(self, picture: np.ndarray, at: float) -> None:
        """A dream shown at `at` (monotonic seconds): the one before is held until then."""
        with self._lock:
            if not self._ended:
                self._show(picture, at)

    def _show(self, picture: np.ndarray, at: float) -> None:
        self._fill(at)
        image = Image.fromarray(picture)
        if self.writer.first is not None and image.size != self.writer.first.size:  # the size changed meanwhile
            image = image.resize(self.writer.first.size, Image.BILINEAR)
        self.current = image
        self.shown += 1

    def _fill(self, until: float) -> None:
        if self.current is None:
            return
        target = int((until - self.started) * RECORD_FPS)
        while self.writer.count < target:
            self.writer.write(self.current)

    def finish(self):
        """The recording as a done job of the gallery (None when nothing was shown)."""
        with self._lock:
            self._ended = True
            return self._finish()

    def _finish(self):
        now = time.monotonic()
        self._fill(now)
        if self.current is not None and self.writer.count == 0:
            self.writer.write(self.current)
        if self.writer.count == 0:
            self._abandon()
            return None
        self.writer.__exit__(None, None, None)
        seconds = self.writer.count / RECORD_FPS
        notes = [
            f"recorded live: {seconds:.1f} s, {self.shown} dreams shown ({self.shown / max(now - self.started, 1e-6):.1f} a second)"
        ]
        notes += self.changes
        return self.studio.store.add_done(self.id, "live", self.settings.to_json(), RECORDING, self.created, notes)

    def abandon(self) -> None:
        with self._lock:
            self._ended = True
            self._abandon()

    def _abandon(self) -> None:
        try:
            self.writer.__exit__(DreamscopeError, DreamscopeError("abandoned"), None)  # removes its temporary file
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class LiveRoom:
    """Who has the live view: at most one socket at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self.busy = False

    def enter(self) -> bool:
        with self._lock:
            if self.busy:
                return False
            self.busy = True
            return True

    def leave(self) -> None:
        with self._lock:
            self.busy = False


def decode_frame(data: bytes) -> np.ndarray:
    """A camera frame's picture (JPEG or PNG bytes) as HxWx3 uint8; a DreamscopeError for anything else."""
    if len(data) > MAX_FRAME_BYTES:
        raise SettingsError("frame", f"is {len(data) // 1024} KB; send frames under {MAX_FRAME_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.format not in ("JPEG", "PNG"):
                raise SettingsError("frame", f"must be a JPEG or PNG picture, got {picture.format}")
            if max(picture.size) > MAX_FRAME_SIDE:
                raise SettingsError(
                    "frame", f"is {picture.width}x{picture.height}; send frames at most {MAX_FRAME_SIDE} px a side"
                )
            return np.asarray(picture.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise SettingsError("frame", "is not a readable JPEG or PNG picture") from None


def encode(shown: Shown) -> bytes:
    buffer = io.BytesIO()
    buffer.write(struct.pack(">I", int(shown.tag) & 0xFFFFFFFF))
    Image.fromarray(shown.picture).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _error(exc: DreamscopeError, fatal: bool = False) -> dict[str, Any]:
    field = exc.field if isinstance(exc, SettingsError) else None
    return {"type": "error", "field": field, "message": exc.worded(str), "fatal": fatal}


async def serve(websocket: WebSocket, studio) -> None:
    """One live session for as long as the socket stays open."""
    await websocket.accept()
    if not studio.live_room.enter():
        await websocket.send_text(
            json.dumps(
                {
                    "type": "error",
                    "field": None,
                    "fatal": True,
                    "message": "another live view is open (one at a time); close it first",
                }
            )
        )
        await websocket.close(code=BUSY)
        return
    loop = asyncio.get_running_loop()
    fresh = asyncio.Event()
    session = recorder = None
    try:
        studio.worker.hold()
        settings = studio.checked_settings(LiveSettings, {})
        session = await run_in_threadpool(
            LiveSession, settings, model=studio.model, on_dream=lambda _shown: loop.call_soon_threadsafe(fresh.set)
        )
        await websocket.send_text(json.dumps({"type": "ready", "settings": settings.to_json(), "fields": info.live_fields()}))
        state = {"recorder": None}
        sender = asyncio.create_task(_send_dreams(websocket, session, fresh, state))
        try:
            await _receive(websocket, studio, session, state)
        finally:
            sender.cancel()
            recorder = state["recorder"]
    except WebSocketDisconnect:
        pass
    except DreamscopeError as exc:
        await _say_and_close(websocket, _error(exc, fatal=True))
    finally:
        if session is not None:
            await run_in_threadpool(session.close)
        if recorder is not None:  # the page went away while recording: keep what was recorded
            await run_in_threadpool(_finish_quietly, recorder)
        studio.worker.release()
        studio.live_room.leave()


def _finish_quietly(recorder: Recorder) -> None:
    try:
        recorder.finish()
    except Exception:
        log.exception("dreamscope studio: a live recording could not be kept")
        recorder.abandon()


async def _say_and_close(websocket: WebSocket, message: dict[str, Any]) -> None:
    try:
        await websocket.send_text(json.dumps(message))
        await websocket.close(code=FATAL)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _receive(websocket: WebSocket, studio, session: LiveSession, state: dict) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) < 5:
                await websocket.send_text(
                    json.dumps(_error(SettingsError("frame", "must be 4 bytes of its number, then a picture")))
                )
                continue
            try:
                frame = await run_in_threadpool(decode_frame, data[4:])
            except DreamscopeError as exc:
                await websocket.send_text(json.dumps(_error(exc)))
                continue
            try:
                session.submit(frame, tag=struct.unpack(">I", data[:4])[0])
            except DreamscopeError as exc:  # the session ended on an error (a frame too small for the layer)
                await _say_and_close(websocket, _error(exc, fatal=True))
                return
        elif text is not None:
            await _command(websocket, studio, session, state, text)


async def _command(websocket: WebSocket, studio, session: LiveSession, state: dict, text: str) -> None:
    try:
        command = json.loads(text)
    except ValueError:
        command = None
    if not isinstance(command, dict) or command.get("type") not in ("settings", "record"):
        await websocket.send_text(
            json.dumps(
                _error(SettingsError("type", literal('a message is {"type": "settings", ...} or {"type": "record", ...}')))
            )
        )
        return
    try:
        if command["type"] == "settings":
            changes = command.get("settings")
            if not isinstance(changes, dict):
                raise SettingsError("settings", "must be a JSON object of setting names and values")
            merged = {name: value for name, value in session.settings.to_json().items() if name not in ("recipe", *info.FIXED)}
            checked = studio.checked_settings(LiveSettings, {**merged, **changes})
            new = session.update(**{name: getattr(checked, name) for name in changes if name not in info.FIXED})
            recorder = state["recorder"]
            if recorder is not None:
                recorder.changes.append(
                    f"at {time.monotonic() - recorder.started:.1f} s: " + ", ".join(f"{k}={getattr(new, k)}" for k in changes)
                )
            await websocket.send_text(json.dumps({"type": "settings", "settings": new.to_json()}))
        elif command.get("on"):
            if state["recorder"] is None:
                state["recorder"] = await run_in_threadpool(Recorder, studio, session.settings)
            await websocket.send_text(json.dumps({"type": "recording", "on": True, "job": state["recorder"].id}))
        else:
            recorder, state["recorder"] = state["recorder"], None
            job = await run_in_threadpool(recorder.finish) if recorder is not None else None
            await websocket.send_text(
                json.dumps(
                    {"type": "recorded", "job": job.id if job else None, "frames": recorder.writer.count if recorder else 0}
                )
            )
    except DreamscopeError as exc:
        await websocket.send_text(json.dumps(_error(exc)))


async def _send_dreams(websocket: WebSocket, session: LiveSession, fresh: asyncio.Event, state: dict) -> None:
    """Each new dream, as soon as it is ready (the newest only: one made while the last was being sent replaces it),
    and the stats every second."""
    sent, said = 0, time.monotonic()
    try:
        while True:
            try:
                await asyncio.wait_for(fresh.wait(), STATS_EVERY)
            except asyncio.TimeoutError:
                pass
            fresh.clear()
            if session.error is not None:
                error = session.error
                message = _error(
                    error if isinstance(error, DreamscopeError) else DreamscopeError(f"the live dream stopped: {error}"),
                    fatal=True,
                )
                await _say_and_close(websocket, message)
                return
            shown = session.newest()
            if shown is not None and shown.number != sent:
                sent = shown.number
                data = await run_in_threadpool(encode, shown)
                await websocket.send_bytes(data)
                recorder = state["recorder"]
                if recorder is not None:
                    await run_in_threadpool(recorder.show, shown.picture, time.monotonic())
            if time.monotonic() - said >= STATS_EVERY:
                said = time.monotonic()
                await websocket.send_text(
                    json.dumps(
                        {"type": "stats", "received": session.received, "dreamed": session.dreamed, "dropped": session.dropped}
                    )
                )
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        return
