"""Video files in and out: sizes, frame counts, frame rates and sound survive; damage is caught up front;
nothing half-written is ever left under the final name."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from dreamscope import videos
from dreamscope.errors import DreamscopeError

from conftest import pan_frames, write_clip


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
    with pytest.raises(DreamscopeError, match="not empty.*--resume"):
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
        with pytest.raises(KeyboardInterrupt):
            with videos.FrameWriter(out, 12, keep_partial=keep) as writer:
                for frame in pan_frames(5):
                    writer.write(frame)
                raise KeyboardInterrupt
        assert out.exists() == keep
        if keep:
            assert writer.partial and videos.open_video(out).frames == 5
    out = tmp_path / "failed.gif"
    with pytest.raises(RuntimeError):
        with videos.FrameWriter(out, 12, keep_partial=True) as writer:
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
