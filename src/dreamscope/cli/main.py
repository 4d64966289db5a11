"""The `dreamscope` command: parse the arguments, run the command, and map what went wrong to one `error:` line and
an exit code (1: a failure, 2: a mistake in the command or its settings, 130: interrupted, 141: a closed pipe)."""

from __future__ import annotations

import os
import signal
import sys

from ..errors import DreamscopeError
from ..io.files import shown
from ..work.flags import argument_path, flag_of
from .commands import wording
from .parser import build_parser

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what shells report for a program stopped by SIGPIPE


def _terminate(_signum, _frame):
    """SIGTERM is handled like Ctrl-C: temporary files are removed, a zoom keeps its frames and says how to resume."""
    raise KeyboardInterrupt


def _load_torch() -> None:
    """Import torch with Ctrl-C and SIGTERM held back: an interrupt inside a C extension's start-up leaves it half
    initialized (a SystemError, not a KeyboardInterrupt). One that arrives meanwhile is raised once it is loaded."""
    if "torch" in sys.modules:
        return
    arrived = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: arrived.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        import torch  # noqa: F401
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    words, args = flag_of, None
    try:
        args = build_parser().parse_args(argv)
        words = wording(args)
        if args.command not in ("models", "sample"):
            _load_torch()
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not as a traceback at exit
        return code
    except KeyboardInterrupt as exc:
        _interrupted(exc)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped early (`dreamscope layers | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (DreamscopeError, MemoryError, RuntimeError) as exc:
        from ..work.jobs import out_of_memory

        said = out_of_memory(exc, _recipe_of(args))
        if said is None and not isinstance(exc, DreamscopeError):
            raise
        said = said or exc
        print(f"error: {said.worded(words)}", file=sys.stderr)
        return said.exit_code


def _recipe_of(args) -> str | None:
    """The recipe a command runs (zoom --morph runs morph), for the settings to name when memory runs out."""
    if args is None:
        return None
    command = getattr(args, "recipe", None) or args.command  # batch names its recipe
    if command == "zoom" and "classes" in vars(args):
        return "morph"
    return command


def _interrupted(exc: KeyboardInterrupt) -> None:
    """Say what an interrupt left: the outputs a batch finished, the frames of a zoom, or nothing."""
    from ..work.batch import Stopped
    from ..work.jobs import Interrupted

    if isinstance(exc, Stopped):
        print(
            "error: interrupted; the outputs finished so far are kept: run the same command again to do the rest", file=sys.stderr
        )
    elif isinstance(exc, Interrupted):
        how = (
            f"finish it with: dreamscope zoom --resume {argument_path(shown(exc.output))}"
            if exc.resumable
            else "a morph cannot be resumed"
        )
        print(f"error: interrupted; wrote the {exc.frames} frames done to {shown(exc.output)}; {how}", file=sys.stderr)
    else:
        print("error: interrupted; nothing was written", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
