"""The studio's state on disk: one SQLite file (WAL) with a jobs table and an uploads table.

Every state change is one statement or one transaction, so a server killed at any moment leaves rows that are
each in one state; `recover` puts jobs that were running back in the queue. One connection serves every thread,
behind a lock: the statements are short, and SQLite serializes writers anyway.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DreamscopeError
from ..io.files import reason

STATES = ("queued", "running", "done", "failed", "cancelled")
ENDED = ("done", "failed", "cancelled")
VERSION = 2  # PRAGMA user_version of the layout below (2: jobs.notes)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- queue order: the oldest queued job runs first
    id TEXT NOT NULL UNIQUE,
    recipe TEXT NOT NULL,
    settings TEXT NOT NULL,                 -- the settings JSON, complete with defaults
    inputs TEXT NOT NULL,                   -- role -> upload id
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    fraction REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    loss REAL,
    error TEXT,
    output TEXT,                            -- relative to the job's folder
    parent TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    resume INTEGER NOT NULL DEFAULT 0,      -- 1: continues the parent's zoom instead of starting one
    notes TEXT NOT NULL DEFAULT '[]'        -- what the run said besides progress (JSON list of lines)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                     -- picture or video
    name TEXT NOT NULL,                     -- the client's name, for display only
    file TEXT NOT NULL,                     -- the generated file name under uploads/
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    still INTEGER NOT NULL,                 -- 1: readable as a picture (an animated GIF is both)
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class DataFolder:
    """Where the studio keeps everything: the database, the uploads, and one folder per job."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "studio.sqlite3"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    def job(self, job_id: str) -> Path:
        return self.jobs / job_id

    def make(self) -> DataFolder:
        """Create the folders; a place that cannot hold them is one DreamscopeError."""
        try:
            for folder in (self.root, self.uploads, self.jobs):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DreamscopeError(
                f"cannot use {self.root} as the studio's data folder ({reason(exc)}); give another with --data"
            ) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise DreamscopeError(f"cannot write into {self.root} (permission denied); give another data folder with --data")
        return self


def real_file(base: Path, relative: str | Path, *, folder: bool = False) -> bool:
    """Whether `base`/`relative` is a regular file (or, with `folder`, a folder with no link anywhere inside) reached
    without a symbolic link anywhere from `base` down (the base included): the studio serves, reads, copies and
    deletes only what is really in its data folder."""
    path = Path(base)
    try:
        for part in (None, *Path(relative).parts):
            path = path if part is None else path / part
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                return False
        if folder and stat.S_ISDIR(mode):
            return not any(os.path.islink(os.path.join(top, name)) for top, dirs, names in os.walk(path) for name in dirs + names)
        return stat.S_ISREG(mode)
    except (OSError, ValueError):  # missing, a name too long, a NUL byte
        return False


def remove(path: Path) -> None:
    """Remove a file, a symbolic link (never what it points to) or a real folder with all inside, as far as possible."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)  # which removes links inside, never following them
        else:
            path.unlink()
    except OSError:
        pass


def empty(folder: Path) -> None:
    """Remove everything inside `folder` (which stays), as far as possible. A folder replaced by a symbolic link
    is not followed: the link is removed and a real, empty folder made in its place."""
    if folder.is_symlink():
        try:
            folder.unlink()
            folder.mkdir()
        except OSError:
            pass
        return
    try:
        children = list(folder.iterdir())
    except OSError:
        return
    for child in children:
        remove(child)


def tidy(data: DataFolder, states: dict[str, str], temporary: str) -> None:
    """After a crash, before the worker starts (`states`: job id -> state): a job folder whose row was deleted is
    removed, one of a job that did not finish is emptied, a done job's loses the temporary files of renames that
    never happened (dot files); so do the uploads (`temporary`: their prefix). A link is removed or left, never
    followed: a done job's folder replaced by one stays as it is (its files are not served)."""
    for folder in list(data.jobs.iterdir()) if data.jobs.is_dir() else []:
        state = states.get(folder.name)
        if state is None:
            remove(folder)
        elif state != "done":
            empty(folder)
        elif folder.is_dir() and not folder.is_symlink():
            for debris in folder.glob(".*"):
                remove(debris)
    for debris in data.uploads.glob(f"{temporary}*"):
        remove(debris)


