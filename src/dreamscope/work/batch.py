"""Batch work: many items, one engine. The items run on this machine's processes (the default) or on a Ray cluster,
with the same results to the byte: every item runs with the same torch thread count wherever it runs.

The protocol lives here, not in the front ends:
- an `Item` is data (a task named "module:function", its JSON arguments, the output that proves it done), so it
  travels to a process or a cluster node as it is; workers load each model once (models are cached per process)
  and write their results straight to storage; the driver only schedules and counts;
- resume: an item whose output exists and whose provenance record matches (settings, input bytes) is skipped; any
  other output is made again, after the debris of a killed writer (`.NAME.XXXX.part`) is removed;
- a failing item (a damaged picture, a bug, a worker out of memory) is an outcome with its message, and the batch
  goes on; a worker that dies is replaced and its item retried (`MAX_ATTEMPTS` in all);
- progress is one stream of Events over all items; the summary (`batch.json`) lists every item and failure;
- Ctrl-C (KeyboardInterrupt) stops the workers; finished outputs stay, nothing is half-written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import runtime
from ..errors import DreamscopeError, Worded
from ..events import Event, Run, Stage, finish
from ..events import run as run_events
from ..io import files, folders, provenance
from . import catalogue, jobs

MAX_ATTEMPTS = 3  # an item whose worker died this many times is recorded as failed
SUMMARY = "batch.json"
RAY_INSTALL = "pip install 'dreamscope[ray]'"
# Pictures per shard of a folder read by batch work (an atlas's collection, a microscope's exemplars): fixed by the
# folder's size alone, so a rerun finds the shards it made.
SHARD_PICTURES = 250
TASKS: dict[str, Callable] = {}  # "module:function" -> function: every worker task (and completeness check) there is


class Stopped(KeyboardInterrupt):
    """A batch stopped by Ctrl-C: finished outputs stay; running the same batch again does the rest."""


@dataclass(frozen=True)
class Item:
    """One unit of batch work: `task(arguments)` run in a worker ("module:function", JSON arguments) makes
    `output`. `name` is what the user sees (the input's path in its folder). `done` names a check
    ("module:function", called with the item) that says whether `output` is already complete."""

    name: str
    task: str
    arguments: Mapping[str, Any]
    output: str
    done: str | None = None


@dataclass
class Outcome:
    """What became of an item: "done", "skipped" (complete from an earlier run) or "failed" (with `message`)."""

    name: str
    status: str
    output: str
    message: str = ""
    seconds: float = 0.0
    worker: str = ""
    template: str | None = None  # the message with the settings it names as {field} (DreamscopeError.template)
    attempts: int = 1


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    engine: str
    seconds: float
    summary: Path | None = None
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


def task(function: Callable) -> Callable:
    """Register a worker task (or an item's completeness check): items name it as "module:function", a string that
    crosses process and machine boundaries, which import tools cannot follow; the registry lets a test load them all."""
    TASKS[task_name(function)] = function
    return function


def task_name(function: Callable) -> str:
    return f"{function.__module__}:{function.__qualname__}"


# -- what a worker does ---------------------------------------------------------------------------------------------

_threads_set: int | None = None
_busy = False  # a local worker is running an item (SIGTERM then unwinds it; an idle one just exits)


def perform(item: Item, threads: int) -> dict:
    """Run one item in this worker: set the thread count once per process, clear a killed writer's debris, run the
    task, and describe the outcome (a dict: it crosses process and machine boundaries)."""
    global _threads_set, _busy
    if _threads_set != threads:
        runtime.configure(threads)
        _threads_set = threads
    _busy = True
    template = None
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        files.remove_debris(item.output)
        message = catalogue.function(item.task)(dict(item.arguments)) or ""
        status = "done"
    except Exception as exc:
        said = jobs.out_of_memory(exc, (item.arguments.get("settings") or {}).get("recipe"))
        if said is not None:  # the recipe's settings to lower, and what a worker can do
            said = type(said)(template=said.template + ", or give each worker more memory (fewer workers)")
        elif isinstance(exc, DreamscopeError):
            said = exc
        if said is not None:
            status, message, template = "failed", str(said), said.template
        else:
            status, message = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        _busy = False
        runtime.release_memory()
    return asdict(Outcome(item.name, status, item.output, message, time.perf_counter() - start, worker, template=template))


def _start_worker(threads: int) -> None:
    """A local worker process: Ctrl-C is the driver's to handle; SIGTERM (the driver stopping it) unwinds like
    Ctrl-C, so temporary files are removed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    global _threads_set
    runtime.configure(threads)
    _threads_set = threads


def _raise_interrupt(_signum, _frame):
    if not _busy:
        os._exit(0)
    raise KeyboardInterrupt


# -- engines ------------------------------------------------------------------------------------------------------


class Engine:
    """Runs items and yields each one's outcome (a dict) as it finishes, in any order. `threads` is the torch thread
    count of each item, wherever it runs (what `engine_for` was asked for; `run_batch` may say otherwise)."""

    name = "engine"
    workers = 1
    threads = 1

    def run(self, items: Sequence[Item], threads: int) -> Iterator[dict]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the engine started (processes, a Ray instance)."""


class InlineEngine(Engine):
    """Items one after another in this process: for a few items from Python, and for tests. The thread count is
    set for the batch and given back after it."""

    name = "this process"

    def run(self, items, threads):
        import torch

        global _threads_set
        before, _threads_set = torch.get_num_threads(), None
        try:
            for item in items:
                yield perform(item, threads)
        finally:
            torch.set_num_threads(before)
            _threads_set = None


class LocalEngine(Engine):
    """Worker processes on this machine (started fresh: spawn, not fork, since forking a process whose OpenMP
    threads have run can hang). A worker that dies breaks the pool: a new pool takes over, and the items that were
    running are tried again, up to MAX_ATTEMPTS each."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self.name = f"{self.workers} local process{'es' if self.workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def run(self, items, threads):
        pending = deque(items)
        attempts: dict[str, int] = {}
        while pending:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(threads,)
            )
            running: dict = {}
            broken = False
            try:
                while (pending or running) and not broken:
                    while pending and len(running) < self.workers:  # no deeper queue: a dead worker's items were running
                        item = pending.popleft()
                        running[self._pool.submit(perform, item, threads)] = item
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            broken = True  # kept in `running`: tried again below
                            continue
                        except Exception as exc:
                            outcome = asdict(
                                Outcome(running[future].name, "failed", running[future].output, f"{type(exc).__name__}: {exc}")
                            )
                        item = running.pop(future)
                        outcome["attempts"] = attempts.get(item.name, 0) + 1
                        yield outcome
            finally:
                self._stop(early=bool(pending or running))
            if broken:  # a worker died: which of the running items killed it is unknown, so each is tried again
                for item in reversed(list(running.values())):
                    attempts[item.name] = attempts.get(item.name, 0) + 1
                    if attempts[item.name] >= MAX_ATTEMPTS:
                        yield asdict(
                            Outcome(
                                item.name,
                                "failed",
                                item.output,
                                f"its worker died {MAX_ATTEMPTS} times (out of memory? killed?)",
                                attempts=MAX_ATTEMPTS,
                            )
                        )
                    else:
                        pending.appendleft(item)

    def _stop(self, early: bool = True) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not early:
            pool.shutdown(wait=True)
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a running item is stopped now, not when it ends
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

    def close(self) -> None:
        self._stop()


class RayEngine(Engine):
    """Items as Ray tasks on a cluster: `address` "auto" (the cluster this machine belongs to, started with
    `ray start`), HOST:PORT or ray://HOST:PORT of its head, or "local" (a Ray instance started here for this batch,
    on 127.0.0.1, stopped after it). Each task asks for `threads` CPUs. Ray retries a task whose worker died
    (MAX_ATTEMPTS in all); the inputs and outputs must be on storage every node sees under the same path."""

    def __init__(self, address: str = "auto"):
        self.address = address
        self._started = self._abandoned = False
        self._connect()

    def _connect(self) -> None:
        ray = import_ray()
        if not ray.is_initialized():
            _check_reachable(self.address)
            # the driver's own module folders (a custom model's package, not its Python's): workers import from them too
            options = dict(
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(module_folders())}},
            )
            try:
                if self.address == "local":
                    ray.init(num_cpus=runtime.cores(), _node_ip_address="127.0.0.1", **options)
                else:
                    ray.init(address=self.address, **options)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                how = "start one with `ray start --head`, or use --ray local" if self.address == "auto" else "check the address"
                why = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
                raise DreamscopeError(f"cannot reach a Ray cluster at {self.address} ({why}); {how}") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, cpus)
        self.name = f"Ray ({'a local instance' if self.address == 'local' else self.address}, {cpus} CPUs)"

    def run(self, items, threads):
        import ray

        self._connect()  # again, after close()
        task = ray.remote(perform).options(num_cpus=threads, max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)
        pending = deque(items)
        window = max(1, 2 * self.workers // threads)  # enough queued to keep every worker busy, not the whole batch
        running: dict = {}
        try:
            while pending or running:
                while pending and len(running) < window:
                    item = pending.popleft()
                    running[task.remote(item, threads)] = item
                finished, _ = ray.wait(list(running), num_returns=1)
                for ref in finished:
                    item = running.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.OutOfMemoryError:
                        yield asdict(
                            Outcome(
                                item.name,
                                "failed",
                                item.output,
                                "out of memory: Ray stopped its worker; use fewer workers per node or smaller settings",
                                attempts=MAX_ATTEMPTS,
                            )
                        )
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as exc:
                        yield asdict(
                            Outcome(
                                item.name,
                                "failed",
                                item.output,
                                f"its worker died {MAX_ATTEMPTS} times ({type(exc).__name__})",
                                attempts=MAX_ATTEMPTS,
                            )
                        )
        finally:
            # Stopped early (Ctrl-C): the tasks still running end with this driver's job, when close() disconnects.
            # (Cancelling them one by one instead, ray.cancel(force=True), can crash Ray 2.60's driver when a task
            # finishes at that moment: "Tried to complete task that was not pending".)
            self._abandoned = bool(running)

    def close(self) -> None:
        import ray

        if (self._started or self._abandoned) and ray.is_initialized():
            ray.shutdown()
        self._started = self._abandoned = False


def _token_present() -> bool:
    return bool(
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or os.path.isfile(os.path.expanduser("~/.ray/auth_token"))
    )


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at HOST:PORT (Ray itself would retry for minutes)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except ValueError:
        raise DreamscopeError(f"a Ray address is HOST:PORT (e.g. 127.0.0.1:6379), auto or local; got {address!r}") from None
    except OSError as exc:
        raise DreamscopeError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"`ray start --head --port {port}`, or check the address"
        ) from None


