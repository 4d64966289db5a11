"""Shared fixtures: small real photos and a runner for the real `dreamscope` command in a subprocess."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

import dreamscope

PHOTO_SIZE = (160, 120)  # (width, height) of the `photo` fixtures: small enough to dream in a second


def chelsea(size: tuple[int, int] | None = PHOTO_SIZE):
    """scikit-image's cat photo as an RGB PIL image, resized to `size` (width, height), or full size for None."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.chelsea())
    return img if size is None else img.resize(size, Image.LANCZOS)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC over type and payload."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def bomb_png_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A well-formed PNG header declaring width x height RGB pixels, with only a tiny IDAT behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, truecolour, deflate, no filter, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def model():
    """The default network, loaded once (load_model caches it too; this keeps tests from naming it)."""

    return dreamscope.load_model()


@pytest.fixture
def photo():
    """A small real photo (PIL image, 160x120 RGB)."""
    return chelsea()


@pytest.fixture
def photo_path(tmp_path) -> Path:
    """A small real photo (160x120 RGB) written as PNG into tmp_path."""
    path = tmp_path / "photo.png"
    chelsea().save(path)
    return path


@pytest.fixture
def bad_pictures(tmp_path) -> dict[str, Path]:
    """Files that are not usable pictures, by kind: empty, text (named .jpg), truncated PNG, decompression bomb."""
    folder = tmp_path / "bad"
    folder.mkdir()
    paths = {
        name: folder / file
        for name, file in [("empty", "empty.png"), ("text", "photo.jpg"), ("truncated", "truncated.png"), ("bomb", "bomb.png")]
    }
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("this is not a picture\n")
    full = folder / "full.png"
    chelsea().save(full)
    data = full.read_bytes()
    full.unlink()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["bomb"].write_bytes(bomb_png_bytes())
    return paths


class CliResult(NamedTuple):
    """(returncode, stdout, stderr) of one run; a tuple, so it unpacks like one."""

    returncode: int
    stdout: str
    stderr: str


