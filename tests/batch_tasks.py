"""Batch tasks for the engine tests: a real job that first leaves its worker's process id where the test can find
it, so the test can kill that worker in the middle of the item."""

from __future__ import annotations

import os
from pathlib import Path

from dreamscope.work import batch


def marked_job(arguments) -> str:
    Path(arguments["marks"], str(os.getpid())).touch()
    return batch.job_item(arguments["job"])


def marked(items, marks) -> list:
    """The same items, each announcing its worker in the folder `marks` before it runs."""
    return [
        batch.Item(item.name, "batch_tasks:marked_job", {"job": dict(item.arguments), "marks": str(marks)}, item.output)
        for item in items
    ]
