"""Jobs and provenance: every output carries what made it, `redo` makes it again byte for byte, a zoom continues
from its own record, cancelling leaves nothing half-written, and hostile names and signals are handled."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import dreamscope as ds
from conftest import INTERRUPTIBLE, chelsea, run_dreamscope
from dreamscope.errors import DreamscopeError
from dreamscope.io import videos
from dreamscope.work import redo

QUICK = ["--layer", "stage3.1", "--octaves", "2", "--steps", "2", "-q"]
ENV = {"OMP_NUM_THREADS": "1"}


def one_error(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def pixels(path: Path) -> bytes:
    with Image.open(path) as picture:
        return picture.convert("RGB").tobytes()


def test_a_dream_carries_its_record_and_redo_makes_the_same_bytes(tmp_path):
    chelsea().save(tmp_path / "photo.png")
    made = run_dreamscope("dream", "photo.png", "-o", "out.png", "--seed", "7", *QUICK, cwd=tmp_path, env=ENV)
    assert made.returncode == 0, made.stderr
    record = ds.read_record(tmp_path / "out.png")
    assert record.settings == ds.DreamSettings(layer="stage3.1", octaves=2, steps=2, seed=7)  # read back as settings
    assert record.to_json()["seed"] == 7 and record.dreamscope == ds.__version__
    assert record.model["name"] == "efficientnet-lite0" and record.model["weights"].startswith("sha256:")
    entry = record.inputs["input"]
    assert entry["path"] == str(tmp_path / "photo.png") and entry["relative"] == "photo.png"
    assert entry["pixels"].startswith("sha256:") and entry["file"].startswith("sha256:") and entry["size"] == [160, 120]

    again = run_dreamscope("redo", "out.png", "-q", cwd=tmp_path, env=ENV)
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == "wrote out_redo.png: identical to out.png"
    assert (tmp_path / "out_redo.png").read_bytes() == (tmp_path / "out.png").read_bytes()
    # Into another folder the record names the photo by another relative path: same pixels, not the same bytes.
    (tmp_path / "sub").mkdir()
    elsewhere = run_dreamscope("redo", "out.png", "-o", "sub/out.png", "-q", cwd=tmp_path, env=ENV)
    assert elsewhere.stderr.strip() == "wrote sub/out.png: the same pictures as out.png"
    assert redo.compare(tmp_path / "out.png", tmp_path / "photo.png") == "different"

    # A moved photo is found beside the output when the whole folder moved, or given by hand; a changed one is refused.
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.move(tmp_path, moved)
    assert run_dreamscope("redo", "out.png", "-o", "third.png", "-q", cwd=moved, env=ENV).returncode == 0
    assert pixels(moved / "third.png") == pixels(moved / "out.png")  # the record differs: it names the new place
    (moved / "photo.png").rename(moved / "elsewhere.png")
    line = one_error(run_dreamscope("redo", "out.png", "-o", "x.png", cwd=moved, env=ENV))
    assert "the input this was made from is missing" in line and "give its new place" in line
    chelsea((160, 120)).rotate(180).save(moved / "other.png")
    line = one_error(run_dreamscope("redo", "out.png", "-o", "x.png", "--input", "other.png", cwd=moved, env=ENV))
    assert "is not the one this was made from" in line
    assert not (moved / "x.png").exists() and not leftovers(moved)


def test_python_results_carry_their_record_and_save_writes_it(tmp_path, model):
    picture = ds.dream(chelsea((96, 64)), model=model, layer="stage3.1", octaves=1, steps=1)
    ds.save(picture, tmp_path / "mine.jpg")
    record = ds.read_record(tmp_path / "mine.jpg")
    assert record.settings.steps == 1 and "path" not in record.inputs["input"]  # from memory: its pixels only
    with pytest.raises(DreamscopeError, match="names no file for its input"):
        redo.redo(tmp_path / "mine.jpg")
    chelsea((96, 64)).save(tmp_path / "source.png")
    again = redo.redo(tmp_path / "mine.jpg", inputs={"input": str(tmp_path / "source.png")}).result()
    assert Path(again).name == "mine_redo.jpg" and pixels(Path(again)) == pixels(tmp_path / "mine.jpg")
    assert ds.read_record(again).inputs["input"]["path"] == str(tmp_path / "source.png")  # now it names the file
    with pytest.raises(DreamscopeError, match="carries no dreamscope record"):
        ds.read_record(tmp_path / "source.png")


def test_a_job_is_plain_json_and_runs_from_it(tmp_path, model):
    chelsea((96, 64)).save(tmp_path / "photo.png")
    job = ds.Job(
        ds.DreamSettings(layer="stage3.1", octaves=1, steps=1), str(tmp_path / "out.png"), {"input": str(tmp_path / "photo.png")}
    )
    again = ds.Job.from_json(json.loads(json.dumps(job.to_json())))
    assert again == job
    events = list(ds.run_job(again, model=model))
    assert events[-1].done and events[-1].result == str(tmp_path / "out.png")
    assert ds.read_record(tmp_path / "out.png").settings == job.settings
    with pytest.raises(DreamscopeError, match="guide is not an input of visualize"):
        ds.run_job(ds.Job(ds.VisualizeSettings(target="banana"), None, {"guide": "x.png"}))


def test_cancelling_leaves_nothing_half_written_and_a_cancelled_zoom_continues(tmp_path, model):
    chelsea((96, 64)).save(tmp_path / "photo.png")
    dream = ds.run_job(
        ds.Job(
            ds.DreamSettings(layer="stage3.1", octaves=2, steps=3),
            str(tmp_path / "d.png"),
            {"input": str(tmp_path / "photo.png")},
        ),
        model=model,
    )
    next(dream), next(dream)
    dream.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]

    settings = ds.ZoomSettings(layer="stage3.1", octaves=1, steps=1, frames=5)
    zoom = ds.run_job(ds.Job(settings, str(tmp_path / "z.mp4"), {"input": str(tmp_path / "photo.png")}), model=model)
    frames = 0
    for event in zoom:
        frames += event.frame is not None
        if frames == 2:
            break
    zoom.close()  # a cancelled zoom keeps the frames done as a playable file, with its record
    assert videos.open_video(tmp_path / "z.mp4").frames == 2 and not leftovers(tmp_path)
    resumed = list(ds.resume_zoom(tmp_path / "z.mp4", model=model))  # to the recorded 5 frames
    assert resumed[-1].note.startswith("5 frames") and videos.open_video(tmp_path / "z.mp4").frames == 5
    assert ds.read_record(tmp_path / "z.mp4").settings == settings
    with pytest.raises(DreamscopeError, match="more than the 5 frames"):
        ds.resume_zoom(tmp_path / "z.mp4", 5, model=model)

    # a frames folder whose last frame was cut short (a copy, a full disk) says which frame, not a traceback
    ds.run_job(
        ds.Job(settings.replace(frames=3), str(tmp_path / "frames"), {"input": str(tmp_path / "photo.png")}), model=model
    ).result()
    last = tmp_path / "frames" / "frame_000003.png"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(
        DreamscopeError, match="frame_000003.png is damaged, truncated or not a PNG picture; delete it and resume"
    ):
        ds.resume_zoom(tmp_path / "frames", 5, model=model)


def start(args, cwd, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*INTERRUPTIBLE, "-m", "dreamscope", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
        **kwargs,
    )


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.1)


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    from conftest import pan_frames, write_clip

    chelsea((96, 64)).save(tmp_path / "photo.png")
    write_clip(tmp_path / "clip.mp4", pan_frames(400), fps=12)
    zoom = start(["zoom", "photo.png", "-o", "z.mp4", "--frames", "100000", *QUICK], tmp_path)
    video = start(["video", "clip.mp4", "-o", "v.mp4", *QUICK], tmp_path)
    wait_for(lambda: list(tmp_path.glob(".z.mp4.*")) and list(tmp_path.glob(".v.mp4.*")))
    time.sleep(2.0)  # a few frames into both
    for proc in (zoom, video):
        proc.send_signal(signal.SIGTERM)
    (_, zoom_err), (_, video_err) = zoom.communicate(timeout=120), video.communicate(timeout=120)
    assert zoom.returncode == 130 and video.returncode == 130, (zoom_err, video_err)
    assert "Traceback" not in zoom_err + video_err
    assert "finish it with: dreamscope zoom --resume z.mp4" in zoom_err
    assert video_err.strip() == "error: interrupted; nothing was written"
    assert 1 <= videos.open_video(tmp_path / "z.mp4").frames < 100000  # playable, and resumable from its record
    assert not (tmp_path / "v.mp4").exists() and not leftovers(tmp_path)


def test_ctrl_c_while_starting_up_is_not_a_traceback(tmp_path):
    chelsea((160, 120)).save(tmp_path / "photo.png")  # big enough for the default octaves: only Ctrl-C stops it
    for delay in (0.15, 0.4, 0.8, 1.5):
        proc = start(["dream", "photo.png", "-o", "out.png", "-q"], tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        assert proc.returncode in (130, -signal.SIGINT, 0), (delay, proc.returncode, err)
    assert not leftovers(tmp_path)


def test_hostile_names_and_inputs(tmp_path, run_cli_many):
    photo = chelsea((96, 64))
    odd = os.fsdecode(b"caf\xe9 -- x.png")  # not UTF-8, with spaces and dashes
    photo.save(tmp_path / odd)
    photo.save(tmp_path / "-dash.png")
    frames = [photo, photo.rotate(90).resize((96, 64)), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    runs = dict(
        zip(
            ["probe-odd", "probe-dash", "anim"],
            run_cli_many(
                [
                    (
                        [
                            "probe",
                            odd,
                            "-o",
                            "odd/",
                            "--layers",
                            "stage3.1",
                            "--channels",
                            "1",
                            "--octaves",
                            "1",
                            "--steps",
                            "1",
                            "--vis-size",
                            "64",
                            "--vis-steps",
                            "2",
                            "-q",
                        ],
                        tmp_path,
                    ),
                    (
                        [
                            "probe",
                            "-o",
                            "dash.png",
                            "--layers",
                            "stage3.1",
                            "--octaves",
                            "1",
                            "--steps",
                            "1",
                            "-q",
                            "--",
                            "-dash.png",
                        ],
                        tmp_path,
                    ),
                    (["dream", "anim.gif", "-o", "anim_dream.png", *QUICK], tmp_path),
                ],
                env=ENV,
            ),
        )
    )
    for name, result in runs.items():
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr)
    page = (tmp_path / "odd" / "index.html").read_text(encoding="utf-8")
    assert "caf\ufffd -- x.png" in page
    assert ds.read_record(tmp_path / "odd").inputs["input"]["path"] == str(tmp_path / odd)  # the real name, exactly
    assert "anim.gif is animated (3 frames); this dreams its first frame" in runs["anim"].stderr
    assert "dreamscope video anim.gif" in runs["anim"].stderr

    # the reproduce command of a report made from `-dash.png` runs as it is written
    from dreamscope.cli import command_line

    record = ds.read_record(tmp_path / "dash.png")
    command = command_line(ds.Job(record.settings, "dash2.png", {"input": "-dash.png"}))
    assert command.startswith("dreamscope probe ./-dash.png -o dash2.png")
    again = run_dreamscope(*shlex.split(command)[1:], cwd=tmp_path, env=ENV)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "dash2.png").read_bytes() == (tmp_path / "dash.png").read_bytes()


def test_a_picture_from_standard_input(tmp_path):
    chelsea((96, 64)).save(tmp_path / "photo.png")
    for stdin in ((tmp_path / "photo.png").read_bytes(), None):  # through a pipe, and redirected from the file
        with open(tmp_path / "photo.png", "rb") as handle:
            result = subprocess.run(
                [sys.executable, "-m", "dreamscope", "dream", "/dev/stdin", "-o", "out.png", *QUICK],
                cwd=tmp_path,
                input=stdin,
                stdin=None if stdin else handle,
                capture_output=True,
                env={**os.environ, **ENV},
            )
        assert result.returncode == 0, result.stderr
        assert Image.open(tmp_path / "out.png").size == (96, 64)
        assert "path" not in ds.read_record(tmp_path / "out.png").inputs["input"]  # a stream is named by its pixels
    result = run_dreamscope("dream", "/dev/stdin", "-o", "none.png", *QUICK, cwd=tmp_path, env=ENV)  # nothing comes
    assert "empty" in one_error(result)
    assert "name the output" in one_error(run_dreamscope("dream", "/dev/stdin", *QUICK, cwd=tmp_path, env=ENV))


def test_users_models_refuse_imagenet_class_names_and_list_what_they_have(tmp_path, run_cli_many):
    tests = str(Path(__file__).resolve().parents[1])
    env = {**ENV, "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", "")}
    visualize, morph, classes, search = run_cli_many(
        [
            (["visualize", "--class", "banana", "--model", "toy_models:factory", "-o", "v.png"], tmp_path),
            (["zoom", "--morph", "banana,lemon", "--model", "toy_models:factory", "-o", "m.mp4"], tmp_path),
            (["classes", "--model", "toy_models:factory"], tmp_path),
            (["classes", "--search", "cat", "--json"], tmp_path),
        ],
        env=env,
    )
    for result in (visualize, morph, classes):
        assert "scores 10 classes of its own" in one_error(result) or "10 classes of its own" in one_error(result)
        assert "0 to 9" in one_error(result)
    rows = json.loads(search.stdout)
    assert {"index": 285, "label": "Egyptian cat"} in rows and all("cat" in row["label"].lower() for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, model):
    """`dream photo.jpg -o photo.jpg` once replaced the photo with a dream. An output that is the same file as any
    input (however it is spelled, through a link too), or a picture inside an input folder, is refused up front."""
    from conftest import pan_frames, write_clip
    from dreamscope.work import batch, jobs

    photo, guide = tmp_path / "photo.jpg", tmp_path / "guide.png"
    chelsea((96, 64)).save(photo)
    chelsea((64, 64)).save(guide)
    os.link(photo, tmp_path / "alias.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "pics").mkdir()
    chelsea((64, 64)).save(tmp_path / "pics" / "a.png")
    write_clip(tmp_path / "clip.mp4", pan_frames(3, size=(64, 48)))
    dream = ds.DreamSettings(layer="stage3.1", octaves=1, steps=1)
    cases = {
        "the photo": (dream, photo, {"input": photo}, "the output {} is the input picture itself"),
        "another spelling": (dream, tmp_path / "sub" / ".." / "photo.jpg", {"input": photo}, "is the input picture itself"),
        "a hard link": (dream, photo, {"input": tmp_path / "alias.jpg"}, "is the input picture itself"),
        "the guide": (dream, guide, {"input": photo, "guide": guide}, "is the guide picture itself"),
        "the init picture": (
            ds.VisualizeSettings(target="banana", accentuate=True),
            photo,
            {"init": photo},
            "is the init picture itself",
        ),
        "a probe's sheet": (ds.ProbeSettings(layers="stage3.1"), photo, {"input": photo}, "is the input picture itself"),
        "the video": (
            ds.VideoSettings(layer="stage3.1"),
            tmp_path / "clip.mp4",
            {"input": tmp_path / "clip.mp4"},
            "is the input video",
        ),
        "a picture in the folder": (
            ds.ExemplarsSettings(units="stage3.1:1"),
            tmp_path / "pics" / "a.png",
            {"folder": tmp_path / "pics"},
            "is a file in the input folder",
        ),
    }
    before = {path: path.read_bytes() for path in (photo, guide, tmp_path / "clip.mp4", tmp_path / "pics" / "a.png")}
    for name, (settings, output, inputs, words) in cases.items():
        job = jobs.Job(settings, str(output), {role: str(path) for role, path in inputs.items()})
        with pytest.raises(DreamscopeError, match=words.format(".*").replace("(", r"\(")) as caught:
            jobs.check(job, model=model)
        assert "name another output" in str(caught.value), name
    with pytest.raises(DreamscopeError, match="the output folder .* is the input folder"):
        batch.folder_jobs(tmp_path / "pics", dream, tmp_path / "sub" / ".." / "pics")

    made = tmp_path / "made.png"
    list(ds.run_job(jobs.Job(dream, str(made), {"input": str(photo)}), model=model))
    with pytest.raises(DreamscopeError, match="is the original itself"):
        redo.redo(made, str(tmp_path / "sub" / ".." / "made.png"))

    line = one_error(run_dreamscope("dream", "photo.jpg", "-o", "./photo.jpg", *QUICK, cwd=tmp_path, env=ENV))
    assert line == "error: the output ./photo.jpg is the input picture itself; name another output, so the input picture is kept"
    assert {path: path.read_bytes() for path in before} == before and not leftovers(tmp_path)


def test_a_record_from_an_older_version_reproduces_or_says_why_not(tmp_path, model, monkeypatch):
    """Records written before the precision setting have no precision: they ran in float32, and redo must too,
    even on a CPU where "auto" chooses bfloat16 today. Where the pixels cannot match, redo says what differs."""
    import torch

    from dreamscope.io import images, provenance
    from dreamscope.models import precision

    chelsea((96, 64)).save(tmp_path / "photo.png")
    made, old = tmp_path / "made.png", tmp_path / "old.png"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # made as those versions made it: float32
    list(
        ds.run_job(
            ds.Job(ds.DreamSettings(layer="stage3.1", octaves=1, steps=2), str(made), {"input": str(tmp_path / "photo.png")}),
            model=model,
        )
    )
    data = json.loads(images.read_metadata(made)[provenance.KEY])
    del data["precision"], data["settings"]["precision"]  # as the versions before it wrote them
    with Image.open(made) as picture:
        images.save_image(picture.convert("RGB"), old, metadata={provenance.KEY: json.dumps(data)})

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # a CPU with AMX: "auto" is bfloat16 today
    again = redo.redo(old, str(tmp_path / "again.png"), model=model).result()
    assert redo.compare(old, again) == "same pictures"  # every pixel (the new record names its precision)
    assert ds.read_record(again).precision == "fp32"

    data["torch"], data["threads"] = "2.1.0", 7
    why = redo.why_different(provenance.Record.from_json(data), ds.read_record(again))
    assert why == f"torch 2.1.0 then, {torch.__version__} now; threads 7 then, {ds.read_record(again).threads} now"
    same = redo.why_different(ds.read_record(again), ds.read_record(again))
    assert same.startswith("the records agree") and "a bug to report" in same
