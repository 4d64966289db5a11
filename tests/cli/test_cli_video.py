"""`dreamscope zoom` and `dreamscope video` as a user runs them: outputs with the right frames, size and rate,
and every mistake one `error:` line with nothing written. Runs start together, a few at a time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import INTERRUPTIBLE, chelsea, pan_frames, write_clip
from dreamscope import read_record
from dreamscope.io import videos

QUICK = ["--layer", "stage3.1", "--steps", "1", "--octaves", "1", "-q"]

BAD = {  # name: (args, substrings of the one error line, exit code)
    "video-missing": (["video", "nothere.mp4", "-o", "o.mp4"], ["video file not found", "check the path"], 1),
    "video-text": (["video", "text.mp4", "-o", "o.mp4"], ["not a readable video", "give an MP4"], 1),
    "video-picture": (["video", "photo.png", "-o", "o.mp4"], ["still picture", "dreamscope dream"], 1),
    "video-truncated": (["video", "cut.mp4", "-o", "o.mp4"], ["truncated or damaged", "re-export it"], 1),
    "video-zero-frames": (["video", "zero.mp4", "-o", "o.mp4"], ["no video stream"], 1),
    "video-output-avi": (["video", "clip.mp4", "-o", "o.avi"], ["cannot write '.avi' files", ".mp4"], 1),
    "video-blend": (["video", "clip.mp4", "-o", "o.mp4", "--blend", "1.5"], ["--blend must be a number from 0 to below 1"], 2),
    "video-layer": (["video", "clip.mp4", "-o", "o.mp4", "--layer", "stage9"], ["--layer names 'stage9'", "did you mean"], 1),
    "zoom-frames-0": (["zoom", "photo.png", "-o", "z.mp4", "--frames", "0"], ["--frames must be a whole number from 1"], 2),
    "zoom-fps-tiny": (["zoom", "photo.png", "-o", "z.mp4", "--fps", "1e-300"], ["--fps must be a number from 0.1 to 240"], 2),
    "zoom-size-without-morph": (["zoom", "photo.png", "-o", "z.mp4", "--size", "96"], ["--size applies only with --morph"], 2),
    "zoom-morph-octaves": (
        ["zoom", "--morph", "banana,starfish", "-o", "z.mp4", "--octaves", "3"],
        ["--octaves does not apply to zoom --morph"],
        2,
    ),
    "zoom-resume-missing-with-options": (
        ["zoom", "--resume", "z.mp4", "--octaves", "3"],
        ["nothing to resume: z.mp4 does not exist"],
        1,
    ),
    "zoom-output-avi": (["zoom", "photo.png", "-o", "z.avi"], ["cannot write '.avi' files"], 1),
    "zoom-output-folder": (  # out.mp4 is an existing folder (FOLDERS): refused, as an output path, before any work
        ["zoom", "photo.png", "-o", "out.mp4", *QUICK],
        ["output path is a folder: out.mp4", "name a new video file, or end the name with /"],
        1,
    ),
    "zoom-no-input": (["zoom", "-o", "z.mp4"], ["picture to start from", "--resume", "--morph"], 2),
    "zoom-bad-picture": (["zoom", "text.mp4", "-o", "z.mp4"], ["not a picture"], 1),
    "zoom-resume-missing": (["zoom", "--resume", "gone.mp4"], ["nothing to resume", "gone.mp4"], 1),
    "zoom-resume-not-ours": (["zoom", "--resume", "clip.mp4"], ["clip.mp4 carries no dreamscope record"], 1),
    "zoom-zoom-too-big": (["zoom", "photo.png", "-o", "z.mp4", "--zoom", "5"], ["--zoom must be a number from 0.5 to 2"], 2),
    "zoom-cycle-unknown": (["zoom", "photo.png", "-o", "z.mp4", "--layers", "stage3.1,stage9"], ["--layers names 'stage9'"], 1),
    "zoom-every-alone": (["zoom", "photo.png", "-o", "z.mp4", "--every", "3"], ["--every goes with --layers"], 2),
    "zoom-morph-class": (
        ["zoom", "--morph", "banana,starfsh", "-o", "z.mp4"],
        ["--morph cannot be 'starfsh'", "did you mean starfish"],
        1,
    ),
    "zoom-morph-photo": (
        ["zoom", "photo.png", "--morph", "banana,starfish", "-o", "z.mp4"],
        ["--morph grows pictures from noise"],
        2,
    ),
}
GOOD = {
    "zoom-mp4": ["zoom", "photo.png", "-o", "z.mp4", "--frames", "5", "--fps", "10", "--rotate", "2", *QUICK],
    "zoom-gif": [
        "zoom",
        "photo.png",
        "-o",
        "z.gif",
        "--frames",
        "3",
        "--layers",
        "stage3.1,stage2.1",
        "--every",
        "1",
        "--steps",
        "1",
        "--octaves",
        "1",
        "-q",
    ],
    "video-mp4": ["video", "clip.mp4", "-o", "dreamed.mp4", *QUICK],
    "video-frames": ["video", "clip.mp4", "-o", "frames/", *QUICK],
    "zoom-default-name": ["zoom", "photo.png", "--frames", "2", *QUICK],
    # a short schedule at 64 px: what reaches the command line is the point here, not the morph (tests/recipes/test_zoom.py)
    "zoom-morph-score": (
        ["zoom", "--morph", "banana,starfish", "-o", "m.mp4", "--frames", "3", "--size", "64", "--warmup", "2"]
        + ["--steps", "2", "--score", "-q"]
    ),
}


FOLDERS = {"zoom-output-folder": "out.mp4"}  # a folder named as a video, made before the run


def make_inputs(folder: Path) -> None:
    chelsea((96, 64)).save(folder / "photo.png")
    write_clip(folder / "clip.mp4", pan_frames(6), fps=12, audio=True)
    data = (folder / "clip.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 2])
    (folder / "text.mp4").write_text("not a video\n")
    import av

    with av.open(str(folder / "zero.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height = 64, 48
        container.start_encoding()


def files(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_cli_many):
    root = tmp_path_factory.mktemp("cli_video")
    folders = {}
    for name in [*BAD, *GOOD]:
        folder = root / name
        folder.mkdir()
        make_inputs(folder)
        if name in FOLDERS:
            (folder / FOLDERS[name]).mkdir()
        folders[name] = (folder, files(folder))
    jobs = [(BAD[name][0] if name in BAD else GOOD[name], folders[name][0]) for name in folders]
    results = run_cli_many(jobs, env={"OMP_NUM_THREADS": "1"})
    return {name: (result, *folders[name]) for name, result in zip(folders, results)}


@pytest.mark.parametrize("case", list(BAD))
def test_mistakes_are_one_error_line_and_nothing_written(runs, case):
    (code, _out, err), folder, before = runs[case]
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    for needle in BAD[case][1]:
        assert needle in err, err
    assert code == BAD[case][2]
    assert files(folder) == before


def ok(runs, case):
    (code, _out, err), folder, _ = runs[case]
    assert code == 0 and "Traceback" not in err, err
    return folder, err


def test_zoom_writes_a_video_with_the_asked_frames_and_rate(runs):
    folder, err = ok(runs, "zoom-mp4")
    info = videos.open_video(folder / "z.mp4")
    assert (info.frames, info.fps, info.size) == (5, 10, (96, 64))
    assert "wrote z.mp4 (5 frames, 96x64, 10 fps)" in err
    frames = list(videos.read_frames(folder / "z.mp4"))
    assert frames[0].tobytes() != frames[-1].tobytes()


def test_a_morph_with_score_ends_with_the_change_and_the_judges_curve(runs):
    """`zoom --morph ... --score`: the recipe's summary (the change over each class's stretch, the held-out judge's
    curve and its verdict on the last frame's views) reaches the command's closing line, after the video's facts."""
    folder, err = ok(runs, "zoom-morph-score")
    assert videos.open_video(folder / "m.mp4").frames == 3
    level = r"[01]\.\d\d"
    assert re.fullmatch(
        r"wrote m\.mp4 \(3 frames, 64x64, 24 fps; change per stretch \(mean, of 255\): banana > starfish \d+; "
        rf"efficientnet-lite2 sees banana {level} > {level} > {level}, starfish {level} > {level} > {level} "
        r"\(frames 1, 2, 3\); last frame: efficientnet-lite2 names starfish on [0-3] of 3 views: picture .*\)",
        err.strip(),
    ), err


