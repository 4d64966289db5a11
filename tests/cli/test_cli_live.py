"""`dreamscope live`: a clip replayed as a camera, in real time, written as a viewer saw it; its mistakes refused in one
line before anything is written."""

from __future__ import annotations

import pytest

from conftest import chelsea, error_line, run_good_and_mistakes, snapshot, write_clip
from dreamscope.io import provenance, videos

FRAMES, FPS = 24, 12

MISTAKES = {
    "not-a-video": (["notes.mp4", "-o", "out1.mp4"], ["notes.mp4", "not"]),
    "a-still-picture": (["still.png", "-o", "out2.mp4"], ["still.png is a still picture, not a video"]),
    "unwritable-output": (["clip.mp4", "-o", "out.txt"], ["cannot write '.txt' files"]),
    "output-in-a-missing-folder": (["clip.mp4", "-o", "missing/out.mp4"], ["missing"]),
    "output-over-the-input": (["clip.mp4", "-o", "clip.mp4"], ["clip.mp4"]),
    "size-too-small": (["clip.mp4", "-o", "out3.mp4", "--size", "10"], ["--size must be a whole number from 64 to 1920, got 10"]),
    "size-too-large": (["clip.mp4", "-o", "out4.mp4", "--size", "99999"], ["--size must be a whole number from 64 to 1920"]),
    "frames-too-small-for-the-layer": (
        ["wide.mp4", "-o", "out5.mp4", "--size", "64", "--layer", "stage6.0"],
        ["--size is too small for these frames", "stage6.0 needs 64 px on the shorter side"],
    ),
    "no-steps": (["clip.mp4", "-o", "out6.mp4", "--steps", "0"], ["--steps must be a whole number from 1 to 20, got 0"]),
    "unknown-layer": (["clip.mp4", "-o", "out7.mp4", "--layer", "stage9"], ["--layer names 'stage9'", "did you mean"]),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory, run_cli_many):
    folder = tmp_path_factory.mktemp("live")
    big = chelsea()
    write_clip(folder / "clip.mp4", [big.crop((3 * i, i, 3 * i + 160, i + 120)) for i in range(FRAMES)], fps=FPS)
    write_clip(folder / "wide.mp4", [big.crop((0, 0, 320, 40)) for _ in range(4)], fps=FPS)
    (folder / "notes.mp4").write_text("not a video at all")
    big.save(folder / "still.png")
    before = snapshot(folder)
    good = {"replay": ("live", "clip.mp4", "-o", "seen.mp4", "--size", "128", "--layer", "stage4.2")}
    mistakes = {name: ("live", *args) for name, (args, _) in MISTAKES.items()}
    return folder, run_good_and_mistakes(folder, good, mistakes, run_cli_many), before


def test_the_replay_is_written_at_the_clips_rate_with_what_it_showed(made):
    folder, results, _ = made
    run = results["replay"]
    assert run.returncode == 0, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith(f"wrote seen.mp4 ({FRAMES} frames, 128x96, {FPS} fps; "), line
    assert "dreams shown" in line and "a second" in line and "ms median" in line and "95th percentile" in line
    info = videos.open_video(folder / "seen.mp4")
    assert info.frames == FRAMES and float(info.fps) == FPS and info.size == (128, 96)
    record = provenance.read(folder / "seen.mp4")
    assert record.recipe == "live" and record.settings.layer == "stage4.2"
    # the dream is there: what was shown differs from the camera once it has built up
    import numpy as np

    seen = list(videos.read_frames(folder / "seen.mp4"))
    camera = [frame.resize((128, 96)) for frame in videos.read_frames(folder / "clip.mp4")]
    change = np.abs(np.asarray(seen[-1], np.float32) - np.asarray(camera[-1], np.float32)).mean()
    assert change > 5, change


def test_a_replay_of_a_clip_with_sound_keeps_it_and_reads_back_in_every_container(tmp_path, run_cli_many):
    """The sound is carried into containers that hold it (MKV, the one whose first packet once had no key frame),
    and what was written decodes whole with the project's reader; a GIF says the sound was dropped."""
    folder = tmp_path
    big = chelsea()
    write_clip(folder / "sound.mp4", [big.crop((3 * i, i, 3 * i + 96, i + 72)) for i in range(FRAMES)], fps=FPS, audio=True)
    outputs = ("heard.mkv", "heard.mov", "heard.gif")
    runs = run_cli_many([(("live", "sound.mp4", "-o", name, "--size", "96", "--layer", "stage3.1"), folder) for name in outputs])
    for name, run in zip(outputs, runs):
        assert run.returncode == 0, run.stderr
        info = videos.open_video(folder / name)
        assert info.frames == FRAMES and info.size == (96, 72), name
        assert (info.audio is not None) == (name != "heard.gif"), name
        assert provenance.read(folder / name).recipe == "live"
    assert "the sound" in runs[2].stderr and "dropped" in runs[2].stderr


def test_redo_says_why_a_live_replay_cannot_be_made_again(made, run_cli):
    folder, _, _ = made
    line = error_line(run_cli("redo", "seen.mp4", cwd=folder))
    assert "a live dream depends on how fast the machine dreamed" in line


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_is_one_line_and_writes_nothing(made, name):
    folder, results, before = made
    run = results[name]
    line = error_line(run)
    assert run.returncode != 0
    for words in MISTAKES[name][1]:
        assert words in line, line
    written = {entry[0] for entry in snapshot(folder) - before}
    assert written <= {"seen.mp4"}, written


def test_a_camera_is_dreamed_live_and_written_as_shown(made, tmp_path):
    """`--camera N` reads through OpenCV, which takes a file where a camera's number goes: this machine has no
    camera, so the clip stands in for one (the same reading code, the camera's rate)."""
    from dreamscope.recipes.live import Camera
    from dreamscope.settings import LiveSettings
    from dreamscope.work import jobs

    folder, _, _ = made
    camera = Camera(str(folder / "clip.mp4"), seconds=1.0)
    assert camera.fps == FPS and camera.size == (160, 120) and len(camera) == FPS
    output = tmp_path / "camera.mp4"
    events = list(jobs.run_camera(LiveSettings(size=96, layer="stage3.1"), camera, str(output)))
    assert events[-1].result == str(output) and "dreams shown" in events[-1].note
    info = videos.open_video(output)
    assert info.frames == FPS and float(info.fps) == FPS and info.size == (96, 72)
    record = provenance.read(output)
    assert record.recipe == "live" and record.inputs == {}


def test_camera_mistakes_are_one_line(made, run_cli):
    folder, _, _ = made
    for args, words in (
        (("--camera", "7", "-o", "cam.mp4"), "cannot read camera 7: no camera is connected as device 7"),
        (("clip.mp4", "--camera", "0", "-o", "cam.mp4"), "give a clip or --camera N, not both"),
        (("--camera", "0"), "name the output with -o"),
        ((), "give a clip to replay as a camera, or --camera N"),
        (("clip.mp4", "-o", "x.mp4", "--seconds", "3"), "--seconds applies only with --camera N"),
    ):
        line = error_line(run_cli("live", *args, cwd=folder))
        assert words in line, line
    assert not (folder / "cam.mp4").exists() and not (folder / "x.mp4").exists()
