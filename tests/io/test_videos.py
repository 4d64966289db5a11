"""Video files in and out: sizes, frame counts, frame rates and sound survive; damage is caught up front;
nothing half-written is ever left under the final name."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import pan_frames, write_clip
from dreamscope.errors import DreamscopeError
from dreamscope.io import images, videos
from write_limits import run_jobs, small_disk_problem


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    write_clip(path, pan_frames(10), fps=12, audio=True)
    return path


def test_open_video_counts_frames_and_reads_rate_size_and_sound(clip):
    info = videos.open_video(clip)
    assert (info.width, info.height, info.frames, info.fps, info.audio) == (96, 64, 10, Fraction(12), "aac")
    frames = list(videos.read_frames(clip))
    assert len(frames) == 10 and frames[0].size == (96, 64)
    # H.264 is lossy but close: the decoded frame is the picture that went in
    assert np.abs(np.asarray(frames[3], np.float32) - np.asarray(pan_frames(10)[3], np.float32)).mean() < 6


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".gif"])
def test_writer_keeps_size_count_and_rate(tmp_path, clip, suffix):
    out = tmp_path / f"out{suffix}"
    with videos.FrameWriter(out, Fraction(12)) as writer:
        for frame in videos.read_frames(clip):
            writer.write(frame)
    info = videos.open_video(out)
    assert (info.width, info.height, info.frames) == (96, 64, 10)
    if suffix == ".gif":  # GIF keeps time in 1/100 s: 12 fps alternates 80 and 90 ms, 10 frames last 0.83 s
        with av.open(str(out)) as container:
            assert abs(float(container.duration / av.time_base) - 10 / 12) < 0.02
    else:
        assert info.fps == 12
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_sound_is_copied_and_lasts_as_long_as_the_picture(tmp_path, clip):
    for suffix, codec in [(".mp4", "aac"), (".webm", "opus")]:  # WebM can't hold AAC: re-encoded to Opus
        out = tmp_path / f"sound{suffix}"
        with videos.FrameWriter(out, Fraction(12), audio_from=clip) as writer:
            for frame in videos.read_frames(clip):
                writer.write(frame)
        with av.open(str(out)) as container:
            sound = container.streams.audio[0]
            assert sound.codec_context.name == codec
            seconds = sum(float(p.duration * p.time_base) for p in container.demux(sound) if p.duration)
        assert abs(seconds - 10 / 12) < 0.1, seconds


def test_png_folder_and_resume(tmp_path):
    folder = tmp_path / "frames"
    with videos.FrameWriter(folder, 24) as writer:
        for frame in pan_frames(3):
            writer.write(frame)
    assert [p.name for p in videos.frame_files(folder)] == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    with pytest.raises(DreamscopeError, match="not empty.*resume the zoom"):
        videos.FrameWriter(folder, 24)
    with videos.FrameWriter(folder, 24, resume=True) as writer:
        assert writer.existing == 3 and writer.last.size == (96, 64)
        writer.write(pan_frames(4)[3])
    assert len(videos.frame_files(folder)) == 4


def test_video_resume_rewrites_old_frames_then_new(tmp_path, clip):
    out = tmp_path / "z.mp4"
    with videos.FrameWriter(out, 12) as writer:
        for frame in pan_frames(4):
            writer.write(frame)
    with videos.FrameWriter(out, 12, resume=True) as writer:
        assert writer.existing == 4
        assert np.abs(np.asarray(writer.last, np.float32) - np.asarray(pan_frames(4)[3], np.float32)).mean() < 6
        writer.write(pan_frames(5)[4])
    assert videos.open_video(out).frames == 5


def test_failure_leaves_nothing_and_interrupt_keeps_a_playable_partial(tmp_path):
    for keep in (False, True):
        out = tmp_path / f"run{keep}.mp4"
        with pytest.raises(KeyboardInterrupt), videos.FrameWriter(out, 12, keep_partial=keep) as writer:
            for frame in pan_frames(5):
                writer.write(frame)
            raise KeyboardInterrupt
        assert out.exists() == keep
        if keep:
            assert writer.partial and videos.open_video(out).frames == 5
    out = tmp_path / "failed.gif"
    with pytest.raises(RuntimeError), videos.FrameWriter(out, 12, keep_partial=True) as writer:
        writer.write(pan_frames(1)[0])
        raise RuntimeError("a bug, not an interrupt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runTrue.mp4"]


def test_odd_sizes_keep_every_pixel(tmp_path):
    out = tmp_path / "odd.mp4"
    with videos.FrameWriter(out, 12) as writer:
        for frame in pan_frames(2, size=(33, 21)):
            writer.write(frame)
    assert videos.open_video(out).size == (33, 21)


def test_damaged_videos_are_refused_up_front(tmp_path, clip, photo_path):
    data = clip.read_bytes()
    fast = tmp_path / "fast.mp4"
    write_clip(fast, pan_frames(24), faststart=True)
    cases = {
        "cut.mp4": (data[: len(data) // 2], "not a readable video.*truncated"),  # the index at the end is gone
        "fastcut.mp4": (fast.read_bytes()[: fast.stat().st_size * 2 // 3], "truncated or damaged"),
        "text.mp4": (b"hello, not a video\n" * 20, "not a readable video"),
        "empty.mp4": (b"", "empty"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DreamscopeError, match=message):
            videos.open_video(tmp_path / name)
    with av.open(str(tmp_path / "zero.mp4"), "w") as container:  # a video stream with no frames in it
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height = 64, 48
        container.start_encoding()  # writes the header and the empty stream, as a crashed recorder would
    with pytest.raises(DreamscopeError, match="has no video stream; give a video"):  # FFmpeg drops the empty track
        videos.open_video(tmp_path / "zero.mp4")
    with pytest.raises(DreamscopeError, match="still picture"):
        videos.open_video(photo_path)


def test_output_names(tmp_path):
    assert videos.output_kind(tmp_path / "a.MP4") == "video"
    assert videos.output_kind(tmp_path / "a.gif") == "gif"
    assert videos.output_kind(tmp_path / "frames") == "frames"
    with pytest.raises(DreamscopeError, match=r"cannot write '\.avi' files.*\.mp4"):
        videos.check_output(tmp_path / "a.avi")
    with pytest.raises(DreamscopeError, match="nothing to resume"):
        videos.check_output(tmp_path / "a.mp4", resume=True)


# --- write failures, a silent sound source ---------------------------------------------------------------------


WRITTEN = ["big.mp4", "a.gif", "frames", "sound.mp4"]


@pytest.fixture(scope="module")
def write_failures(tmp_path_factory, clip):
    """Real failures, run in one child process: writing each output of WRITTEN where files may not grow past a
    limit (EFBIG, as on a full disk) while encoding, while writing a GIF or a frame, and while adding the sound
    (the limit lies between the silent video's size and the one with sound, so only the remux fails); and, where
    this machine allows it, onto a 16 KB RAM disk (ENOSPC)."""
    folder = tmp_path_factory.mktemp("failures")
    silent, sound = folder / "silent.mp4", folder / "sound.mp4"
    for path, audio in ((silent, None), (sound, clip)):
        with videos.FrameWriter(path, Fraction(12), audio_from=audio) as writer:
            for frame in videos.read_frames(clip):
                writer.write(frame)
    limit = (silent.stat().st_size + sound.stat().st_size) // 2
    write_clip(folder / "big.mkv", pan_frames(24, size=(256, 192)))
    out = folder / "out"
    out.mkdir()
    jobs = {name: (limit, ["video", str(out / name), str(folder / "big.mkv")]) for name in WRITTEN[:3]}
    jobs["sound.mp4"] = (limit, ["video", str(out / "sound.mp4"), str(clip), str(clip), {"dreamscope": "{}"}])
    disk = folder / "disk"
    problem = small_disk_problem(disk)
    if problem is None:
        jobs["full"] = (None, ["video", str(disk / "out.mp4"), str(clip), str(clip)])
    return run_jobs(jobs, small_disk=None if problem else (disk, 16384)), out, disk, problem


def test_write_errors_are_one_line_and_leave_nothing(write_failures):
    results, out, _, _ = write_failures
    for name in WRITTEN:
        error, message, left = results[name]
        assert (
            error == "DreamscopeError"
            and message == f"cannot write {out / name}: file too large; write elsewhere, or raise the file size limit (ulimit -f)"
        ), (name, message)
        assert left == []


def test_a_full_disk_is_one_line_and_leaves_nothing(write_failures):
    results, _, disk, problem = write_failures
    if problem:
        pytest.skip(problem)
    error, message, left = results["full"]
    assert error == "DreamscopeError" and left == []
    assert message == f"cannot write {disk / 'out.mp4'}: no space left on device; free some space or write elsewhere"


def test_a_folder_in_the_way_of_the_rename_is_one_line(tmp_path, clip):
    """A folder made at the output's name while the video was written (after the checks): the rename fails."""
    out = tmp_path / "out.mp4"
    with pytest.raises(DreamscopeError, match=f"cannot write {out}: is a directory"), videos.FrameWriter(out, 12) as writer:
        writer.write(pan_frames(1)[0])
        (out / "theirs").mkdir(parents=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"] and out.is_dir()


def test_a_source_without_sound_gives_a_silent_video(tmp_path):
    """It used to crash with IndexError at the very end, discarding the finished render."""
    source = tmp_path / "silent.mp4"
    write_clip(source, pan_frames(4))
    out = tmp_path / "out.mp4"
    with videos.FrameWriter(out, 12, audio_from=source) as writer:
        for frame in videos.read_frames(source):
            writer.write(frame)
    info = videos.open_video(out)
    assert info.frames == 4 and info.audio is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "silent.mp4"]


# --- resuming damaged outputs, two writers on one folder -------------------------------------------------------


def frames_folder(path, count: int = 3):
    with videos.FrameWriter(path, 12) as writer:
        for frame in pan_frames(count):
            writer.write(frame)
    return videos.frame_files(path)


def damage(files, how: str):
    if how == "cut last":
        files[-1].write_bytes(files[-1].read_bytes()[:300])
    elif how == "damaged middle":
        data = bytearray(files[1].read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        files[1].write_bytes(data)
    elif how == "empty first":
        files[0].write_bytes(b"")
    elif how == "text":
        files[1].write_text("not a picture\n")
    elif how == "JPEG":
        pan_frames(3)[2].save(files[2], format="JPEG")


@pytest.mark.parametrize(
    "how, name",
    [
        ("cut last", "frame_000003.png"),
        ("damaged middle", "frame_000002.png"),
        ("empty first", "frame_000001.png"),
        ("text", "frame_000002.png"),
        ("JPEG", "frame_000003.png"),
    ],
)
def test_resuming_a_damaged_frame_names_it(tmp_path, how, name):
    folder = tmp_path / "frames"
    files = frames_folder(folder)
    damage(files, how)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with (
        pytest.raises(
            DreamscopeError,
            match=f"^cannot resume {folder}: {name} is damaged, truncated or not a PNG picture; delete it and resume again$",
        ),
        videos.FrameWriter(folder, 12, resume=True) as writer,
    ):
        writer.write(pan_frames(4)[3])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    (folder / name).unlink()
    if name == "frame_000003.png":  # deleted as told, the folder resumes
        with videos.FrameWriter(folder, 12, resume=True) as writer:
            assert writer.existing == 2
            writer.write(pan_frames(3)[2])
        assert len(videos.frame_files(folder)) == 3


def test_resuming_a_folder_with_a_gap_or_another_size_is_refused(tmp_path):
    """The next frame written would overwrite one after a gap; a frame of another size can't join a video."""
    folder = tmp_path / "frames"
    files = frames_folder(folder, 4)
    files[1].unlink()
    with pytest.raises(DreamscopeError, match="frame_000002.png is missing .*numbered from 1 without gaps"):
        videos.FrameWriter(folder, 12, resume=True).__enter__()
    pan_frames(1, size=(50, 40))[0].save(files[1])
    with pytest.raises(DreamscopeError, match="frame_000002.png is 50x40, not 96x64 like the first frame; delete it"):
        videos.FrameWriter(folder, 12, resume=True).__enter__()
    (folder / "frame_000005.png").mkdir()  # a folder named like a frame is no frame
    assert videos.frame_files(folder) == files
    with pytest.raises(DreamscopeError, match="frame 2 is 50x40, not 96x64 like the first"):
        with videos.FrameWriter(tmp_path / "new.gif", 12) as writer:
            writer.write(pan_frames(1)[0])
            writer.write(pan_frames(1, size=(50, 40))[0])
    assert not (tmp_path / "new.gif").exists()


def test_resuming_a_damaged_video_is_refused(tmp_path):
    out = tmp_path / "z.mp4"
    with videos.FrameWriter(out, 12) as writer:
        for frame in pan_frames(6):
            writer.write(frame)
    out.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    data = out.read_bytes()
    with pytest.raises(DreamscopeError, match="z.mp4 is not a readable video: .*truncated or damaged"):
        with videos.FrameWriter(out, 12, resume=True) as writer:
            writer.write(pan_frames(7)[6])
    assert out.read_bytes() == data and [p.name for p in tmp_path.iterdir()] == ["z.mp4"]


BUSY = "is being written by another dreamscope run; wait for it or choose another folder"


def test_two_writers_on_one_folder(tmp_path):
    folder = tmp_path / "frames"
    with videos.FrameWriter(folder, 12) as first:
        first.write(pan_frames(1)[0])
        for resume in (False, True):  # the folder exists now, empty and locked
            with pytest.raises(DreamscopeError, match=f"^{folder} {BUSY}$"):
                with videos.FrameWriter(folder, 12, resume=resume):
                    pass
        first.write(pan_frames(2)[1])
    assert len(videos.frame_files(folder)) == 2 and [p.name for p in tmp_path.iterdir()] == ["frames"]
    with pytest.raises(DreamscopeError, match="not empty"):
        videos.FrameWriter(folder, 12)
    with pytest.raises(DreamscopeError, match="interrupted"):
        with videos.FrameWriter(tmp_path / "failed", 12) as writer:  # a failed run leaves no folder and no lock
            writer.write(pan_frames(1)[0])
            raise DreamscopeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
    frames_folder(tmp_path / "failed")


WRITER_PROCESS = r"""
import sys
from PIL import Image
from dreamscope.io import videos
with videos.FrameWriter(sys.argv[1], 12) as writer:
    writer.write(Image.new("RGB", (32, 24)))
    print("writing", flush=True)
    sys.stdin.readline()
"""


def test_a_writer_in_another_process_locks_the_folder_until_it_dies(tmp_path):
    folder = tmp_path / "frames"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_PROCESS, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "writing\n"
        with pytest.raises(DreamscopeError, match=BUSY), videos.FrameWriter(folder, 12):
            pass
    finally:
        child.kill()  # no clean-up runs: only the system drops the lock
        child.wait()
    assert not any(folder.iterdir())  # the empty folder it held (its .part folder beside it stays: it was killed)
    frames_folder(folder)


def test_a_folder_filled_by_another_program_keeps_both(tmp_path):
    """A program that takes no lock fills the folder while this run writes it: its files stay, and this run's
    frames are kept beside them instead of being lost."""
    folder = tmp_path / "frames"
    with (
        pytest.raises(
            DreamscopeError,
            match=f"^{folder} was filled by another program while this run wrote it; this run's 2 frames are in {folder}-2$",
        ),
        videos.FrameWriter(folder, 12) as writer,
    ):
        for frame in pan_frames(2):
            writer.write(frame)
        (folder / "theirs.txt").write_text("mine")
    assert [p.name for p in folder.iterdir()] == ["theirs.txt"]
    assert len(videos.frame_files(tmp_path / "frames-2")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "frames-2"]


# --- rotation, animations, hostile files and names -------------------------------------------------------------


def marked_frames(count: int = 3) -> list:
    """96x64 frames, black with a red block in the top-left corner: where it ends up shows the turn."""
    array = np.zeros((64, 96, 3), np.uint8)
    array[:24, :32] = [255, 0, 0]
    return [Image.fromarray(array)] * count


def red_corner(image) -> str:
    array = np.asarray(image)
    h, w = array.shape[:2]
    corners = {"top left": (4, 4), "top right": (4, w - 5), "bottom left": (h - 5, 4), "bottom right": (h - 5, w - 5)}
    [corner] = [name for name, (y, x) in corners.items() if array[y, x, 0] > 128]
    return corner


def rotated_clip(path, rotation: int | None = None, hflip: bool = False, tag: str | None = None) -> None:
    """A clip with a display matrix written through PyAV (`rotation`: counterclockwise degrees, as FFmpeg's
    av_display_rotation_get and ffprobe's "rotation of N degrees" count them), or with the legacy `rotate` tag."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height = 96, 64
        stream.pix_fmt = "yuv444p"
        if rotation is not None:
            stream.set_display_rotation(rotation, hflip=hflip)
        if tag is not None:
            stream.metadata["rotate"] = tag
        for i, picture in enumerate(marked_frames()):
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def apple_portrait_clip(path) -> None:
    """An MP4 with the track matrix an iPhone writes for a portrait video (turn 90 degrees clockwise to show),
    set in the `tkhd` box by hand: written independently of PyAV's display-matrix API."""
    rotated_clip(path)
    data = bytearray(path.read_bytes())
    box = data.index(b"tkhd") - 4
    matrix = box + (60 if data[box + 8] == 1 else 48)  # after the version's times, ids, duration, layer, volume
    assert struct.unpack(">9i", data[matrix : matrix + 36]) == (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 64 << 16, 0, 0x40000000)
    path.write_bytes(data)


@pytest.mark.parametrize(
    "name, make, corner",
    [
        ("ccw90.mp4", lambda p: rotated_clip(p, 90), "bottom left"),  # ffprobe: "rotation of 90.00 degrees"
        ("cw90.mp4", lambda p: rotated_clip(p, -90), "top right"),
        ("iphone.mov", apple_portrait_clip, "top right"),
        ("mirrored.mp4", lambda p: rotated_clip(p, 90, hflip=True), "bottom right"),
        ("ccw90.mkv", lambda p: rotated_clip(p, 90), "bottom left"),
        ("tag.mkv", lambda p: rotated_clip(p, tag="90"), "top right"),  # the legacy tag counts clockwise
    ],
)
def test_rotated_videos_are_read_as_shown(tmp_path, name, make, corner):
    make(tmp_path / name)
    info = videos.open_video(tmp_path / name)
    frames = list(videos.read_frames(tmp_path / name))
    assert info.size == (64, 96) and [f.size for f in frames] == [(64, 96)] * 3
    assert red_corner(frames[0]) == corner
    out = tmp_path / "out.mp4"
    with videos.FrameWriter(out, 12) as writer:
        for frame in frames:
            writer.write(frame)
    with av.open(str(out)) as container:  # upright as stored: no rotation left to apply
        stream = container.streams.video[0]
        first = next(container.decode(stream))
        assert (stream.width, stream.height, first.rotation) == (64, 96, 0)
        assert "rotate" not in {key.lower() for key in stream.metadata}
    assert red_corner(next(videos.read_frames(out))) == corner


def test_animations_as_videos(tmp_path):
    pictures = [Image.fromarray(np.full((12, 20, 3), (40 * i, 200 - 40 * i, 90), np.uint8)) for i in range(5)]
    for name in ("anim.gif", "anim.png", "anim.webp"):
        pictures[0].save(tmp_path / name, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    for name in ("anim.gif", "anim.png"):
        info = videos.open_video(tmp_path / name)
        assert (info.size, info.frames, info.fps) == ((20, 12), 5, 10)
        assert len(list(videos.read_frames(tmp_path / name))) == 5
    # FFmpeg (in PyAV 18) decodes only still WebP: say so, and what works
    with pytest.raises(
        DreamscopeError,
        match="anim.webp is an animated WebP, which dreamscope cannot read as a video; "
        "convert it to one of MP4, MOV, MKV, WebM, GIF or animated PNG first",
    ):
        videos.open_video(tmp_path / "anim.webp")
    pictures[0].save(tmp_path / "still.webp")
    with pytest.raises(DreamscopeError, match="still picture"):
        videos.open_video(tmp_path / "still.webp")


def raw_h264(size, count: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv444p"
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 90 + i, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_a_video_that_changes_size_is_refused_up_front(tmp_path):
    """Two H.264 streams back to back, the first of 1x1 frames: the frames would not fit one picture size."""
    (tmp_path / "mixed.h264").write_bytes(raw_h264((1, 1), 2) + raw_h264((64, 48), 3))
    with pytest.raises(DreamscopeError, match=r"mixed.h264 changes its picture size: frame 3 is 64x48, the first 1x1; re-export"):
        videos.open_video(tmp_path / "mixed.h264")
    (tmp_path / "tiny.h264").write_bytes(raw_h264((1, 1), 2))
    assert videos.open_video(tmp_path / "tiny.h264").size == (1, 1)


def test_sound_with_cover_art_is_no_video(tmp_path):
    """An audio file's album art is a one-picture video stream; it used to pass as a 1-frame video at 90000 fps."""
    with av.open(str(tmp_path / "song.m4a"), "w", format="mp4") as container:
        sound = container.add_stream("aac", rate=44100)
        cover = container.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 100, np.uint8), format="rgb24").reformat(format="yuvj420p")
        container.mux(cover.encode(picture) + cover.encode(None))
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 44100, 0
        container.mux(sound.encode(chunk) + sound.encode(None))
    with pytest.raises(DreamscopeError, match="song.m4a has no video stream, only a cover picture; give a video file"):
        videos.open_video(tmp_path / "song.m4a")


def test_a_pipe_is_refused_clearly(tmp_path):
    fifo = tmp_path / "clip.fifo"
    os.mkfifo(fifo)
    with pytest.raises(DreamscopeError, match="clip.fifo is a pipe or a device, not a file: .*save it to a file first"):
        videos.open_video(fifo)


@pytest.mark.parametrize(
    "raw_name", [b"caf\xe9.mp4", b"-dash.mp4", b"two  spaces .mkv", b"12:30 clip.mp4", b"http:x.mp4", b"frames 12:30"]
)
def test_odd_file_names(tmp_path, raw_name):
    """FFmpeg takes a name with a colon for a protocol ("http:", "12:"); a name that is not UTF-8 holds a lone
    surrogate in Python."""
    path = tmp_path / os.fsdecode(raw_name)
    metadata = {"source": str(path)}
    with videos.FrameWriter(path, 12, metadata=metadata) as writer:
        for frame in pan_frames(3):
            writer.write(frame)
    assert os.fsencode(path) in [os.fsencode(p) for p in tmp_path.iterdir()]
    if writer.kind == "video":
        assert videos.open_video(path).frames == 3 and len(list(videos.read_frames(path))) == 3
        with videos.FrameWriter(path, 12, resume=True, metadata=metadata) as writer:
            assert writer.existing == 3
    assert videos.read_metadata(path) == {"source": str(path).replace("\udce9", "\ufffd")}


@pytest.mark.parametrize(
    "name, says",
    [
        ("file.txt/out.mp4", "not a folder"),
        ("file.txt/sub/out.gif", "file.txt/sub is not a folder: .*file.txt is a file"),
        ("file.txt/frames/", "not a folder"),
        ("file.txt/sub/frames", "file.txt/sub is not a folder"),
        ("plain", "plain is a file, not a folder of frames"),
    ],
)
def test_outputs_under_a_file_are_refused_up_front(tmp_path, name, says):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "plain").write_text("x")
    for resume in (False, True):
        with pytest.raises(DreamscopeError, match=says):
            videos.check_output(str(tmp_path / name), resume=resume)


# --- metadata ------------------------------------------------------------------------------------------------

RECORD = json.dumps({"settings": {"layer": "stage5.2", "notes": "x" * 8000}, "input": "caf\udce9.mp4"})
METADATA = {"dreamscope": RECORD, "Comment": "é, 日本, a NUL \x00 and a lone \udcff"}
READ_BACK = {**METADATA, "Comment": "é, 日本, a NUL \x00 and a lone \ufffd"}


@pytest.mark.parametrize("name", ["m.mp4", "m.mov", "m.mkv", "m.webm", "m.gif", "frames"])
def test_metadata_round_trips(tmp_path, clip, name):
    out = tmp_path / name
    audio = clip if name in ("m.mp4", "m.webm") else None  # the remux with sound keeps it too
    with videos.FrameWriter(out, 12, metadata=METADATA, audio_from=audio) as writer:
        for frame in pan_frames(3):
            writer.write(frame)
    assert videos.read_metadata(out) == READ_BACK
    assert json.loads(videos.read_metadata(out)["dreamscope"])["input"] == "caf\udce9.mp4"
    if name == "frames":
        files = videos.frame_files(out)
        assert [images.read_metadata(f)["frame"] for f in files] == ["1", "2", "3"]
    else:
        assert videos.open_video(out).frames == 3


@pytest.mark.parametrize("name", ["z.mp4", "frames"])
def test_resuming_writes_the_new_metadata(tmp_path, name):
    out = tmp_path / name
    with videos.FrameWriter(out, 12, metadata={"run": "first"}) as writer:
        for frame in pan_frames(2):
            writer.write(frame)
    with videos.FrameWriter(out, 12, resume=True, metadata={"run": "second"}) as writer:
        writer.write(pan_frames(3)[2])
    assert videos.read_metadata(out) == {"run": "second"}
    if name == "frames":
        files = videos.frame_files(out)
        assert [images.read_metadata(f) for f in files] == [{"run": "second", "frame": str(n)} for n in (1, 2, 3)]
        # the text chunks were replaced, the pixels kept byte for byte: as if written with this metadata
        fresh = images.save_image(pan_frames(1)[0], tmp_path / "fresh.png", metadata={"run": "second", "frame": "1"})
        assert files[0].read_bytes() == fresh.read_bytes()


def test_no_metadata(tmp_path, clip):
    assert videos.read_metadata(clip) == {}
    frames_folder(tmp_path / "frames")
    assert videos.read_metadata(tmp_path / "frames") == {}
    assert images.read_metadata(videos.frame_files(tmp_path / "frames")[0]) == {}


ENCODER_FRAMES = Path(__file__).resolve().parents[1] / "data" / "encoder-frames.png"  # three 96x72 zoom frames, stacked
WRITE_FRAMES = """
import sys
from PIL import Image
from dreamscope import runtime
runtime._libc.mallopt(-6, int(sys.argv[1]))  # the bytes every new block of this process holds before it is written
from dreamscope.io import videos
stacked = Image.open(sys.argv[2]).convert("RGB")
with videos.FrameWriter(sys.argv[3], 12, metadata={"dreamscope": "{}"}) as writer:
    for top in range(0, stacked.height, 72):
        writer.write(stacked.crop((0, top, 96, top + 72)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt sets what new memory holds")
def test_the_same_frames_give_the_same_video_whatever_the_memory_held(tmp_path):
    """The encoder reads memory it never wrote: with these frames, x264 wrote another file when new memory held other
    bytes (two runs of `video` or `zoom` differed by up to 33/255 in about half of the runs). FrameWriter gives it
    memory filled with one byte, so the file depends on the frames alone."""
    from conftest import run_python

    made = []
    for byte in (0x11, 0x77):
        output = tmp_path / f"{byte}.mp4"
        result = run_python("-c", WRITE_FRAMES, byte, ENCODER_FRAMES, output)
        assert result.returncode == 0, result.stderr
        made.append(output.read_bytes())
    assert made[0] == made[1]


# --- every container the writer offers, with every kind of sound, reads back whole ------------------------------

SOUNDS = {  # the source's audio encoder -> a container that holds it
    None: ".mp4",
    "aac": ".mp4",
    "libmp3lame": ".mp4",
    "ac3": ".mkv",
    "libopus": ".mkv",
    "flac": ".mkv",
    "pcm_s16le": ".mov",
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    made = {}
    for codec, suffix in SOUNDS.items():
        made[codec] = folder / f"{codec or 'silent'}{suffix}"
        write_clip(made[codec], pan_frames(12, size=(64, 48)), audio=codec or False)
    return made


@pytest.mark.parametrize("codec", list(SOUNDS))
@pytest.mark.parametrize("suffix", list(videos.CONTAINERS))
def test_every_container_reads_back_with_all_its_frames_and_its_sound(tmp_path, sources, suffix, codec):
    """An MKV with sound once came back with no frames: the remux dropped the packets Matroska gives no decoding
    time, the first key frame among them."""
    out = tmp_path / f"out{suffix}"
    with videos.FrameWriter(out, 12, audio_from=sources[codec]) as writer:
        for frame in videos.read_frames(sources[codec]):
            writer.write(frame)
    info = videos.open_video(out)
    assert info.frames == 12 and len(list(videos.read_frames(out))) == 12
    assert (info.audio is not None) == (codec is not None)
    with av.open(str(out)) as container:
        first = next(packet for packet in container.demux(container.streams.video[0]) if packet.size)
        assert first.is_keyframe
        if codec is not None:
            decoded = sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate
            assert abs(decoded - 1.0) < 0.15  # the sound is as long as the 12 frames at 12 fps


def test_an_existing_folder_named_as_a_video_is_refused_not_filled_with_frames(tmp_path):
    """`zoom IN -o clip.mp4`, where clip.mp4 is a folder, once wrote PNG frames into it and said it wrote clip.mp4."""
    (tmp_path / "clip.mp4").mkdir()
    (tmp_path / "shots.v2").mkdir()
    with pytest.raises(
        DreamscopeError, match=r"output path is a folder: .*clip\.mp4; name a new video file, or end the name with /"
    ):
        videos.check_output(tmp_path / "clip.mp4")
    assert videos.output_kind(str(tmp_path / "clip.mp4") + "/") == "frames"  # said so: frames in that folder
    assert videos.output_kind(tmp_path / "shots.v2") == "frames"  # a folder not named as a video
    assert videos.output_kind(tmp_path / "new.gif") == "gif" and videos.output_kind(tmp_path / "new") == "frames"
