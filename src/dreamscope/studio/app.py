"""The studio's HTTP API (docs/studio.md): FastAPI routes over a `Studio`, which holds the data folder, the
database, the loaded model and the worker.

Route handlers only read and write rows and files; all tensor work is on the worker's thread. Blocking handlers
are plain `def`s, which FastAPI runs in its thread pool; the async ones (the upload's stream, the event stream)
hand their blocking parts to threads. Anything a client sends that cannot be used is a 4xx with
`{"detail": {"field", "message"}}`, never a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import mimetypes
import re
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Body, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import settings as S
from ..errors import DreamscopeError, SettingsError, literal, suggest
from ..fields import excerpt, shown
from ..io import provenance
from ..work import catalogue, flags, jobs
from . import info, live, store, uploads
from .guard import Access, Guard
from .store import ENDED, STATES, DataFolder, JobRow, Store, UploadRow, finite_number
from .worker import RESULT_PREVIEW, Worker, gif_beside, result_preview

log = logging.getLogger("dreamscope.studio")
STATIC = Path(__file__).with_name("static")
EVENTS_EVERY = 0.125  # seconds between looks at a job for its event stream (~8 a second)
KEEP_ALIVE = 15.0  # seconds between comments on a quiet event stream, so proxies keep it open
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")  # what can name a field in an error
# Pictures at the top of a report folder, shown beside its page (explain writes these; pages/explain.py).
REPORT_PICTURES = (("groups.png", "neuron groups"), ("grid.png", "activation grid"))


class ClientError(Exception):
    """An answer other than 422: 404 (unknown), 409 (does not apply now)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


# Limits a person at the page never meets and a runaway script soon does (docs/studio.md).
MAX_QUEUED = 50  # jobs waiting to run at once
UPLOADS_PER_MINUTE = 60
STORED_UPLOADS = 5_000  # uploads kept (nothing expires them): 83 minutes of a script at the rate above
STORED_UPLOAD_BYTES = 20 * uploads.GB


def not_found(what: str) -> ClientError:
    return ClientError(404, what)


def queue_full() -> ClientError:
    return ClientError(429, f"{MAX_QUEUED} jobs are waiting to run already; let some finish (or cancel them) and send this again")


def field_error(field: str, problem: str, fallback: str) -> SettingsError:
    """A SettingsError for a field a client named; a name that is not an identifier is reported as `fallback`."""
    if isinstance(field, str) and NAME.fullmatch(field):
        return SettingsError(field, literal(problem))
    return SettingsError(fallback, f"has no {shown(field)}: {literal(problem)}")


# -- the studio: state and operations ----------------------------------------------------------------------------