def test_zoom_gif_cycles_layers(runs):
    folder, _ = ok(runs, "zoom-gif")
    assert videos.open_video(folder / "z.gif").frames == 3


def test_video_keeps_frames_size_rate_and_sound(runs):
    folder, err = ok(runs, "video-mp4")
    info = videos.open_video(folder / "dreamed.mp4")
    assert (info.frames, info.fps, info.size, info.audio) == (6, 12, (96, 64), "aac")
    assert "with sound" in err


def test_video_to_png_frames_says_the_sound_is_dropped(runs):
    folder, err = ok(runs, "video-frames")
    assert len(videos.frame_files(folder / "frames")) == 6
    assert "note: the sound (aac) is dropped" in err


def test_zoom_names_its_output_after_the_input_and_records_how_it_was_made(runs):
    folder, err = ok(runs, "zoom-default-name")
    assert err.splitlines() == ["wrote photo_zoom.mp4 (2 frames, 96x64, 24 fps)"]
    record = read_record(folder / "photo_zoom.mp4")
    assert record.recipe == "zoom" and (record.settings.frames, record.settings.layer) == (2, "stage3.1")
    assert record.inputs["input"]["path"] == str(folder / "photo.png")


def test_ctrl_c_leaves_a_playable_partial_zoom_that_resume_finishes(tmp_path):
    chelsea((96, 64)).save(tmp_path / "photo.png")
    args = [*INTERRUPTIBLE, "-m", "dreamscope", "zoom", "photo.png", "-o", "frames", "--frames", "500", *QUICK]
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not any(len(list(p.glob("frame_*.png"))) >= 2 for p in tmp_path.glob(".frames.*")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "--resume frames" in err
    done = len(videos.frame_files(tmp_path / "frames"))
    assert 2 <= done < 500 and not list(tmp_path.glob(".frames.*"))
    result = subprocess.run(
        [sys.executable, "-m", "dreamscope", "zoom", "--resume", "frames", "--frames", str(done + 2), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(videos.frame_files(tmp_path / "frames")) == done + 2


def test_resuming_with_the_options_it_was_made_with_is_accepted_and_a_change_names_the_recorded_value(tmp_path):
    """The command that made a zoom, recalled with --resume added, continues it; only a real change is refused."""
    from conftest import chelsea, run_dreamscope

    chelsea((96, 64)).save(tmp_path / "photo.png")
    made = ["-o", "z.mp4", "--octaves", "1", "--steps", "2", "--layer", "stage3.1", "-q"]
    assert run_dreamscope("zoom", "photo.png", *made, "--frames", "2", cwd=tmp_path).returncode == 0
    again = run_dreamscope("zoom", "photo.png", *made, "--frames", "3", "--resume", "z.mp4", cwd=tmp_path)
    assert again.returncode == 0 and "wrote z.mp4 (3 frames" in again.stderr, again.stderr
    before = (tmp_path / "z.mp4").read_bytes()
    for extra, words in (
        (["--octaves", "2"], "error: --octaves cannot change when resuming: the zoom was made with 1 (only --frames can change)"),
        (["--layer", "stage4.2"], "error: --layer cannot change when resuming: the zoom was made with stage3.1"),
        (["-o", "other.mp4"], "error: --resume continues z.mp4 in place: -o can only name it, not other.mp4"),
    ):
        refused = run_dreamscope("zoom", "--resume", "z.mp4", "--frames", "4", *extra, cwd=tmp_path)
        assert refused.returncode == 2 and refused.stderr.startswith(words), refused.stderr
    assert (tmp_path / "z.mp4").read_bytes() == before and not (tmp_path / "other.mp4").exists()
