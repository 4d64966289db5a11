"""The worker: one thread per device that runs queued jobs, one at a time, oldest first.

All tensor work of the studio happens on this thread; the web server only reads what it leaves: the rows of the
database (progress written a few times a second) and, in memory, the latest state of the running job with a
small JPEG preview. The last preview of each of the most recently ended jobs stays in memory too, so a page
asking for it in the instant its job ends still gets it. Cancelling is a flag the worker checks between events:
it then closes the run, whose recipe cleans up, and empties the job's folder. Whatever a job raises, the worker
marks it failed with one line and goes on to the next. A video result also gets a GIF beside it, made from the
finished video; a GIF that cannot be made costs only the GIF.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from .. import runtime
from ..errors import DreamscopeError
from ..io import videos
from ..io.files import reason
from ..settings import Settings
from ..work import catalogue, jobs, redo
from ..work.flags import command_line
from .store import DataFolder, JobRow, Store, empty, finite_number, real_file, remove

log = logging.getLogger("dreamscope.studio")

# What a recipe writes inside the job's folder, by its output's kind: RECIPE.png, RECIPE.mp4, or a report folder.
OUTPUT_NAMES = {"picture": "{}.png", "video": "{}.mp4", "folder": "report"}
PREVIEW_SIDE = 512
PREVIEW_KEEP = 48  # recent previews kept per running job, so a page's film strip of them can be loaded again
ENDED_KEEP = 32  # ended jobs whose last preview stays in memory (about 50 kB each)
RESULT_PREVIEW = 0  # the preview number of one made from a done job's result (no preview of its run was kept)
GIF_SIDE = 480  # longest side of the GIF beside a video result: a modest file for chats and pages that take no MP4
GIF_MAX_FRAMES = 600  # a longer video gets no GIF: a GIF's frames are all held in memory until it is written
PREVIEW_EVERY = 0.25  # seconds between previews: encoding one costs the worker a few milliseconds
WRITE_EVERY = 0.25  # seconds between progress writes to the database
IDLE_WAIT = 1.0  # seconds an idle worker sleeps before looking at the queue again (a new job wakes it at once)


WORKER_NICE = 19  # the worker (and the OpenMP threads it starts) yields the CPU to the web server's threads


def _yield_to_requests() -> None:
    """Lower this thread's CPU priority, so requests are answered at once while a dream keeps the cores busy.

    Linux sets nice per thread and new threads inherit it: libgomp gives each thread that starts a parallel
    region its own team, so the OpenMP threads of the worker's tensor work are started from here, lowered too.
    On an otherwise idle machine this costs the dream nothing; where it cannot be set it is skipped.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed
        pass


@dataclass(frozen=True)
class Live:
    """The running job as the worker last saw it (fresher than its row)."""

    fraction: float = 0.0
    stage: str = ""
    loss: float | None = None
    eta_s: float | None = None
    preview: int | None = None  # grows with each new preview; None before the first