def run_python(*argv, cwd=None, env=None, timeout: float = 300) -> CliResult:
    """Run `python ARGV` (this interpreter, this virtual environment) in a subprocess; never raises on failure."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, *map(str, argv)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# The start of a command line for a child that a test interrupts with SIGINT: `python -c <reset> -m dreamscope ...`
# resets SIGINT to its default and unblocks it, then execs (same pid) the rest. A child inherits an ignored or blocked
# SIGINT from the process that starts it, and then runs to its end whatever the test sends. A full parallel run once
# showed exactly that (a zoom and a Ray batch ran to the end after Ctrl-C, as they do under an ignoring parent; what
# left the worker so was not found), and an interrupt test must not depend on the state its runner is in.
INTERRUPTIBLE = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
]


def run_dreamscope(*args, cwd=None, env=None, timeout: float = 300) -> CliResult:
    """Run `python -m dreamscope ARGS` in a fresh interpreter, as a user would; never raises on failure."""
    return run_python("-m", "dreamscope", *args, cwd=cwd, env=env, timeout=timeout)


# Runs `python -m dreamscope ARGS` (as runpy does for -m) once per [folder, args] job in argv[1] (JSON), with
# fds 1 and 2 redirected to files per job; prints the [exit code, stdout, stderr] of each as JSON on real stdout.
USAGE_DRIVER = r"""
import json, os, runpy, sys, tempfile, traceback
results, real_out, real_err = [], os.dup(1), os.dup(2)
for folder, args in json.loads(sys.argv[1]):
    os.chdir(folder)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        sys.argv = ["dreamscope", *args]
        try:
            runpy.run_module("dreamscope", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc(); code = 1
        sys.stdout.flush(); sys.stderr.flush()
        texts = []
        for handle in (out, err):
            handle.seek(0); texts.append(handle.read().decode())
        results.append([code, *texts])
os.dup2(real_out, 1); os.dup2(real_err, 2)
print(json.dumps(results))
"""


def run_good_and_mistakes(folder, good: dict, mistakes: dict, run_many, env=None) -> dict[str, CliResult]:
    """Run each command of `good` in its own interpreter, side by side, and the `mistakes` (which stop before
    any work) one after another in one more (USAGE_DRIVER), all in `folder`; results by name."""
    import json

    with ThreadPoolExecutor(max_workers=1) as pool:
        together = pool.submit(
            run_python, "-c", USAGE_DRIVER, json.dumps([[str(folder), list(args)] for args in mistakes.values()]), env=env
        )
        results = dict(zip(good, run_many([(args, folder) for args in good.values()], env=env)))
        driver = together.result()
    assert driver.returncode == 0 and not driver.stderr, driver.stderr
    results.update(zip(mistakes, (CliResult(*result) for result in json.loads(driver.stdout))))
    return results


@pytest.fixture(scope="session")
def run_cli():
    """`run_cli(*args, cwd=None, env=None)` -> (returncode, stdout, stderr) of the real CLI in a subprocess."""
    return run_dreamscope


@pytest.fixture(scope="session")
def run_cli_many():
    """`run_cli_many([(args, cwd), ...])` -> results in the same order, several subprocesses at a time.

    Each run costs a couple of seconds of interpreter start-up (importing torch); running them side by side
    keeps a suite of many CLI checks fast.
    """

    def run_many(jobs, env=None, workers: int | None = None):
        workers = workers or max(2, min(4, (os.cpu_count() or 2) + 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_dreamscope, *args, cwd=cwd, env=env) for args, cwd in jobs]
            return [f.result() for f in futures]

    return run_many


def pan_frames(count: int, size: tuple[int, int] = (96, 64), motion: tuple[int, int] = (3, 1)) -> list:
    """`count` crops of the cat photo, the window moving by `motion` (dx, dy) px each frame: a camera pan, so
    the content moves by (-dx, -dy)."""
    big = chelsea((320, 213))
    width, height = size
    return [
        big.crop((20 + motion[0] * i, 30 + motion[1] * i, 20 + motion[0] * i + width, 30 + motion[1] * i + height))
        for i in range(count)
    ]


def occlusion_frames(count: int, size: tuple[int, int] = (96, 64), pan: tuple[int, int] = (3, 1), speed: int = 4):
    """A pan of the cat photo with a moving object and an occluder: a disc of the coffee photo crosses the frame
    `speed` px a frame to the right, passing behind a brick pillar fixed in the frame while the
    background moves by (-pan). Returns (frames, motions): motions[i] is the true motion from frame i to frame
    i + 1 as `recipes.video.flicker` takes it, (flow, seen): frame i + 1 at p shows what frame i showed at
    p + flow[p], wherever `seen` is true (not hidden or revealed, not entering the frame)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    width, height = size
    background = np.asarray(chelsea((max(320, width + pan[0] * count + 40), max(213, height + pan[1] * count + 60))))
    coffee = np.asarray(Image.fromarray(data.coffee()).resize((160, 107), Image.LANCZOS))
    radius = max(6, height // 5)
    disc = coffee[53 - radius : 53 + radius, 80 - radius : 80 + radius]
    ys, xs = np.mgrid[-radius:radius, -radius:radius]
    inside = xs**2 + ys**2 < radius**2
    bar = (width * 9 // 20, width * 9 // 20 + max(4, width // 10))
    bricks = np.asarray(Image.fromarray(data.brick()).resize((bar[1] - bar[0], height)), np.float32)[..., None]
    plank = (bricks / 255.0 * np.array([150.0, 105.0, 80.0]) + 20.0).clip(0, 255).astype(np.uint8)  # a brick pillar
    frames, labels = [], []
    for i in range(count):
        x0, y0 = 20 + pan[0] * i, 30 + pan[1] * i
        frame = background[y0 : y0 + height, x0 : x0 + width].copy()
        label = np.zeros((height, width), np.uint8)
        cx, cy = speed * i - radius, height // 2
        for dy in range(2 * radius):
            for dx in range(2 * radius):
                x, y = cx + dx - radius, cy + dy - radius
                if inside[dy, dx] and 0 <= x < width and 0 <= y < height:
                    frame[y, x], label[y, x] = disc[dy, dx], 1
        frame[:, bar[0] : bar[1]] = plank
        label[:, bar[0] : bar[1]] = 2
        frames.append(Image.fromarray(frame))
        labels.append(label)
    moves = {0: pan, 1: (-speed, 0), 2: (0, 0)}  # where each layer's pixel was in the frame before, relative
    rows, columns = np.mgrid[0:height, 0:width]
    motions = []
    for before, after in zip(labels, labels[1:]):
        flow = np.zeros((height, width, 2), np.int64)
        for layer, (mx, my) in moves.items():
            flow[after == layer] = (mx, my)
        x, y = columns + flow[..., 0], rows + flow[..., 1]
        inside_frame = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        seen = inside_frame & (before[y.clip(0, height - 1), x.clip(0, width - 1)] == after)
        motions.append((flow, seen))
    return frames, motions


def write_clip(path, frames, fps: int = 12, audio: bool | str = False, faststart: bool = False) -> None:
    """Encode PIL frames as an H.264 video (MP4/MOV/MKV by suffix), optionally with a 440 Hz tone as long as the
    picture (AAC, or the audio encoder `audio` names); `faststart` puts the index first, as streaming sites do."""
    import av
    import numpy as np

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        codec = "aac" if audio is True else audio
        rate = 48000 if codec == "libopus" else 44100
        sound = container.add_stream(codec, rate=rate, layout="mono") if codec else None
        for i, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            t = np.arange(int(rate * len(frames) / fps)) / rate
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(samples), 960):  # a multiple of 1024 would not suit Opus's 20 ms frames
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 960], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = rate, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))


