"""The real `dreamscope` command, run in a subprocess as a user would.

Every mistake must end in exactly one `error: ...` line on stderr that says how to fix it, a non-zero exit
code, no traceback, and nothing written: no output file and no half-written temporary file.

Each run pays a couple of seconds of interpreter start-up (torch), so all runs are started together, a few at
a time, by one module fixture; the tests then check one result each. Malformed numbers, refused by argparse
before anything else happens, share one interpreter (see USAGE).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

import dreamscope
from conftest import PHOTO_SIZE, USAGE_DRIVER, bomb_png_bytes, chelsea, error_line, run_dreamscope, run_python, snapshot

QUICK = ["--steps", "2", "--octaves", "2"]


@dataclass(frozen=True)
class Bad:
    args: tuple
    needles: tuple  # substrings of the one error line: what is wrong and how to fix it
    code: int = 1  # 1: a DreamscopeError, 2: a malformed command line


def bad(*args, says, code=1):
    return Bad(tuple(args), tuple([says] if isinstance(says, str) else says), code)


# Paths are relative to a fresh folder per case holding: photo.png (160x120), small.png (40x40), empty.png,
# photo.jpg (text), truncated.png, bomb.png, adir/ and outdir/ (empty folders).
BAD = {
    # pictures that are missing or unusable
    "missing-input": bad("dream", "nowhere/photo.png", says=["image file not found: nowhere/photo.png", "check the path"]),
    "empty-file": bad("dream", "empty.png", says=["empty", "give a PNG"]),
    "text-named-jpg": bad("dream", "photo.jpg", says=["not a picture", "give a PNG"]),
    "truncated-png": bad("dream", "truncated.png", says=["damaged or truncated", "re-export"]),
    "decompression-bomb": bad("dream", "bomb.png", says=["decompression bomb", "megapixel limit", "smaller picture"]),
    "input-is-folder": bad("dream", "adir", says=["folder", "picture inside it"]),
    # names
    "unknown-layer": bad(
        "dream", "photo.png", "--layer", "stage9", says=["--layer names 'stage9'", "not a layer of", "did you mean stage"]
    ),
    "unknown-model": bad(
        "dream",
        "photo.png",
        "--model",
        "efficientnet-lite9",
        says=["unknown model 'efficientnet-lite9'", "did you mean efficientnet-lite", "dreamscope models"],
    ),
    "channels-foo": bad(
        "dream", "photo.png", "--channels", "foo", says=["--channels must be", "strongest:10", "got 'foo'"], code=2
    ),
    "channels-strongest-0": bad(
        "dream", "photo.png", "--channels", "strongest:0", says=["--channels must be", "got 'strongest:0'"], code=2
    ),
    "channel-out-of-range": bad(
        "dream", "photo.png", "--channels", "5000", says=["--channels names channel 5000", "channels 0-"]
    ),
}
# Malformed numbers all stop in argparse, before any model or picture is touched; to save seven interpreter
# start-ups they run one after another in a single interpreter, through the same `python -m dreamscope` entry
# point (runpy), each with its own stdout, stderr and working folder (see USAGE_DRIVER).
USAGE = {
    "steps-negative": bad(
        "dream", "photo.png", "--steps", "-3", says=["--steps must be", "whole number from 1", "got -3"], code=2
    ),
    "steps-not-a-number": bad(
        "dream", "photo.png", "--steps", "abc", says=["--steps", "expected a whole number", "'abc'"], code=2
    ),
    "octaves-zero": bad("dream", "photo.png", "--octaves", "0", says=["--octaves must be a whole number from 1 to 50"], code=2),
    "octaves-huge": bad("dream", "photo.png", "--octaves", "1000000000000000000", says=["--octaves must be", "to 50"], code=2),
    "seed-overflow": bad(
        "dream", "photo.png", "--seed", str(2**64), says=["--seed must be a whole number from 0 to 2**63-1"], code=2
    ),
    "step-size-negative": bad("dream", "photo.png", "--step-size", "-1", says=["--step-size must be a number above 0"], code=2),
    "step-size-nan": bad("dream", "photo.png", "--step-size", "nan", says=["--step-size must be", "above 0", "got nan"], code=2),
    "jitter-negative": bad("dream", "photo.png", "--jitter", "-1", says=["--jitter must be a whole number from 0"], code=2),
    "octave-scale-below-1": bad(
        "dream", "photo.png", "--octave-scale", "0.5", says=["--octave-scale must be a number from 1"], code=2
    ),
    "tile-tiny": bad("dream", "photo.png", "--tile", "10", says=["--tile must be", "from 64 to 8192"], code=2),
    "precision-unknown": bad(
        "dream", "photo.png", "--precision", "fp16", says=["--precision", "invalid choice: 'fp16'", "'bf16'"], code=2
    ),
    "classify-top-0": bad("classify", "photo.png", "--top", "0", says=["--top must be a whole number from 1"], code=2),
    "grid-too-big": bad(
        "visualize",
        "--channels",
        "stage3.1",
        "--grid",
        "100",
        says=["--grid must be a whole number from 1 to 64, got 100"],
        code=2,
    ),
    "grid-without-channels": bad(
        "visualize", "--class", "banana", "--grid", "4", says=["--grid applies only to a layer's channel sheet"], code=2
    ),
    "samples-with-channels": bad(
        "visualize", "--channels", "stage3.1", "--samples", "3", says=["--samples does not apply"], code=2
    ),
}
BAD.update(
    {
        # outputs
        "output-folder-missing": bad(
            "dream",
            "photo.png",
            "-o",
            "/nonexistent/dir/out.png",
            says=["output folder does not exist: /nonexistent/dir", "create it first"],
        ),
        "output-extension": bad("dream", "photo.png", "-o", "out.xyz", says=["cannot write '.xyz' files", ".png"]),
        "output-is-folder": bad(
            "dream", "photo.png", "-o", "outdir", says=["output path is a folder: outdir", "give a file name"]
        ),
        # guide
        "guide-missing": bad(
            "dream", "photo.png", "--guide", "nothere.png", says=["guide image file not found: nothere.png", "check the path"]
        ),
        "guide-not-a-picture": bad(
            "dream", "photo.png", "--guide", "photo.jpg", says=["guide image file is not a picture", "give a PNG"]
        ),
        # sizes: default settings (4 octaves of 1.4) shrink 40 px to 15 px
        "octave-too-small": bad(
            "dream", "small.png", says=["--octaves is too many", "smallest octave", "fewer --octaves"], code=2
        ),
        # other commands
        "classify-missing": bad("classify", "missing.png", says=["image file not found: missing.png", "check the path"]),
        "layers-unknown-model": bad("layers", "--model", "nope", says=["unknown model 'nope'", "dreamscope models"]),
        "device-banana": bad("dream", "photo.png", "--device", "banana", says=["unknown device 'banana'", "use auto, cpu"]),
    }
)
BAD.update(
    {
        # visualize
        "visualize-unknown-class": bad(
            "visualize", "--class", "bananna", "-o", "v.png", says=["--class cannot be 'bananna'", "did you mean banana"]
        ),
        "visualize-channel-range": bad(
            "visualize",
            "--channel",
            "stage5.2:500",
            "-o",
            "v.png",
            says=["--channel names channel 500", "channels 0-111"],
        ),
        "visualize-bad-layer": bad(
            "visualize", "--channels", "stage9", "-o", "v.png", says=["--channels names 'stage9'", "did you mean"]
        ),
        "visualize-bad-unit": bad(
            "visualize", "--neuron", "stage5.2", "-o", "v.png", says=["--neuron must be LAYER:INDEX", "got 'stage5.2'"], code=2
        ),
        "visualize-no-target": bad(
            "visualize", "-o", "v.png", says=["one of the arguments --class --channel --neuron --channels is required"], code=2
        ),
        "visualize-score-channel": bad(
            "visualize", "--channel", "stage5.2:1", "--score", "-o", "v.png", says=["--score judges class pictures"], code=2
        ),
        "visualize-accentuate-no-init": bad(
            "visualize",
            "--class",
            "banana",
            "--accentuate",
            "-o",
            "v.png",
            says=["--accentuate needs a photo to start from (the --init picture)"],
            code=2,
        ),
        "visualize-param-no-priors": bad(
            "visualize",
            "--class",
            "banana",
            "--param",
            "maco",
            "--no-priors",
            "-o",
            "v.png",
            says=["--param cannot be combined with --no-priors"],
            code=2,
        ),
        "visualize-init-missing": bad(
            "visualize", "--class", "banana", "--init", "nothere.png", "-o", "v.png", says=["init image file not found"]
        ),
    }
)
if not torch.cuda.is_available():
    BAD["device-cuda-missing"] = bad("dream", "photo.png", "--device", "cuda", says=["CUDA", "not available", "--device cpu"])

GOOD = {
    "dream-png": ("dream", "photo.png", *QUICK),
    "dream-jpg": ("dream", "photo.png", "-o", "outdir/dream.jpg", *QUICK, "--quiet", "--precision", "bf16"),
    "layers-json": ("layers", "--json"),
    "models-json": ("models", "--json"),
    "classify-json": ("classify", "chelsea.png", "--json"),
    "version": ("--version",),
    "visualize-sheet": (
        "visualize",
        "--channels",
        "stage3.1",
        "--grid",
        "4",
        "--size",
        "64",
        "--steps",
        "5",
        "--precision",
        "bf16",
        "-o",
        "sheet.png",
    ),
    "visualize-default-name": ("visualize", "--class", "banana", "--size", "64", "--steps", "2"),
    "visualize-score": ("visualize", "--class", "banana", "--size", "64", "--steps", "2", "--score", "-o", "s.png"),
    "visualize-accentuate": (
        "visualize",
        "--class",
        "banana",
        "--init",
        "photo.png",
        "--accentuate",
        "--closeness",
        "3",
        "--size",
        "64",
        "--steps",
        "3",
        "-o",
        "a.png",
    ),
    "sample": ("sample", "coffee", "x.png"),
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    folder: Path
    before: set


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("cli")
    photo_png = root / "photo.png"
    chelsea().save(photo_png)
    photo_bytes = photo_png.read_bytes()
    small = root / "small.png"
    chelsea((40, 40)).save(small)
    files = {
        "photo.png": photo_bytes,
        "small.png": small.read_bytes(),
        "empty.png": b"",
        "photo.jpg": b"this is a text file, not a picture\n",
        "truncated.png": photo_bytes[: len(photo_bytes) // 2],
        "bomb.png": bomb_png_bytes(100_000, 100_000),
    }
    folders = {}
    for name in [*BAD, *USAGE, *GOOD]:
        folder = root / name
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
        (folder / "adir").mkdir()
        (folder / "outdir").mkdir()
        if name == "classify-json":
            chelsea(None).save(folder / "chelsea.png")  # full size, as the network is meant to see it
        folders[name] = (folder, snapshot(folder))
    single = {**{name: case.args for name, case in BAD.items()}, **GOOD}
    batch = [[str(folders[name][0]), list(case.args)] for name, case in USAGE.items()]
    # One torch thread per run: several runs share few cores, and idle threads would only spin.
    env = {"OMP_NUM_THREADS": "1"}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        together = pool.submit(run_python, "-c", USAGE_DRIVER, json.dumps(batch), env=env)
        futures = {name: pool.submit(run_dreamscope, *args, cwd=folders[name][0], env=env) for name, args in single.items()}
        results = {name: future.result() for name, future in futures.items()}
        driver = together.result()
    assert driver.returncode == 0 and not driver.stderr, driver.stderr
    results.update(zip(USAGE, json.loads(driver.stdout)))
    return {name: Run(*result, *folders[name]) for name, result in results.items()}


def assert_nothing_written(run: Run):
    assert snapshot(run.folder) == run.before, "files were written or changed"
    assert not list(run.folder.rglob("*.part")), "a temporary file was left behind"
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize("case", [*BAD, *USAGE])
def test_bad_input_is_one_clear_error_and_writes_nothing(runs, case):
    run, expected = runs[case], {**BAD, **USAGE}[case]
    line = error_line(run)
    assert run.returncode == expected.code, (run.returncode, line)
    for needle in expected.needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert run.stdout == ""
    assert_nothing_written(run)


def test_unknown_names_suggest_real_ones(runs):
    layers = {row["name"] for row in json.loads(runs["layers-json"].stdout)}
    models = {row["name"] for row in json.loads(runs["models-json"].stdout)}
    for case, known in (("unknown-layer", layers), ("unknown-model", models)):
        match = re.search(r"did you mean ([^?]+)\?", error_line(runs[case]))
        assert match, runs[case].stderr
        suggested = match.group(1).split(", ")
        assert suggested and set(suggested) <= known, (suggested, known)


def ok(run: Run) -> Run:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


def test_dream_writes_png_of_the_same_size_beside_the_input(runs):
    run = ok(runs["dream-png"])
    out = run.folder / "photo_dream.png"
    assert run.stderr.splitlines() == ["wrote photo_dream.png"]  # no progress bar when stderr is not a terminal
    assert snapshot(run.folder) == run.before | {("photo_dream.png", out.stat().st_size, out.stat().st_mtime_ns)}
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == PHOTO_SIZE and img.mode == "RGB"
        dreamed = img.convert("RGB")
    with Image.open(run.folder / "photo.png") as original:
        diff = sum(abs(a - b) for a, b in zip(dreamed.tobytes(), original.convert("RGB").tobytes()))
    assert diff / len(dreamed.tobytes()) > 1.0, "the output should differ from the input: it dreamed"


def test_dream_writes_jpeg_when_asked(runs):
    run = ok(runs["dream-jpg"])
    out = run.folder / "outdir" / "dream.jpg"
    assert run.stderr.splitlines() == ["wrote outdir/dream.jpg"]
    assert snapshot(run.folder) == run.before | {("outdir/dream.jpg", out.stat().st_size, out.stat().st_mtime_ns)}
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == PHOTO_SIZE
    assert dreamscope.read_record(out).precision == "bf16" and dreamscope.read_record(out).settings.precision == "bf16"


def test_layers_json(runs):
    rows = json.loads(ok(runs["layers-json"]).stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert set(row) == {"name", "channels", "stride", "layout", "default"}
        assert row["layout"] == ""  # EfficientNet-Lite's maps are (N, C, H, W): nothing to say
        assert isinstance(row["name"], str) and isinstance(row["default"], bool)
        assert isinstance(row["channels"], int) and row["channels"] > 0
        assert isinstance(row["stride"], int) and row["stride"] >= 1
    assert len({row["name"] for row in rows}) == len(rows)
    assert sum(row["default"] for row in rows) == 1


def test_models_json(runs):
    rows = json.loads(ok(runs["models-json"]).stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert {"name", "weights_present", "how_to_get"} <= set(row)
        assert isinstance(row["weights_present"], bool) and row["how_to_get"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["efficientnet-lite0"]["weights_present"] is True


def test_classify_json_finds_the_cat(runs):
    rows = json.loads(ok(runs["classify-json"]).stdout)
    assert len(rows) == 5  # the default --top
    assert all({"label", "probability"} <= set(row) for row in rows)
    probabilities = [row["probability"] for row in rows]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[-1] >= 0 and sum(probabilities) <= 1 + 1e-6
    assert rows[0]["label"] == "Egyptian cat"


def test_version(runs):
    assert ok(runs["version"]).stdout.strip() == f"dreamscope {dreamscope.__version__}"


def test_sample_writes_the_photo(runs):
    from skimage import data

    run = ok(runs["sample"])
    assert run.stderr.splitlines() == ["wrote x.png"]
    with Image.open(run.folder / "x.png") as img:
        height, width = data.coffee().shape[:2]
        assert img.format == "PNG" and img.size == (width, height)


def test_closed_stdout_pipe_is_not_a_traceback(tmp_path):
    """`dreamscope layers | head -1`: the reader goes away before the listing is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreamscope", "layers"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    proc.stdout.close()  # closed long before the child has imported torch and loaded the model
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=300)
    proc.stderr.close()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr == ""


