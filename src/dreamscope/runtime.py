"""How dreamscope shares the CPU: torch's thread count and OpenMP's wait policy, set once per process.

OpenMP threads spin while they wait for the next parallel region: 300,000 turns by default in GNU OpenMP (the
runtime torch's Linux wheels use). On a machine where another process keeps the cores busy, a thread spinning
for a descheduled sibling burns the time slice that sibling needs, and a step slows down 35-fold instead of
two-fold (benchmarks/bench_threads.py). Sleeping at once (OMP_WAIT_POLICY=PASSIVE) cures that but halves the
speed of a small step on an idle machine, because every parallel region then wakes its threads. A short spin
(3,000 turns, a few microseconds) keeps the idle speed and slows down in proportion to the cores shared. It has
to be in the environment before torch loads its OpenMP runtime, so `import dreamscope` sets it, unless the user
has chosen a policy.
"""

from __future__ import annotations

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
    itself), else the cores this process may use.

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
    return count