@dataclass(frozen=True)
class JobRow:
    id: str
    recipe: str
    settings: dict[str, Any]
    inputs: dict[str, str]
    state: str
    created: float
    started: float | None = None
    finished: float | None = None
    fraction: float = 0.0
    stage: str = ""
    loss: float | None = None
    error: str | None = None
    output: str | None = None
    parent: str | None = None
    attempts: int = 0
    resume: bool = False
    notes: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True)
class UploadRow:
    id: str
    kind: str
    name: str
    file: str
    width: int
    height: int
    frames: int
    still: bool
    bytes: int
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
        }


_JOB_COLUMNS = (
    "id",
    "recipe",
    "settings",
    "inputs",
    "state",
    "created",
    "started",
    "finished",
    "fraction",
    "stage",
    "loss",
    "error",
    "output",
    "parent",
    "attempts",
    "resume",
    "notes",
)
_UPLOAD_COLUMNS = ("id", "kind", "name", "file", "width", "height", "frames", "still", "bytes", "created")


def new_job_id() -> str:
    return secrets.token_hex(6)


def finite_number(value) -> float | None:
    """A loss as a plain finite float for JSON, or None: NaN and infinities (a diverging run) are not numbers JSON
    can carry, and a tensor or NumPy scalar would not go into it either."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Store:
    """The jobs and uploads of one data folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a killed process
            found = self._db.execute("PRAGMA user_version").fetchone()[0]
            if found > VERSION:
                raise DreamscopeError(
                    f"{self.path} was written by a newer dreamscope (layout {found}); upgrade dreamscope "
                    "or give another --data folder"
                )
            if found == 1:  # the first layout lacked jobs.notes
                self._db.execute("ALTER TABLE jobs ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'")
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ----------------------------------------------------------------------------------------------

    class _Transaction:
        def __init__(self, store: Store):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, *_):
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()
            return False

    def _transaction(self) -> _Transaction:
        return Store._Transaction(self)

    def _execute(self, sql: str, params=()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _rows(self, sql: str, params=()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _job(row: tuple) -> JobRow:
        data = dict(zip(_JOB_COLUMNS, row))
        data["settings"] = json.loads(data["settings"])
        data["inputs"] = json.loads(data["inputs"])
        data["resume"] = bool(data["resume"])
        data["notes"] = tuple(json.loads(data["notes"]))
        return JobRow(**data)

    # -- uploads -----------------------------------------------------------------------------------------------

    def queued(self) -> int:
        """How many jobs wait to run."""
        return self._rows("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")[0][0]

    def uploads_since(self, when: float) -> int:
        """How many uploads were stored since `when` (unix seconds)."""
        return self._rows("SELECT COUNT(*) FROM uploads WHERE created >= ?", (when,))[0][0]

    def uploads_stored(self) -> tuple[int, int]:
        """(how many uploads, their bytes in all) are stored."""
        count, size = self._rows("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM uploads")[0]
        return count, size

    def add_upload(self, upload: UploadRow) -> UploadRow:
        values = [getattr(upload, name) for name in _UPLOAD_COLUMNS]
        values[_UPLOAD_COLUMNS.index("still")] = int(upload.still)
        self._execute(f"INSERT INTO uploads ({', '.join(_UPLOAD_COLUMNS)}) VALUES ({', '.join('?' * len(values))})", values)
        return upload

    def upload(self, upload_id: str) -> UploadRow | None:
        rows = self._rows(f"SELECT {', '.join(_UPLOAD_COLUMNS)} FROM uploads WHERE id = ?", (upload_id,))
        if not rows:
            return None
        data = dict(zip(_UPLOAD_COLUMNS, rows[0]))
        data["still"] = bool(data["still"])
        return UploadRow(**data)

    # -- jobs --------------------------------------------------------------------------------------------------

    def add_job(
        self,
        recipe: str,
        settings: dict[str, Any],
        inputs: dict[str, str],
        *,
        parent: str | None = None,
        resume: bool = False,
        most_queued: int | None = None,
    ) -> JobRow | None:
        """A new queued job; None when `most_queued` jobs wait already (counted and added in one transaction)."""
        job = JobRow(new_job_id(), recipe, dict(settings), dict(inputs), "queued", time.time(), parent=parent, resume=resume)
        with self._transaction() as db:
            if (
                most_queued is not None
                and db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0] >= most_queued
            ):
                return None
            db.execute(
                "INSERT INTO jobs (id, recipe, settings, inputs, state, created, parent, resume) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, recipe, json.dumps(job.settings), json.dumps(job.inputs), job.state, job.created, parent, int(resume)),
            )
        return job

    def add_done(
        self, job_id: str, recipe: str, settings: dict[str, Any], output: str, started: float, notes: list[str]
    ) -> JobRow:
        """A job made outside the queue (a live recording), its output already in its folder: done at once."""
        job = JobRow(
            job_id, recipe, dict(settings), {}, "done", started, started, time.time(), 1.0, output=output, notes=tuple(notes)
        )
        self._execute(
            "INSERT INTO jobs (id, recipe, settings, inputs, state, created, started, finished, fraction, output, notes) "
            "VALUES (?, ?, ?, '{}', 'done', ?, ?, ?, 1, ?, ?)",
            (job.id, recipe, json.dumps(job.settings), job.created, job.started, job.finished, output, json.dumps(notes)),
        )
        return job

    def job(self, job_id: str) -> JobRow | None:
        rows = self._rows(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def jobs(self, state: str | None = None) -> list[JobRow]:
        """Newest first; only those in `state` when given."""
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        return [
            self._job(row) for row in self._rows(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs {where} ORDER BY seq DESC", params)
        ]

    def claim(self) -> JobRow | None:
        """The oldest queued job, now running (one transaction: two workers never take the same job)."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            job = self._job(row)
            db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1, fraction = 0, stage = '', "
                "loss = NULL, error = NULL, notes = '[]' WHERE id = ?",
                (time.time(), job.id),
            )
        return self.job(job.id)

    def progress(self, job_id: str, fraction: float, stage: str, loss: float | None) -> bool:
        cursor = self._execute(
            "UPDATE jobs SET fraction = ?, stage = ?, loss = ? WHERE id = ? AND state = 'running'",
            (float(fraction), stage, finite_number(loss), job_id),
        )
        return cursor.rowcount == 1

    def add_note(self, job_id: str, note: str) -> bool:
        """Keep a line the running job's recipe said (a summary, a dropped sound track); False when it is not running."""
        with self._transaction() as db:
            row = db.execute("SELECT notes FROM jobs WHERE id = ? AND state = 'running'", (job_id,)).fetchone()
            if row is None:
                return False
            db.execute("UPDATE jobs SET notes = ? WHERE id = ?", (json.dumps([*json.loads(row[0]), note]), job_id))
        return True

    def finish(self, job_id: str, state: str, *, error: str | None = None, output: str | None = None) -> bool:
        """A running job ends; False when it is no longer running (cancelled or deleted meanwhile)."""
        assert state in ENDED
        fraction = "1" if state == "done" else "fraction"
        cursor = self._execute(
            f"UPDATE jobs SET state = ?, finished = ?, error = ?, output = ?, fraction = {fraction} "
            "WHERE id = ? AND state = 'running'",
            (state, time.time(), error, output, job_id),
        )
        return cursor.rowcount == 1

    def cancel(self, job_id: str) -> bool:
        """A queued or running job is cancelled; False when it had already ended (or is unknown)."""
        cursor = self._execute(
            "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state IN ('queued', 'running')",
            (time.time(), job_id),
        )
        return cursor.rowcount == 1

    def requeue(self, job_id: str) -> bool:
        """A running job goes back to the queue (the server is stopping): it runs again from the start."""
        cursor = self._execute(
            "UPDATE jobs SET state = 'queued', started = NULL, fraction = 0, stage = '', loss = NULL "
            "WHERE id = ? AND state = 'running'",
            (job_id,),
        )
        return cursor.rowcount == 1

    def delete(self, job_id: str) -> bool:
        return self._execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1

    def recover(self) -> list[str]:
        """At start-up: jobs left running by a killed server go back to the queue. Returns their ids."""
        with self._transaction() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'running'")]
            db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL, fraction = 0, stage = '', loss = NULL WHERE state = 'running'"
            )
        return ids

    def ids(self) -> Iterator[tuple[str, str]]:
        """(id, state) of every job."""
        yield from self._rows("SELECT id, state FROM jobs")