class Studio:
    """One server's state: its data folder, database, model (the only one its jobs may use) and worker."""

    def __init__(
        self,
        data: str | Path,
        model,
        *,
        weights: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        limits: uploads.Limits | None = None,
        extra_hosts=(),
        run_worker: bool = True,
    ):
        self.data = DataFolder(Path(data)).make()
        self.weights = str(weights) if weights is not None else None  # the --weights the model was loaded with
        self.store = Store(self.data.database)
        self.model = model
        self.limits = limits or uploads.Limits()
        self.access = Access(host, port, token, extra_hosts)
        self.worker = Worker(self.store, self.data, model, name=str(model.device))
        self.run_worker = run_worker
        self.closing = threading.Event()  # set when the server stops: event streams end
        self.live_room = live.LiveRoom()

    def start(self) -> None:
        if self.run_worker:
            self.worker.start()

    def stop(self) -> None:
        self.closing.set()
        self.worker.stop()
        if not self.worker.alive:  # a worker still inside a long step keeps the database until the process ends
            self.store.close()

    def recover(self) -> list[str]:
        """After a crash: running jobs go back to the queue with their folders emptied (they run again, with the same
        settings and seed, to the same result), and leftovers of interrupted work are removed. Returns the requeued ids."""
        requeued = self.store.recover()
        store.tidy(self.data, dict(self.store.ids()), uploads.TEMP_PREFIX)
        return requeued

    # -- jobs -------------------------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRow:
        job = self.store.job(job_id)
        if job is None:
            raise not_found(f"no job {excerpt(job_id)}; it may have been deleted")
        return job

    def job_json(self, job: JobRow) -> dict[str, Any]:
        live = self.worker.live(job.id) if job.state == "running" else None
        return {
            "id": job.id,
            "recipe": job.recipe,
            "settings": job.settings,
            "inputs": job.inputs,
            "state": job.state,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "fraction": live.fraction if live else job.fraction,
            "stage": live.stage if live else job.stage,
            "loss": finite_number(live.loss if live else job.loss),
            "eta_s": live.eta_s if live else None,
            "preview": live.preview if live else None,
            "error": job.error,
            "output": job.output if job.state == "done" else None,
            "parent": job.parent,
            "continues": job.resume,
            "attempts": job.attempts,
            "notes": list(job.notes),
            "result": self.result_json(job),
        }

    def job_json_by_id(self, job_id: str) -> dict[str, Any] | None:
        job = self.store.job(job_id)
        return None if job is None else self.job_json(job)

    def result_json(self, job: JobRow) -> dict[str, Any] | None:
        if job.state != "done" or not job.output:
            return None
        base = f"/api/jobs/{job.id}/files/"
        kind = info.output_kind(job.recipe)
        if kind != "report":
            files = [{"name": job.output, "url": base + quote(job.output), "label": job.recipe}]
            gif = self._gif(job)
            if gif is not None:  # the worker made one beside the video (there is none when that failed)
                files.append({"name": gif, "url": base + quote(gif), "label": "GIF"})
            return {"kind": kind, "files": files}
        report = self.data.job(job.id) / job.output
        files = [{"name": "index.html", "url": base + quote(f"{job.output}/index.html"), "label": "report"}]
        for dream in sorted((report / "dreams").glob("[0-9]*-*.jpg")):
            layer = dream.stem.split("-", 1)[1]  # dreams/NN-LAYER.jpg
            name = f"dreams/{dream.name}"
            files.append({"name": name, "url": base + quote(f"{job.output}/{name}"), "label": layer})
        for name, label in REPORT_PICTURES:  # an explanation's pictures: the first is the gallery's thumbnail
            if (report / name).is_file():
                files.append({"name": name, "url": base + quote(f"{job.output}/{name}"), "label": label})
        return {"kind": "report", "files": files}

    def _gif(self, job: JobRow) -> str | None:
        """The name of the GIF beside a done job's video, when there is one."""
        if info.output_kind(job.recipe) != "video" or not job.output:
            return None
        gif = gif_beside(job.output)
        return gif if store.real_file(self.data.jobs, Path(job.id) / gif) else None

    def submit(self, recipe: Any, changes: Any, inputs: Any, *, parent: str | None = None) -> JobRow:
        """Check a new job completely (settings, the inputs, and both against the model, by the library's own check)
        and queue it."""
        offered = info.offered()
        if not isinstance(recipe, str) or recipe not in offered:
            raise SettingsError("recipe", f"must be one of {', '.join(offered)}, got {shown(recipe)}")
        if not isinstance(changes, dict):
            raise SettingsError("settings", "must be a JSON object of setting names and values")
        if not isinstance(inputs, dict):
            raise SettingsError("inputs", "must be a JSON object of roles (input, guide, init) and upload ids")
        if self.store.queued() >= MAX_QUEUED:  # said before any checking work
            raise queue_full()
        settings = self.checked_settings(offered[recipe].settings, changes)
        rows = self._inputs(offered[recipe], inputs)
        jobs.check(
            jobs.Job(
                settings,
                None,
                {role: str(self.data.uploads / row.file) for role, row in rows.items()},
                {role: row.name for role, row in rows.items()},
            ),
            self.model,
            sizes={role: (row.width, row.height) for role, row in rows.items()},
        )
        return self._queue(recipe, settings, {role: row.id for role, row in rows.items()}, parent=parent)

    def _queue(self, recipe: str, settings: S.Settings, inputs: dict[str, str], **how) -> JobRow:
        """A checked job into the queue, unless MAX_QUEUED wait already (counted and added in one transaction)."""
        job = self.store.add_job(recipe, settings.to_json(), inputs, most_queued=MAX_QUEUED, **how)
        if job is None:
            raise queue_full()
        self.worker.wake()
        return job

    def again(self, job_id: str, changes: Any) -> JobRow:
        job = self.job(job_id)
        if not isinstance(changes, dict):
            raise SettingsError("settings", "must be a JSON object of setting names and values")
        merged = {name: value for name, value in job.settings.items() if name not in ("recipe", *info.FIXED)}
        merged.update(changes)  # a continued zoom made again is the whole zoom, to its total frames
        return self.submit(job.recipe, merged, job.inputs, parent=job.id)

    def continue_zoom(self, job_id: str, frames: Any) -> JobRow:
        job = self.job(job_id)
        if job.recipe != "zoom":
            raise ClientError(409, f"only a zoom can be continued; this job is a {job.recipe}")
        if job.state != "done":
            raise ClientError(409, f"only a finished zoom can be continued; this one is {job.state}")
        more = S.Whole(1, 100_000)("frames", frames)
        total = job.settings["frames"] + more
        if total > 100_000:
            raise SettingsError("frames", f"would make {total} frames in all, over 100000")
        return self._queue(
            "zoom", S.ZoomSettings.from_json({**job.settings, "frames": total}), job.inputs, parent=job.id, resume=True
        )

    def cancel(self, job_id: str) -> JobRow:
        job = self.job(job_id)
        if not self.store.cancel(job_id):
            raise ClientError(409, f"the job has already ended ({job.state}); nothing to cancel")
        self.worker.cancel(job_id)
        self.worker.wait_released(job_id, 5.0)  # usually one step: then its folder is already empty
        return self.job(job_id)

    def delete(self, job_id: str) -> None:
        self.job(job_id)
        self.store.cancel(job_id)
        self.worker.cancel(job_id)
        released = self.worker.wait_released(job_id, 10.0)
        self.store.delete(job_id)
        self.worker.forget(job_id)
        if released:  # otherwise the worker removes the folder when it lets go
            store.remove(self.data.job(job_id))

    def file(self, job_id: str, path: str) -> Path:
        """A file of a done job: its result, or one inside its report folder; nothing else, whatever the path."""
        job = self.job(job_id)
        missing = not_found(f"job {job_id} has no file {excerpt(path)}")
        if job.state != "done" or not job.output:
            raise not_found(f"job {job_id} is {job.state}: only a done job's files are served")
        if any(part.startswith(".") for part in re.split(r"[\\/]", path)):
            raise missing
        try:
            base = self.data.job(job_id).resolve()
            output = (base / job.output).resolve()
            target = (base / path).resolve()
            gif = self._gif(job)
            beside = (base / gif).resolve() if gif else None
            inside = target in (output, beside) or (output.is_dir() and output in target.parents)
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a loop of links, a name too long
            raise missing from None
        # Only a real file of the job's folder: a result (or the folder) replaced by a link is not served.
        if not inside or not store.real_file(self.data.jobs, Path(job_id) / path):
            raise missing
        return target

    def preview(self, job_id: str, number: int | None) -> tuple[int, bytes]:
        """(number, JPEG) of a job's preview `number`, else its latest: while it runs, and after it ends while the
        worker keeps it (the most recently ended jobs). A done picture job whose preview is not kept (the server
        was restarted since) gets its result shrunk, numbered RESULT_PREVIEW."""
        job = self.job(job_id)
        found = self.worker.preview(job_id, number)
        if found is None and job.state == "done" and job.output and info.output_kind(job.recipe) == "picture":
            try:
                if not store.real_file(self.data.jobs, Path(job_id) / job.output):  # a link in its place is not read
                    raise FileNotFoundError(f"{job.output} is not a file of the job's folder")
                found = RESULT_PREVIEW, result_preview(self.data.job(job_id) / job.output)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:  # the result is gone or unreadable
                log.warning("dreamscope studio: no preview of job %s's result: %s", job_id, exc)
            else:
                self.worker.keep_preview(job_id, *found)  # made once, not at every look
        if found is None:
            raise not_found(f"job {job_id} has no preview now (one comes while it runs)")
        return found

    def record(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        if job.state != "done" or not job.output:
            raise not_found(f"job {job_id} is {job.state}: only a done job has a record")
        if not store.real_file(self.data.jobs, Path(job_id) / job.output, folder=True):  # a link is not followed
            raise not_found(f"job {job_id}'s result is gone from its folder")
        try:
            return provenance.read(self.data.job(job_id) / job.output).to_json()
        except DreamscopeError as exc:
            raise not_found(str(exc)) from None

    # -- settings and inputs ----------------------------------------------------------------------------------

    def checked_settings(self, cls: type[S.Settings], changes: dict[str, Any]) -> S.Settings:
        """A client's settings for `cls`, checked field by field with web wording: the server's model, no server folders."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        changes = dict(changes)
        changes.pop("recipe", None)
        for name, value in changes.items():
            if name not in known:
                raise field_error(name, f"is not a setting of {cls.recipe}{suggest(str(name), known)}", "settings")
            if name in info.FIXED and value not in (None, "", self._fixed(name)):
                raise SettingsError(
                    name,
                    literal(
                        f"is the server's: it runs {self._fixed('model')}; start dreamscope studio with --{name} to use another"
                    ),
                )
            if name in info.SERVER_ONLY and value not in (None, "", known[name].default):
                raise SettingsError(
                    name,
                    f"is not offered by the studio: it names a folder on the server; use the command line "
                    f"(dreamscope {cls.recipe} {flags.flag_of(name)} FOLDER)",
                )
            try:
                known[name].metadata["check"](name, value)
            except DreamscopeError:
                raise
            except Exception:
                raise SettingsError(
                    name, literal(f"cannot be {json.dumps(value)[:80]}; see its help for what it takes")
                ) from None
        changes.update(model=self._fixed("model"), weights=self._fixed("weights"))
        return cls.build(None, changes)

    def _fixed(self, name: str) -> str | None:
        if name == "model":
            return self.model.source
        return self.weights

    def _inputs(self, recipe: catalogue.Recipe, inputs: dict[str, Any]) -> dict[str, UploadRow]:
        """The uploads a job names, by role: each one stored (a real file: a link put in its place is no upload), of
        the kind its role takes (a picture, a video)."""
        checked = {}
        for role, upload_id in inputs.items():
            if upload_id is None or upload_id == "":
                continue
            if role not in recipe.roles:
                raise field_error(role, f"is not an input of {recipe.name}, which takes {', '.join(recipe.roles)}", "inputs")
            upload = (
                self.store.upload(upload_id) if isinstance(upload_id, str) and uploads.UPLOAD_ID.fullmatch(upload_id) else None
            )
            if upload is None or not store.real_file(self.data.uploads, upload.file):
                raise SettingsError(role, f"names no upload ({shown(upload_id)}); upload the file first")
            if recipe.input(role).kind == "video":
                if upload.kind != "video":
                    raise SettingsError(
                        role, literal(f"must be a video; {upload.name} is a picture (dream it with the dream recipe)")
                    )
            elif not upload.still:
                raise SettingsError(
                    role, literal(f"must be a picture; {upload.name} is a video (dream it with the video recipe)")
                )
            checked[role] = upload
        return checked

    # -- uploads ----------------------------------------------------------------------------------------------

    def room_for_upload(self) -> None:
        """Refuse an upload (or a sample) past the rate (429) or past what the studio stores (507), naming `file`."""
        if self.store.uploads_since(time.time() - 60) >= UPLOADS_PER_MINUTE:
            raise ClientError(429, f"more than {UPLOADS_PER_MINUTE} uploads in a minute; wait a moment and send it again", "file")
        count, size = self.store.uploads_stored()
        if count >= STORED_UPLOADS or size >= STORED_UPLOAD_BYTES:
            raise ClientError(
                507,
                f"the studio stores {count:,} uploads ({size / uploads.GB:.1f} GB) already, its limit ({STORED_UPLOADS:,} "
                f"uploads or {STORED_UPLOAD_BYTES / uploads.GB:g} GB); use those, or start dreamscope studio with another --data",
                "file",
            )

    def upload(self, upload_id: str) -> UploadRow:
        row = self.store.upload(upload_id) if uploads.UPLOAD_ID.fullmatch(upload_id or "") else None
        if row is None or not store.real_file(self.data.uploads, row.file):  # a link put in its place is not followed
            raise not_found(f"no upload {excerpt(upload_id)}")
        return row


# -- request bodies ----------------------------------------------------------------------------------------------


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake, refused by name

    recipe: str = Field(description="dream, visualize, zoom, morph, video, probe or explain")
    settings: dict[str, Any] = Field(default_factory=dict, description="the settings to change from their defaults")
    inputs: dict[str, str | None] = Field(default_factory=dict, description="role (input, guide, init) -> upload id")


class AgainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake, refused by name

    settings: dict[str, Any] = Field(default_factory=dict, description="settings to change from the job's")


class ContinueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake, refused by name

    frames: int = Field(description="how many more frames")


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}
            }
        },
    }
}


# -- the application -----------------------------------------------------------------------------------------------


def _error(status: int, message: str, field: str | None = None, headers=None) -> JSONResponse:
    """Every error the app answers. Messages quote what was sent as `excerpt`s; whatever one says, the answer stays
    one short line here (a field is a name, a message at most 500 characters)."""
    message = message if len(message) <= 500 else message[:497] + "..."
    field = field if field is None or len(field) <= 60 else field[:60]
    return JSONResponse({"detail": {"field": field, "message": message}}, status_code=status, headers=headers)


def create_app(studio: Studio) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app):
        studio.start()
        try:
            yield
        finally:
            await run_in_threadpool(studio.stop)

    app = FastAPI(title="dreamscope studio", version=info.__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.studio = studio
    _handlers(app)
    _routes(app, studio)
    app.add_middleware(Guard, access=studio.access)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        problem = (exc.errors() or [{}])[0]
        where = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "path", "header", "cookie")]
        field = where[-1] if where else "body"
        message = problem.get("msg", "is not valid")
        if problem.get("type") == "json_invalid":
            return _error(422, "body: is not valid JSON", "body")
        return _error(422, f"{field[:80]}: {message[:200]}", field[:80])

    @app.exception_handler(uploads.UploadTooLarge)
    async def too_large(_request, exc):
        return _error(413, str(exc), "file")

    @app.exception_handler(uploads.StorageFailed)
    async def not_stored(_request, exc):
        return _error(507, str(exc))

    @app.exception_handler(sqlite3.Error)
    async def database_failed(_request, exc: sqlite3.Error):
        log.error("dreamscope studio: database error: %s", exc)
        full = "full" in str(exc).lower()
        return _error(
            507 if full else 503,
            f"the studio's database cannot be used now ({exc}); "
            + ("free some disk space" if full else "try again, or restart dreamscope studio"),
        )

    @app.exception_handler(DreamscopeError)
    async def refused(_request, exc: DreamscopeError):
        if isinstance(exc, SettingsError):
            return _error(422, exc.worded(str), exc.field)
        return _error(422, exc.worded(str), "file" if isinstance(exc, uploads.UploadRefused) else None)

    @app.exception_handler(ClientError)
    async def client_error(_request, exc: ClientError):
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        if isinstance(exc.detail, dict):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):  # not JSON (invalid UTF-8, ...)
            return _error(422, "body: is not valid JSON", "body")
        return _error(exc.status_code, str(exc.detail)[:200], headers=exc.headers)


def _routes(app: FastAPI, studio: Studio) -> None:
    @app.get("/", include_in_schema=False)
    def page():
        index = STATIC / "index.html"
        if not index.is_file():
            raise not_found("the studio's page is not installed (src/dreamscope/studio/static/index.html)")
        return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{path:path}", include_in_schema=False)
    def static(path: str):
        try:
            root = STATIC.resolve()
            target = (STATIC / path).resolve()
            found = root in target.parents and target.is_file()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long
            found = False
        if not found:
            raise not_found(f"no file {excerpt(path)}")
        return FileResponse(target, media_type=_media_type(target), headers={"Cache-Control": "no-cache"})

    @app.get("/api/info")
    def get_info():
        return info.info_json(studio)

    # -- uploads --

    @app.post("/api/uploads", status_code=201, openapi_extra=UPLOAD_BODY)
    async def post_upload(request: Request):
        limits = studio.limits
        await run_in_threadpool(studio.room_for_upload)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limits.largest + uploads.MULTIPART_SLACK:
            raise uploads.too_large(limits.largest)  # said before a byte of it is read
        try:
            received = await uploads.receive(
                request.stream(), request.headers.get("content-type"), studio.data.uploads, limits.largest
            )
        except ClientDisconnect:  # the client went away mid-upload: nobody reads this answer
            return _error(400, "the upload was cut off before its end; send it again", "file")
        try:
            sniffed = await run_in_threadpool(uploads.inspect, received.path, received.name, limits)
            row = uploads.store_file(received, sniffed, studio.data.uploads)
        except BaseException:
            received.path.unlink(missing_ok=True)
            raise
        await run_in_threadpool(studio.store.add_upload, row)
        return JSONResponse(row.to_json(), status_code=201)

    @app.post("/api/samples/{name}", status_code=201)
    def post_sample(name: str):
        if name not in uploads.samples_available():
            raise not_found(
                f"no sample named {excerpt(name)}; the samples are {', '.join(uploads.samples_available()) or 'none here'}"
            )
        studio.room_for_upload()
        row = studio.store.add_upload(uploads.make_sample(name, studio.data.uploads))
        return JSONResponse(row.to_json(), status_code=201)

    @app.get("/api/uploads/{upload_id}")
    def get_upload(upload_id: str):
        row = studio.upload(upload_id)
        return FileResponse(
            studio.data.uploads / row.file,
            media_type=uploads.media_type(row.file),
            headers={"Cache-Control": "private, max-age=31536000, immutable"},
        )

    # -- jobs --

    @app.post("/api/jobs", status_code=201)
    def post_job(body: JobRequest):
        job = studio.submit(body.recipe, body.settings, body.inputs)
        return JSONResponse(studio.job_json(job), status_code=201)

    @app.get("/api/jobs")
    def get_jobs(state: str | None = None):
        if state is not None and state not in STATES:
            raise SettingsError("state", f"must be one of {', '.join(STATES)}, got {shown(state)}")
        return [studio.job_json(job) for job in studio.store.jobs(state)]

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str):
        return studio.job_json(studio.job(job_id))

    @app.post("/api/jobs/{job_id}/cancel")
    def post_cancel(job_id: str):
        return studio.job_json(studio.cancel(job_id))

    @app.post("/api/jobs/{job_id}/again", status_code=201)
    def post_again(job_id: str, body: AgainRequest | None = Body(default=None)):  # noqa: B008 - FastAPI's way to declare an optional body
        job = studio.again(job_id, body.settings if body is not None else {})
        return JSONResponse(studio.job_json(job), status_code=201)

    @app.post("/api/jobs/{job_id}/continue", status_code=201)
    def post_continue(job_id: str, body: ContinueRequest):
        job = studio.continue_zoom(job_id, body.frames)
        return JSONResponse(studio.job_json(job), status_code=201)

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str):
        studio.delete(job_id)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}})
    async def get_events(job_id: str, request: Request):
        first = await run_in_threadpool(studio.job_json_by_id, job_id)
        if first is None:
            raise not_found(f"no job {excerpt(job_id)}; it may have been deleted")
        return StreamingResponse(
            _events(studio, job_id, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/jobs/{job_id}/preview")
    def get_preview(job_id: str, v: int | None = None):
        number, data = studio.preview(job_id, v)
        cache = "private, max-age=3600, immutable" if number == v else "no-store"  # preview N never changes
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache, "X-Preview": str(number)})

    @app.get("/api/jobs/{job_id}/files/{path:path}")
    def get_file(job_id: str, path: str):
        target = studio.file(job_id, path)
        return FileResponse(target, media_type=_media_type(target), headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/jobs/{job_id}/record")
    def get_record(job_id: str):
        return studio.record(job_id)

    @app.websocket("/api/live")
    async def live_view(websocket: WebSocket):
        await live.serve(websocket, studio)


def _media_type(path: Path) -> str:
    suffix = path.suffix.lower()
    known = {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".svg": "image/svg+xml",
        ".json": "application/json",
    }
    return (
        known.get(suffix) or uploads.MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


async def _events(studio: Studio, job_id: str, request: Request):
    """`progress` with the job's JSON whenever it changes (looked at ~8 times a second), then `end` once. Stops when
    the client goes away or the server stops."""
    last, quiet_since = None, time.monotonic()
    while not studio.closing.is_set():
        if await request.is_disconnected():
            return
        job = await run_in_threadpool(studio.job_json_by_id, job_id)
        if job is None:
            yield _event("end", {"id": job_id, "deleted": True})
            return
        text = json.dumps(job)
        if text != last:
            last, quiet_since = text, time.monotonic()
            yield f"event: progress\ndata: {text}\n\n"
        elif time.monotonic() - quiet_since >= KEEP_ALIVE:
            quiet_since = time.monotonic()
            yield ": still here\n\n"
        if job["state"] in ENDED:
            yield f"event: end\ndata: {text}\n\n"
            return
        await asyncio.sleep(EVENTS_EVERY)


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