def test_visualize_writes_a_contact_sheet(runs):
    run = ok(runs["visualize-sheet"])
    assert run.stderr.splitlines() == ["wrote sheet.png"]
    with Image.open(run.folder / "sheet.png") as img:
        assert img.size == (2 * 64 + 4, 2 * (64 + 18) + 4)  # each channel labelled underneath
    record = dreamscope.read_record(run.folder / "sheet.png")
    assert (record.settings.kind, record.settings.target, record.settings.grid) == ("channels", "stage3.1", 4)
    assert record.precision == "bf16" and record.settings.precision == "bf16"


def test_visualize_names_its_output_after_the_target(runs):
    run = ok(runs["visualize-default-name"])
    assert run.stderr.splitlines() == ["wrote banana.png"]
    with Image.open(run.folder / "banana.png") as img:
        assert img.size == (64, 64)


def test_visualize_scores_its_class_picture(runs):
    run = ok(runs["visualize-score"])
    lines = run.stderr.splitlines()
    assert lines[0] == "wrote s.png" and len(lines) == 2, lines
    assert re.fullmatch(
        r"score: efficientnet-lite2 names banana on [0-3] of 3 views: picture [0-9.]+.*; "
        r"colourfulness [0-9.]+, saturation [0-9.]+",
        lines[1],
    ), lines[1]


