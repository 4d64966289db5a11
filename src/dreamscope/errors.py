"""The one family of exceptions for user mistakes: the CLI prints `error: <message>` and exits non-zero."""

from __future__ import annotations

import difflib


class DreamscopeError(Exception):
    """A problem the user can fix; the message says what went wrong and how to fix it, in one line."""

    exit_code = 1


def suggest(name: str, choices, n: int = 3) -> str:
    """' (did you mean a, b?)' for the closest choices to a mistyped name, or '' when none is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if not close:  # prefix matches help with partial names such as "stage5"
        close = [c for c in lowered if c.startswith(name.lower())][:n]
    return f" (did you mean {', '.join(lowered[c] for c in close)}?)" if close else ""


class UsageError(DreamscopeError):
    """A malformed command line (unknown option, a number that is not a number)."""

    exit_code = 2