def snapshot(folder: Path) -> set:
    """Every path under folder, with size and time of files: any new, changed or removed file shows up."""
    return {
        (str(p.relative_to(folder)), *((p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else ()))
        for p in folder.rglob("*")
    }


def error_line(run) -> str:
    """The single `error: ...` line of a failed run (after checking there is exactly one and no traceback)."""
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{run.stderr}"
    assert lines[0].startswith("error: ") and lines[0][len("error: ") :].strip(), lines[0]
    return lines[0]


GOOD_PICTURES = 9
DAMAGED = {"broken.jpg", "more/truncated.png"}


def picture_folder(root: Path) -> Path:
    """pics/: 9 readable pictures (three photos, three crops or turns of them, three solid colours) in PNG, JPEG,
    WebP, BMP and TIFF, in subfolders too; a text file named .jpg, a truncated PNG and a note (not a picture)."""
    import io

    from PIL import Image
    from skimage import data

    folder = root / "pics"
    (folder / "more" / "deeper").mkdir(parents=True)
    cat, astronaut, coffee = (Image.fromarray(a) for a in (data.chelsea(), data.astronaut(), data.coffee()))
    cat.resize((160, 120), Image.LANCZOS).save(folder / "chelsea.jpg", quality=92)
    astronaut.resize((128, 128), Image.LANCZOS).save(folder / "astronaut.png")
    coffee.resize((160, 107), Image.LANCZOS).save(folder / "more" / "coffee.png")
    cat.crop((100, 20, 300, 220)).resize((100, 100), Image.LANCZOS).save(folder / "more" / "cat-face.webp", quality=90)
    astronaut.crop((0, 0, 256, 256)).resize((96, 96), Image.LANCZOS).save(folder / "more" / "deeper" / "flag.bmp")
    coffee.transpose(Image.Transpose.ROTATE_90).resize((90, 120), Image.LANCZOS).save(folder / "coffee-turned.tif")
    for name, colour in (("red", (220, 30, 30)), ("blue", (20, 40, 200)), ("grey", (128, 128, 128))):
        Image.new("RGB", (80, 64), colour).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_text("this is not a picture\n")
    whole = io.BytesIO()
    chelsea().save(whole, format="PNG")
    (folder / "more" / "truncated.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (folder / "more" / "notes.txt").write_text("not a picture, and not named like one\n")
    return folder
