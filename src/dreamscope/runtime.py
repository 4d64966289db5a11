"""How dreamscope shares the CPU and memory: torch's thread count, OpenMP's wait policy and the allocator's,
set once per process.

OpenMP threads spin while they wait for the next parallel region: 300,000 turns by default in GNU OpenMP (the
runtime torch's Linux wheels use). On a machine where another process keeps the cores busy, a thread spinning
for a descheduled sibling burns the time slice that sibling needs, and a step slows down 35-fold instead of
two-fold (benchmarks/bench_threads.py). Sleeping at once (OMP_WAIT_POLICY=PASSIVE) cures that but halves the
speed of a small step on an idle machine, because every parallel region then wakes its threads. A short spin
(3,000 turns, a few microseconds) keeps the idle speed and slows down in proportion to the cores shared. It has
to be in the environment before torch loads its OpenMP runtime, so `import dreamscope` sets it, unless the user
has chosen a policy.

Memory: glibc's malloc gives a freed block back to the OS at once when it was larger than its mmap threshold
(32 MiB at most when it adapts the threshold itself) or when the free top of the heap passes its trim threshold.
A dream step frees its feature maps (25 MiB each at 512 px) and allocates them again the next step, so each step
page-faulted them in anew: 29,000 faults a 512 px step, half of its 0.14 s spent by the kernel zeroing pages.
`configure` raises both thresholds, so freed memory is reused (no faults; 0.09 s a step, 3% more peak memory); a
dream of a big picture hands it back after every step, and a worker after every job (`release_memory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

ENV = "DREAMSCOPE_THREADS"


SPIN = {"GOMP_SPINCOUNT": "3000", "KMP_BLOCKTIME": "1"}  # GNU OpenMP: turns; Intel's (some builds): ms


def prepare_environment() -> None:
    """Set the OpenMP wait policy for this process, if torch is not loaded yet and the user has not chosen one."""
    if "torch" in sys.modules or any(name in os.environ for name in ("OMP_WAIT_POLICY", *SPIN)):
        return
    os.environ.update(SPIN)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure(threads: int | None = None) -> int:
    """Set torch's thread count: `threads`, else $DREAMSCOPE_THREADS, else $OMP_NUM_THREADS (which torch reads
    itself), else the cores this process may use; and the allocator's policy (`keep_freed_memory`).

    Returns the count set. Call it once, before the first tensor work (a worker does it when it starts).
    """
    from .errors import DreamscopeError

    if threads is None and os.environ.get(ENV):
        text = os.environ[ENV]
        try:
            threads = int(text)
        except ValueError:
            raise DreamscopeError(f"{ENV} must be a whole number of threads, got {text!r}") from None
        if threads < 1:
            raise DreamscopeError(f"{ENV} must be at least 1, got {threads}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024):
        raise DreamscopeError(f"threads must be a whole number from 1 to 1024, got {threads!r}")
    import torch

    count = threads or (torch.get_num_threads() if os.environ.get("OMP_NUM_THREADS") else cores())
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    keep_freed_memory()
    return count


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 256 << 20  # blocks up to this come from the heap, which reuses them
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept for the next step (release_memory hands it back)


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - looking them up fails where they are missing: glibc has both, musl neither
        return libc
    except (OSError, AttributeError):
        return None


_libc = _glibc()


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the OS (see the module's docstring).
    Only for processes dreamscope runs (the CLI, the studio, batch workers): `configure` calls it."""
    chosen = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
    if _libc is not None and not any(name in os.environ for name in chosen):  # the user's own tuning wins
        _libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


_M_PERTURB = -6


@contextlib.contextmanager
def filled_memory(byte: int = 0x5A):
    """Within it, glibc fills each block it hands out with a fixed byte (mallopt's M_PERTURB), so a library that
    reads memory it never wrote (the video encoder does) reads the same bytes in every run. Each allocation then
    costs a fill: only for short, small work. A user's own MALLOC_PERTURB_ wins; elsewhere than glibc, nothing."""
    active = _libc is not None and "MALLOC_PERTURB_" not in os.environ
    if active:
        _libc.mallopt(_M_PERTURB, byte)
    try:
        yield
    finally:
        if active:
            _libc.mallopt(_M_PERTURB, 0)


def release_memory() -> None:
    """Hand memory freed so far back to the OS (a step of a 4K picture frees ~250 MiB; a finished job all of its)."""
    if _libc is not None:
        _libc.malloc_trim(0)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception means the machine ran out of memory: Python's MemoryError, or PyTorch's allocators
    (a RuntimeError on the CPU, "can't allocate memory"; torch.OutOfMemoryError on a GPU)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("out of memory", "can't allocate memory", "not enough memory")
    )
