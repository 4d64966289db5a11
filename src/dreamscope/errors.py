"""The one family of exceptions for user mistakes: front ends show the message (the CLI as `error: <message>`,
the studio as a 4xx naming the field) and never a traceback."""

from __future__ import annotations

import difflib


class DreamscopeError(Exception):
    """A problem the user can fix; the message says what went wrong and how to fix it, in one line.

    A message that advises changing settings names them as {field} placeholders in `template` (literal braces
    doubled), so each front end words them its own way (`worded`): "use a smaller {max_size}" reads "use a
    smaller max_size" in Python and "use a smaller --max-size" on the command line.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, template: str | None = None):
        self.template = template
        super().__init__(message if template is None else template.format_map(_Names(str)))

    def worded(self, name_of) -> str:
        """The message with every setting it mentions named by `name_of(field)`."""
        return str(self) if self.template is None else self.template.format_map(_Names(name_of))

    def __reduce__(self):  # survives pickling (worker processes, Ray) with its template
        return _rebuild, (type(self), str(self), self.__dict__)


class Worded(str):
    """Text (a note) that may name settings as {field} placeholders, like DreamscopeError's template: it reads
    with field names, and `worded` lets a front end name them its own way."""

    template: str | None

    def __new__(cls, template: str | None, text: str | None = None):
        made = super().__new__(cls, text if text is not None else template.format_map(_Names(str)))
        made.template = template
        return made

    def worded(self, name_of) -> str:
        return str(self) if self.template is None else self.template.format_map(_Names(name_of))


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


class SettingsError(DreamscopeError):
    """A setting that cannot take its value. The library names settings by their field names ("octaves must be at
    least 1"); each front end words them its own way (the CLI as flags: "--octaves must be at least 1").

    `problem` may mention other settings as {name} placeholders (literal braces doubled), so they are worded the
    same way: "is too many for this picture; use fewer {octaves} or a smaller {octave_scale}".
    """

    exit_code = 2

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(template=f"{{{field}}} {problem}")


class OutOfMemory(DreamscopeError):
    """The machine ran out of memory; the job that knows its recipe says which settings to lower."""


class UnknownName(SettingsError):
    """A setting naming what the model lacks (a layer, a class, a channel). Worded by field like any setting, but
    a failure of the run (exit 1), as it has always been: it is found only once the model is known."""

    exit_code = 1


class _Names(dict):
    def __init__(self, name_of):
        super().__init__()
        self.name_of = name_of

    def __missing__(self, key: str) -> str:
        return self.name_of(key)


def _rebuild(cls, message, state):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def literal(value) -> str:
    """A value for a SettingsError problem text: braces doubled so they are not read as placeholders."""
    return str(value).replace("{", "{{").replace("}", "}}")
