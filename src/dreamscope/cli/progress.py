"""Drawing a run's events on the terminal: one progress bar (fraction done, time left, where it is) and its notes."""

from __future__ import annotations

import sys


def say(text: str, bar=None) -> None:
    """A line on stderr, above the progress bar when one is shown."""
    if bar is not None and not bar.disable:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def follow(run, quiet: bool, desc: str):
    """Consume a run's events with a progress bar; print its notes. Returns its last event (the done one, with the
    result and, in its note, a summary such as "5 frames, 96x64, 10 fps")."""
    from tqdm import tqdm  # imported on first use: `dreamscope --help` stays quick

    last = None
    # disable=None: off when stderr is not a terminal (logs, pipes)
    with tqdm(
        total=1000,
        disable=True if quiet else None,
        file=sys.stderr,
        leave=False,
        desc=desc,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
    ) as bar:
        for event in run:
            if event.done:
                last = event
                continue
            if event.note:
                say(f"note: {worded(event.note)}", bar)
            if event.stages:
                bar.set_postfix_str(event.stage + (f", loss {event.loss:.3g}" if event.loss is not None else ""), refresh=False)
            bar.update(round(event.fraction * 1000) - bar.n)
    return last


def summary(event) -> str:
    """ " (note)" for a done event with a note, else ""."""
    return f" ({worded(event.note)})" if event is not None and event.note else ""


def worded(note) -> str:
    """A note as the command line says it: the settings it names as flags."""
    from ..work.flags import flag_of

    return note.worded(flag_of) if hasattr(note, "worded") else str(note)
