"""Real write failures for the tests: pictures and videos written by a child process whose files may grow to only
N bytes (RLIMIT_FSIZE: a write past it fails with EFBIG, "File too large"), or onto a small RAM disk of its own
that fills up (ENOSPC, "No space left on device"), as a full disk would.

All jobs of a test module run in one child process (it pays for importing dreamscope once), one after another,
each under its own file size limit; each reports the error it raised (or none) and the files left in its output
folder, listed by the child itself (the RAM disk vanishes with it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# Runs the jobs in argv[1] (JSON: {name: [limit or null, [function, args...]]}) and prints
# {name: [error type or null, message, files left beside the output]}.
CHILD = r"""
import json, os, resource, signal, sys
from PIL import Image
from dreamscope.io import images, videos

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
_, HARD = resource.getrlimit(resource.RLIMIT_FSIZE)

def save(out, source, metadata=None):
    images.save_image(Image.open(source), out, metadata)

def video(out, source, audio_from=None, metadata=None):
    with videos.FrameWriter(out, 12, audio_from=audio_from, metadata=metadata) as writer:
        for frame in videos.read_frames(source):
            writer.write(frame)

results = {}
for name, (limit, (function, *args)) in json.loads(sys.argv[1]).items():
    resource.setrlimit(resource.RLIMIT_FSIZE, (HARD if limit is None else limit, HARD))
    try:
        globals()[function](*args)
        error = [None, ""]
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (HARD, HARD))
    folder = os.path.dirname(args[0])
    results[name] = [*error, sorted(os.listdir(folder)) if os.path.isdir(folder) else []]
print(json.dumps(results))
"""


def run_jobs(jobs: dict[str, tuple[int | None, list]], small_disk: tuple[Path, int] | None = None) -> dict[str, list]:
    """{name: [error type or None, message, files left beside the output]} for jobs given as {name: (file size
    limit in bytes or None, [function, args...])}, run in one child process; with `small_disk` = (folder, bytes),
    a RAM disk of that size is mounted on the folder for the child (see small_disk_problem)."""
    command = [sys.executable, "-c", CHILD, json.dumps(jobs, default=str)]
    if small_disk is not None:
        folder, size = small_disk
        mount = f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "$@"'
        command = ["unshare", "--mount", "--map-root-user", "sh", "-c", mount, "sh", str(folder), *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def small_disk_problem(folder: Path) -> str | None:
    """Why a process can't mount a RAM disk on `folder` in a mount namespace of its own here, or None if it can."""
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux) to mount a small RAM disk"
    folder.mkdir(exist_ok=True)
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return f"cannot mount a RAM disk here ({probe.stderr.strip()})" if probe.returncode else None