def test_visualize_accentuates_a_photo_and_says_how_far_it_moved(runs):
    from dreamscope.cli import command_line

    run = ok(runs["visualize-accentuate"])
    (line,) = run.stderr.splitlines()
    assert re.fullmatch(
        r"wrote a\.png \(accentuated banana -?[0-9.]+ -> -?[0-9.]+ \(probability [0-9.]+ -> [0-9.]+\); "
        r"the picture moved [0-9.]+/255 a pixel, feature distance [0-9.]+ at stage3\.1\)",
        line,
    ), line
    record = dreamscope.read_record(run.folder / "a.png")
    assert record.settings.accentuate and record.settings.closeness == 3.0
    again = command_line(dreamscope.Job(record.settings, "a.png", {"init": "photo.png"}))
    assert again == (
        "dreamscope visualize -o a.png --init photo.png --class banana --size 64 --steps 3 --param maco --views 1 "
        "--crop 1.0 --confidence 0.0 --skip-gradient 1.0 --accentuate --closeness 3.0"
    )  # the defaults that depend on other settings, as they ran (the record keeps them)


def test_out_of_memory_is_one_line_naming_what_to_lower(tmp_path):
    """Under a 3 GB address-space limit, a big visualize runs out of memory inside PyTorch's allocator (a
    RuntimeError, once a traceback): one error line naming the recipe's settings that need less memory."""
    import resource
    import subprocess
    import sys

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    args = ["visualize", "--class", "banana", "--samples", "16", "--size", "1024", "--steps", "2", "-o", "big.png", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "dreamscope", *args], cwd=tmp_path, capture_output=True, text=True, preexec_fn=limited, timeout=300
    )
    assert done.returncode == 1, done.stderr
    # Where the allocation fails varies with the allocator: inside a step the line also says at what size.
    assert re.fullmatch(r"error: out of memory( at \d+x\d+ px on cpu)?; use a smaller --size or --samples\n", done.stderr), (
        done.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_memory_names_each_recipes_settings():
    from dreamscope.errors import OutOfMemory
    from dreamscope.work import jobs
    from dreamscope.work.flags import flag_of

    raw = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes")
    assert jobs.out_of_memory(raw, "dream").worded(flag_of) == "out of memory; use a smaller --max-size or --tile"
    placed = OutOfMemory("out of memory at 4000x3000 px on cpu")
    assert str(jobs.out_of_memory(placed, "probe")) == "out of memory at 4000x3000 px on cpu; use a smaller max_size or vis_size"
    assert jobs.out_of_memory(MemoryError(), "classify").worded(flag_of) == "out of memory; use a smaller --model"
    assert jobs.out_of_memory(MemoryError(), None).worded(flag_of) == "out of memory; use smaller settings"  # no recipe known
    assert jobs.out_of_memory(RuntimeError("shape mismatch"), "dream") is None


def test_make_demo_and_the_quick_start_say_how_to_get_every_extra():
    """`make demo` installs what dreaming needs; its one closing line (it no longer says "wrote dream.png" again)
    and the README's Quick start say how to get the rest, `make install-all`, and name every extra that [all]
    brings, so a feature that needs one ([explain] was left out) is no surprise. Read from the Makefile's target,
    not run: the demo takes a minute."""
    root = Path(__file__).resolve().parents[2]
    bundle = re.search(r'^all = \["dreamscope\[([a-z,]+)\]"\]$', (root / "pyproject.toml").read_text(), re.M)
    extras = [name for name in bundle.group(1).split(",") if name != "demo"]  # [demo]: what make demo installs
    assert {"lite", "studio", "atlas", "explain", "ray"} <= set(extras)
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (root / "Makefile").read_text(), re.M).group(1)
    said = [line for line in recipe.splitlines() if "echo" in line]
    assert len(said) == 1 and "wrote" not in said[0] and "make install-all" in said[0], said
    readme = (root / "README.md").read_text(encoding="utf-8")
    quick = readme.split("\n## Quick start\n")[1].split("\n## ")[0]
    assert "make install-all" in quick and ".[all]" in quick
    for where, text in (("make demo", said[0]), ("the Quick start", quick)):
        missing = [name for name in extras if f"[{name}]" not in text]
        assert not missing, f"{where} does not name {missing}"