def module_folders() -> list[str]:
    """The folders on this process's module path that are not part of its Python installation."""
    import sysconfig

    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"])}
    found = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(path) and not any(path == p or path.startswith(p + os.sep) for p in installed) and path not in found:
            found.append(path)
    return found


def import_ray():
    """Ray, with quiet defaults (no usage reports over the network), or an error that says what to install."""
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if "RAY_AUTH_MODE" not in os.environ and _token_present() and "ray" not in sys.modules:
        # Ray 2.59+ starts clusters with token authentication, but a client sends its token only when told to (read
        # when ray is imported; Ray 2.61 will by default): without it a connection is refused over and over.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError:
        raise DreamscopeError(f"running on Ray needs the ray extra: {RAY_INSTALL}") from None
    logging.getLogger("ray").setLevel(logging.ERROR)  # its start-up notices are not the user's business
    return ray


def engine_for(ray: str | None = None, workers: int | None = None, threads: int = 1) -> Engine:
    """The engine a front end asked for: Ray at `ray` ("auto", "local" or an address), else `workers` local
    processes (default: as many as the cores allow at `threads` each; 0 runs in this process)."""
    if threads < 1:
        raise DreamscopeError(f"threads per worker must be at least 1, got {threads}")
    if ray is not None:
        if workers is not None:
            raise DreamscopeError("give workers or a Ray cluster, not both: Ray sizes its workers by the cluster's CPUs")
        engine = RayEngine(ray)
        engine.threads = threads
        return engine
    if workers is None:
        workers = max(1, runtime.cores() // threads)
    if workers < 0:
        raise DreamscopeError(f"workers must be 0 (this process) or more, got {workers}")
    engine = InlineEngine() if workers == 0 else LocalEngine(workers)
    engine.threads = threads
    return engine


# -- the driver ---------------------------------------------------------------------------------------------------


def run_batch(
    items: Sequence[Item],
    engine: Engine | None = None,
    *,
    threads: int | None = None,
    summary: str | os.PathLike | None = None,
    describe: Mapping[str, Any] | None = None,
) -> Run:
    """Run the items on `engine` (default: local processes sized to the cores) with `threads` torch threads each
    (default: the engine's): events over all items, the last one's result a BatchResult. Complete outputs are
    skipped, not redone. `summary` is where batch.json goes (with `describe`: what the batch was, e.g. its
    settings); it is written at the end, also after Ctrl-C, which ends the run with `Stopped`. Items are data, checked
    when they are made (`folder_jobs` checks a folder's settings against the model before it makes any)."""
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise DreamscopeError("two items of the batch have the same name")
    engine = engine or engine_for()
    return Run(_drive(list(items), engine, threads or engine.threads, Path(summary) if summary else None, dict(describe or {})))


def _drive(items, engine: Engine, threads: int, summary: Path | None, describe: dict) -> Iterator[Event]:
    start = time.perf_counter()
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
    total = len(items)
    outcomes: list[Outcome] = []
    todo = []
    for item in items:
        if item.done is not None and _complete(item):
            outcomes.append(Outcome(item.name, "skipped", item.output, "complete from an earlier run", attempts=0))
        else:
            todo.append(item)
    if outcomes:
        yield Event(
            (Stage("item", len(outcomes), total, "skipped"),),
            len(outcomes) / max(1, total),
            note=f"{len(outcomes)} of {total} already done (their records match): skipped",
        )
    interrupted = False
    try:
        for data in engine.run(todo, threads):
            outcome = Outcome(**data)
            outcomes.append(outcome)
            note = None
            if outcome.status == "failed":
                name = outcome.name.replace("{", "{{").replace("}", "}}")
                note = Worded(
                    f"{name} failed: {outcome.template}" if outcome.template else None,
                    f"{outcome.name} failed: {outcome.message}",
                )
            yield Event((Stage("item", len(outcomes), total, outcome.name),), len(outcomes) / max(1, total), note=note)
    except KeyboardInterrupt:
        interrupted = True
        raise Stopped() from None
    finally:
        engine.close()
        result = BatchResult(_in_order(outcomes, items), engine.name, time.perf_counter() - start, summary, interrupted)
        if summary is not None:
            write_summary(result, summary, describe, total)
    yield finish(result)


def _complete(item: Item) -> bool:
    try:
        return bool(catalogue.function(item.done)(item))
    except (DreamscopeError, OSError, ValueError):
        return False


def _in_order(outcomes: list[Outcome], items: Sequence[Item]) -> list[Outcome]:
    rank = {item.name: number for number, item in enumerate(items)}
    return sorted(outcomes, key=lambda outcome: rank.get(outcome.name, len(rank)))


def _plain(outcome: Outcome) -> dict:
    """An outcome for batch.json: its message in the library's words (the template is for front ends)."""
    data = asdict(outcome)
    del data["template"]
    return data


def write_summary(result: BatchResult, path: Path, describe: dict, total: int) -> None:
    """batch.json: what the batch was, its engine, and every item's outcome (failures first to read)."""
    data = {
        **describe,
        "engine": result.engine,
        "items": total,
        "done": result.count("done"),
        "skipped": result.count("skipped"),
        "failed": result.count("failed"),
        "not run": total - len(result.outcomes),
        "interrupted": result.interrupted,
        "seconds": round(result.seconds, 3),
        "failures": [{"item": o.name, "message": o.message} for o in result.failures],
        "outcomes": [{**_plain(o), "seconds": round(o.seconds, 3)} for o in result.outcomes],
    }
    files.write_file(path, lambda handle: handle.write(json.dumps(data, indent=1).encode()))


# -- jobs over a folder: `batch dream`, `batch probe` (every recipe whose record says `batch`) -----------------


@task
def job_item(arguments: Mapping[str, Any]) -> str:
    """A worker's task: one Job (jobs.py) run to its output."""
    job = jobs.Job.from_json(arguments)
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    run_events(jobs.run(job))
    return ""


@task
def job_complete(item: Item) -> bool:
    """Whether a job's output exists with a record of the same settings, made from the same input bytes."""
    job = jobs.Job.from_json(item.arguments)
    if not os.path.exists(job.output):
        return False
    record = provenance.read(job.output)
    if record.settings != provenance.as_ran(job.settings):  # the record names resolved defaults as they ran
        return False
    source = job.inputs.get("input")
    return source is None or record.inputs.get("input", {}).get("file") == provenance.file_digest(source)


def output_suffix(recipe) -> str:
    """What a batch names an output after its input: a picture, or a report's folder."""
    return ".png" if recipe.output.kind == "picture" else ""


def folder_jobs(folder: str | os.PathLike, settings, output: str | os.PathLike) -> list[Item]:
    """An item per picture under `folder` (recursively, in a fixed order): its output in `output` under the same
    relative path, named after it (a.jpg -> a.png; a probe's report folder a/). Names that would clash (a.jpg and
    a.png) keep their extension (a_jpg.png, a_png.png).

    Checked here, once, before any work and before anything is written: the folder, the output folder (neither the
    input folder nor one that holds it, and no output the same file as any input), and the settings against their
    model (`jobs.check_settings`: layers, classes, channels, tiles), so a mistake in the settings is one error
    naming the field, not a failure per picture. What depends on each picture (a damaged file, one too small for
    the octaves) is that picture's failure when it runs."""
    recipe = catalogue.get(settings.recipe)
    if not recipe.batch:
        raise DreamscopeError(f"batch runs {' or '.join(batch_recipes())} over a folder, not {recipe.name}")
    root = Path(folder)
    if not root.is_dir():
        raise DreamscopeError(f"not a folder: {folder} (give the folder of pictures to {recipe.name})")
    out = Path(output).resolve()
    _refuse_output_folder(output, folder)
    # Pictures in an output folder inside the input folder are an earlier run's outputs, not inputs.
    found = [path for path in folders.picture_files(root) if not path.resolve().is_relative_to(out)]
    if not found:
        raise DreamscopeError(f"no pictures in {folder} (looked for {', '.join(folders.PICTURE_SUFFIXES)} files, recursively)")
    check_output_folder(out)
    stems = [str(path.relative_to(root).with_suffix("")) for path in found]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    items = []
    for path, stem in zip(found, stems):
        relative = path.relative_to(root)
        if stem in clashing:
            stem = f"{stem}_{path.suffix.lstrip('.').lower()}"
        target = out / (stem + output_suffix(recipe))
        job = jobs.Job(settings, str(target), {"input": str(path.resolve())})
        items.append(Item(str(relative), task_name(job_item), job.to_json(), str(target), task_name(job_complete)))
    _refuse_outputs_over_inputs(items, found)
    # On the CPU: what is checked does not depend on the device, and the driver leaves an accelerator to the workers.
    jobs.check_settings(settings, device="cpu")
    return items


def _refuse_output_folder(output: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Refuse an output folder that is the input folder or holds it (compared as files, by device and inode): its
    outputs, named after pictures in subfolders, would land among the input pictures (`top/photos -o top` wrote the
    dream of photos/a.jpg over the input photos/a.png) and be taken as inputs by the next run. An output folder
    inside the input folder is kept apart: the pictures in it are never inputs, and no output lands outside it."""
    key = files.file_key(output)
    if key is None:  # not made yet: it holds nothing
        return
    inside = Path(folder).resolve()
    if key == files.file_key(inside):
        raise DreamscopeError(
            f"the output folder {files.shown(output)} is the input folder; name another folder, so the pictures are "
            "kept as they are"
        )
    if any(key == files.file_key(parent) for parent in inside.parents):
        raise DreamscopeError(
            f"the output folder {files.shown(output)} holds the input folder {files.shown(folder)}, so outputs would "
            "land among (and over) its pictures; name a folder beside it, or inside it"
        )


def _refuse_outputs_over_inputs(items: Sequence[Item], inputs: Sequence[Path]) -> None:
    """Refuse a batch, before any work, where an output is the same file as any of its inputs (device and inode, as
    `files.same_file` compares: a link in the output folder that leads back to a picture counts), or is a report
    folder, replaced whole, that holds one."""
    keys = {files.file_key(path): path for path in inputs}
    keys.pop(None, None)
    holders = {parent for path in inputs for parent in path.resolve().parents}  # every folder that holds an input
    for item in items:
        key = files.file_key(item.output)
        if key is None:
            continue
        given = keys.get(key)
        if given is None and os.path.isdir(item.output) and Path(item.output).resolve() in holders:
            given = next(path for path in inputs if path.resolve().is_relative_to(Path(item.output).resolve()))
        if given is not None:
            raise DreamscopeError(
                f"the output {files.shown(item.output)} of {files.shown(item.name)} would replace the input "
                f"{files.shown(given)}; name another output folder, so the pictures are kept as they are"
            )


def batch_recipes() -> list[str]:
    """The recipes `batch` runs over a folder."""
    return [name for name, recipe in catalogue.RECIPES.items() if recipe.batch]


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, a batch's output folder that cannot be made or written (it is made when work starts)."""
    if folder.exists() and not folder.is_dir():
        raise DreamscopeError(f"the output is a folder, but {folder} is a file; give a folder name")
    files.check_folder(folder if folder.exists() else folder.parent)


# Names that lived in batch.py before the package was split into layers (0.2): where each went.
_MOVED = {"remove_debris": files}
_GONE = {"SUFFIX": "a recipe's output suffix is dreamscope.work.batch.output_suffix(dreamscope.work.catalogue.get(RECIPE))"}


def __getattr__(name: str):
    if name in _MOVED:
        import warnings

        warnings.warn(f"{__name__}.{name} moved to {_MOVED[name].__name__}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(_MOVED[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}" + (f": {_GONE[name]}" if name in _GONE else ""))