class Worker:
    """Runs the queue of `store` with `model`, writing each job's output into its folder under `data`."""

    def __init__(self, store: Store, data: DataFolder, model, name: str = "cpu"):
        self.store, self.data, self.model, self.name = store, data, model, name
        self._lock = threading.Lock()
        self._live: dict[str, Live] = {}
        self._previews: dict[str, OrderedDict[int, bytes]] = {}
        self._ended: OrderedDict[str, tuple[int, bytes]] = OrderedDict()  # job id -> its last preview, oldest first
        self._cancelled: set[str] = set()
        self._current: str | None = None
        self._released = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._free = threading.Event()  # cleared while something else needs the CPU (a live session)
        self._free.set()
        self._thread: threading.Thread | None = None

    # -- control, from any thread ------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.alive:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name=f"dreamscope-worker-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current event: a running job goes back to the queue, to run again at the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """A job was queued."""
        self._wake.set()

    def hold(self) -> None:
        """Pause: a running job waits after its current step, and no other starts, until `release`."""
        self._free.clear()

    def release(self) -> None:
        self._free.set()
        self._wake.set()

    @property
    def held(self) -> bool:
        return not self._free.is_set()

    def _wait_while_held(self) -> None:
        while not self._free.wait(IDLE_WAIT) and not self._stopping.is_set():
            pass

    def cancel(self, job_id: str) -> None:
        """Stop `job_id` if it is running (its row says cancelled already, or is gone)."""
        with self._lock:
            if self._current == job_id:
                self._cancelled.add(job_id)

    def wait_released(self, job_id: str, timeout: float) -> bool:
        """Wait until the worker no longer runs `job_id` (so its folder can be removed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._current == job_id:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._released.wait(left)
        return True

    def live(self, job_id: str) -> Live | None:
        with self._lock:
            return self._live.get(job_id)

    def preview(self, job_id: str, number: int | None = None) -> tuple[int, bytes] | None:
        """(counter, JPEG bytes) of preview `number` of a running job if it is still kept, else of its latest; for
        an ended job, its last preview while it is among the ENDED_KEEP most recently ended."""
        with self._lock:
            kept = self._previews.get(job_id)
            if not kept:
                return self._ended.get(job_id)
            if number in kept:
                return number, kept[number]
            latest = next(reversed(kept))
            return latest, kept[latest]

    def keep_preview(self, job_id: str, number: int, data: bytes) -> None:
        """Keep `data` as the last preview of ended job `job_id` (one made from its result, after a restart)."""
        with self._lock:
            self._keep_ended(job_id, (number, data))

    def forget(self, job_id: str) -> None:
        """Drop what is kept of a deleted job."""
        with self._lock:
            self._ended.pop(job_id, None)

    def _keep_ended(self, job_id: str, preview: tuple[int, bytes]) -> None:
        """With the lock held: remember an ended job's last preview, forgetting the oldest beyond ENDED_KEEP."""
        self._ended[job_id] = preview
        self._ended.move_to_end(job_id)
        while len(self._ended) > ENDED_KEEP:
            self._ended.popitem(last=False)

    # -- the thread ----------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        _yield_to_requests()
        while not self._stopping.is_set():
            self._wait_while_held()
            if self._stopping.is_set():
                break
            try:
                job = self.store.claim()
            except Exception:
                log.exception("dreamscope studio: cannot read the queue")
                self._stopping.wait(IDLE_WAIT)
                continue
            if job is None:
                self._wake.wait(IDLE_WAIT)
                self._wake.clear()
                continue
            with self._lock:
                self._current = job.id
                self._live[job.id] = Live()
                self._ended.pop(job.id, None)  # a job queued again (recovered) starts its previews afresh
            try:
                self._run(job)
            except Exception:
                log.exception("dreamscope studio: job %s", job.id)
            finally:
                with self._lock:
                    self._current = None
                    self._live.pop(job.id, None)
                    kept = self._previews.pop(job.id, None)
                    # Its row says it ended already: a page that has not heard yet may still ask for the preview.
                    if kept and not self._stopping.is_set():  # (a stopping server may have queued it again)
                        latest = next(reversed(kept))
                        self._keep_ended(job.id, (latest, kept[latest]))
                    self._cancelled.discard(job.id)
                    self._released.notify_all()
                runtime.release_memory()  # an idle studio gives back what the job used

    def _stop_requested(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancelled or self._stopping.is_set()

    def _run(self, job: JobRow) -> None:
        folder = self.data.job(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        empty(folder)  # leftovers of an attempt the server was killed in
        output = output_name(job.recipe)
        try:
            finished = self._follow(job, self._start(job, folder / output))
        except Exception as exc:
            empty(folder)
            if not self.store.finish(job.id, "failed", error=failure_message(exc, job.recipe)):
                self._after_stop(job.id, folder)
            if not isinstance(exc, (DreamscopeError, MemoryError, OSError)):
                log.exception("dreamscope studio: job %s failed", job.id)
            return
        if not finished:  # cancelled, deleted, or the server is stopping
            if self._stopping.is_set() and self.store.requeue(job.id):
                empty(folder)
            else:
                self._after_stop(job.id, folder)
            return
        if output.endswith(".mp4") and self._note_stage(job.id, "making a GIF"):
            self._write_gif(job.id, folder / output)
        if not self.store.finish(job.id, "done", output=output):  # cancelled just as it finished
            self._after_stop(job.id, folder)

    def _note_stage(self, job_id: str, stage: str) -> bool:
        """Show `stage` for the running job; False when it was cancelled or deleted meanwhile."""
        with self._lock:
            live = self._live.get(job_id) or Live()
            live = Live(live.fraction, stage, live.loss, None, live.preview)
            self._live[job_id] = live
        return self.store.progress(job_id, live.fraction, stage, live.loss)

    def _write_gif(self, job_id: str, video: Path) -> None:
        """A GIF of the finished `video` beside it, its longest side at most GIF_SIDE, carrying the video's record.
        FrameWriter writes it under a temporary name and renames it into place, so it is never served half-made.
        Any failure (or a cancel meanwhile) costs only the GIF, and is logged: the video is the job's result."""
        gif = video.parent / gif_beside(video.name)
        try:
            info = videos.open_video(video)
            if info.frames > GIF_MAX_FRAMES:
                log.warning(
                    "dreamscope studio: job %s: no GIF beside its video (%d frames, over the %d a GIF keeps modest)",
                    job_id,
                    info.frames,
                    GIF_MAX_FRAMES,
                )
                return
            scale = min(1.0, GIF_SIDE / max(info.size))
            size = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
            with videos.FrameWriter(gif, info.fps, metadata=videos.read_metadata(video)) as writer:
                for frame in videos.read_frames(video):
                    if self._stop_requested(job_id):
                        raise _GifStopped  # leaves the `with`: FrameWriter removes its temporary file
                    writer.write(frame if frame.size == size else frame.resize(size, Image.LANCZOS))
        except _GifStopped:
            log.warning(
                "dreamscope studio: job %s: its GIF was not finished (the job was cancelled, or the server is stopping)", job_id
            )
        except Exception as exc:
            log.warning("dreamscope studio: job %s: no GIF beside its video (%s)", job_id, failure_message(exc))

    def _after_stop(self, job_id: str, folder: Path) -> None:
        """A job that stopped without a result: nothing of it is kept (a deleted job's folder goes too)."""
        if self.store.job(job_id) is None:
            remove(folder)
        else:
            empty(folder)

    def _start(self, job: JobRow, output: Path):
        """The job's Run, its inputs and output checked."""
        settings = Settings.from_json(job.settings)
        if job.resume:
            return redo.resume_zoom(self._copy_parent(job, output), settings.frames, model=self.model)
        inputs, names = {}, {}
        for role, upload_id in job.inputs.items():
            upload = self.store.upload(upload_id)
            if upload is None or not real_file(self.data.uploads, upload.file):  # a link in its place is not read
                raise DreamscopeError(f"the {role} upload {upload_id} is gone; upload the file again")
            inputs[role] = str(self.data.uploads / upload.file)
            names[role] = upload.name  # the client's name (shown_name: printable, no folders), for display only

        def describe(made: jobs.Job) -> str:
            """The command that makes it again (a probe report shows it), in the user's names, not the server's
            paths: the uploads by the names they were uploaded under, the output as a folder of their choosing."""
            return command_line(
                jobs.Job(
                    made.settings,
                    "report/",
                    {role: made.names.get(role) or Path(path).name for role, path in made.inputs.items()},
                )
            )

        return jobs.run(jobs.Job(settings, str(output), inputs, names), model=self.model, describe=describe)

    def _copy_parent(self, job: JobRow, output: Path) -> Path:
        """A continued zoom grows a copy of its parent's video, so the parent stays as it was."""
        parent = self.store.job(job.parent) if job.parent else None
        if parent is None or parent.state != "done" or not parent.output:
            raise DreamscopeError("the zoom this continues is gone (deleted); continue another one")
        if not real_file(self.data.jobs, Path(parent.id) / parent.output):  # a link in its place is not copied
            raise DreamscopeError("the video of the zoom this continues is gone from its folder; continue another one")
        source = self.data.job(parent.id) / parent.output
        temp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.part")
        try:
            shutil.copyfile(source, temp)
            os.replace(temp, output)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return output

    def _follow(self, job: JobRow, run) -> bool:
        """Consume the run's events, keeping the live state; False when it was stopped before its end."""
        started = time.monotonic()
        written = previewed = float("-inf")
        count = 0
        try:
            for event in run:
                if event.note:  # shown with the job, as the command line prints them
                    self.store.add_note(job.id, event.note)
                if event.done:  # the result is in place; a cancel that came meanwhile is seen by `finish`
                    return True
                if self.held:  # a live session has the CPU: wait between steps (the page says so)
                    self._note_stage(job.id, "paused while the live view runs")
                    while self.held and not self._stop_requested(job.id):
                        self._free.wait(IDLE_WAIT)
                if self._stop_requested(job.id):
                    return False
                now = time.monotonic()
                fraction, loss = event.fraction, finite_number(event.loss)
                elapsed = now - started
                eta = None
                if fraction > 0 and (fraction >= 0.01 or elapsed >= 2):
                    eta = round(elapsed * (1 - fraction) / fraction, 1)
                if event.picture is not None and now - previewed >= PREVIEW_EVERY:
                    data = jpeg(event.preview(PREVIEW_SIDE))
                    count += 1
                    previewed = now
                    with self._lock:
                        kept = self._previews.setdefault(job.id, OrderedDict())
                        kept[count] = data
                        while len(kept) > PREVIEW_KEEP:
                            kept.popitem(last=False)
                stage = event.stage
                live = Live(fraction, stage, loss, eta, count or None)
                with self._lock:
                    self._live[job.id] = live
                if now - written >= WRITE_EVERY:
                    written = now
                    if not self.store.progress(job.id, fraction, stage, loss):
                        return False  # cancelled or deleted: its row says so
            return True
        finally:
            run.close()  # a stopped run's recipe cleans up now


class _GifStopped(Exception):
    """The job was cancelled (or the server is stopping) while its GIF was being made."""


def output_name(recipe: str) -> str:
    """The file (or folder) a recipe's job writes in its folder."""
    return OUTPUT_NAMES[catalogue.get(recipe).output.kind].format(recipe)


def gif_beside(output: str) -> str:
    """The GIF's name (under the job's folder) beside a video result named `output`."""
    return str(PurePosixPath(output).with_suffix(".gif"))


def result_preview(path: Path) -> bytes:
    """A done picture job's result as a preview: a JPEG, its longest side at most PREVIEW_SIDE."""
    with Image.open(path) as picture:
        picture.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # a JPEG decodes at a fraction of its size; others ignore it
        picture = picture.convert("RGB")
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.LANCZOS)  # keeps its shape, never enlarges
    return jpeg(picture)


def jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def failure_message(exc: BaseException, recipe: str | None = None) -> str:
    """One line for a job that failed."""
    memory = jobs.out_of_memory(exc, recipe)
    if memory is not None:
        text = memory.worded(str)
    elif isinstance(exc, DreamscopeError):
        text = exc.worded(str)
    elif isinstance(exc, OSError):
        text = f"cannot write the result ({reason(exc)}); free some disk space"
    else:
        text = f"internal error ({type(exc).__name__}: {exc}); please report it"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."
