"""Video files: check and stream frames in; write MP4/MOV/MKV/WebM, GIF or a folder of PNG frames, atomically.

The sibling of images.py for moving pictures, built on PyAV (FFmpeg inside the wheel). Frames cross this
module as PIL images, one at a time, so a long clip never sits in memory. Outputs are written under a
temporary name beside the target and renamed into place only when complete; an interrupted render either
leaves nothing or, where the caller asks for it (zoom, which can resume), a shorter but playable file.
"""

from __future__ import annotations

import heapq
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from .errors import DreamscopeError
from .images import MAX_PIXELS

# suffix -> (FFmpeg container, video encoder, encoder options, audio encoder when the input's can't be copied)
CONTAINERS = {
    ".mp4": ("mp4", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".mov": ("mov", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".mkv": ("matroska", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".webm": ("webm", "libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "1"}, "libopus"),
}
# Audio codecs each container plays back reliably when copied; anything else is re-encoded (FFmpeg's muxers
# accept more, e.g. PCM in MP4, but then fail when closing the file).
_COPYABLE_AUDIO = {"mp4": ("aac", "mp3", "ac3", "eac3", "alac"), "mov": ("aac", "mp3", "ac3", "alac", "pcm_s16le", "pcm_s24le"),
                   "webm": ("opus", "vorbis")}
GIF = ".gif"
FRAME_NAME = "frame_{:06d}.png"
_FRAME_PATTERN = re.compile(r"frame_(\d{6})\.png$")
SUFFIXES = ", ".join([*CONTAINERS, GIF]) + " or a folder name (PNG frames)"


def _av():
    import av  # imported on first use: the picture commands never pay for it

    return av


def output_kind(path: str | os.PathLike) -> str:
    """'video', 'gif' or 'frames' (a folder of PNGs: a name without a suffix, a trailing slash or a folder)."""
    text = os.fspath(path)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return "frames"
    suffix = path.suffix.lower()
    if suffix == GIF:
        return "gif"
    if suffix in CONTAINERS:
        return "video"
    raise DreamscopeError(f"cannot write '{suffix}' files; name the output with {SUFFIXES}")


def check_output(path: str | os.PathLike, resume: bool = False) -> Path:
    """Refuse an output that can't be written (or, with `resume`, continued) before any work is done."""
    kind = output_kind(path)
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DreamscopeError(f"output folder does not exist: {parent} (create it first)")
    if not os.access(parent, os.W_OK):
        raise DreamscopeError(f"cannot write into {parent} (permission denied)")
    if kind != "frames" and path.is_dir():
        raise DreamscopeError(f"output path is a folder: {path}")
    if resume:
        if not path.exists():
            raise DreamscopeError(f"nothing to resume: {path} does not exist (drop --resume to start a new one)")
    elif kind == "frames" and path.exists() and any(path.iterdir()):
        raise DreamscopeError(f"output folder {path} is not empty; choose a new folder, or add --resume to continue it")
    return path


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int  # counted by decoding, not trusted from the header
    audio: str | None  # the audio codec's name, or None without sound

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def open_video(path: str | os.PathLike) -> VideoInfo:
    """Check a video fully before any work: it opens, has a video stream, and every frame decodes.

    Decoding the whole clip once costs little next to dreaming it, and it is the only way to catch a
    truncated or damaged file up front instead of after hours of rendering.
    """
    av = _av()
    path = Path(path)
    if not path.exists():
        raise DreamscopeError(f"video file not found: {path} (check the path)")
    if path.is_dir():
        raise DreamscopeError(f"{path} is a folder; give a video file")
    if path.stat().st_size == 0:
        raise DreamscopeError(f"{path} is empty (0 bytes); give a video file such as an MP4")
    try:
        with av.open(str(path)) as container:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise DreamscopeError(f"{path} is a still picture, not a video; dream it with: dreamscope dream {path}")
            if not container.streams.video:
                raise DreamscopeError(f"{path} has no video stream; give a video file such as an MP4")
            stream = container.streams.video[0]
            declared = stream.frames
            fps = stream.average_rate or stream.guessed_rate
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
            count = 0
            width = height = 0
            for frame in _decode(container, stream):
                if count == 0:
                    width, height = frame.width, frame.height
                    if width * height > MAX_PIXELS:
                        raise DreamscopeError(f"{path} has {width}x{height} frames, over the {MAX_PIXELS // 10**6} megapixel limit")
                count += 1
    except DreamscopeError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise DreamscopeError(
            f"{path} is not a readable video: not a video at all, or truncated or damaged ({_reason(exc)}); "
            "give an MP4, MOV, MKV, WebM or GIF file, or re-export it"
        ) from None
    if count == 0:
        raise DreamscopeError(f"{path} has no frames; give a video with at least one frame")
    if declared and count < declared:
        raise DreamscopeError(f"{path} is truncated or damaged: its header promises {declared} frames but only {count} decode; re-export it")
    if not fps:
        raise DreamscopeError(f"{path} does not say its frame rate; re-export it with a constant frame rate")
    return VideoInfo(path, width, height, Fraction(fps), count, audio)


def _decode(container, stream):
    """Frames of one stream; a damaged packet raises instead of being skipped silently."""
    stream.thread_type = "AUTO"
    for packet in container.demux(stream):
        if packet.is_corrupt:
            raise DreamscopeError(f"{container.name} is truncated or damaged (a corrupt packet at {packet.pts}); re-export it")
        try:
            yield from packet.decode()
        except _av().error.EOFError:  # a stream that ends before its first frame (a crashed recording)
            return


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".").lower()


def read_frames(path: str | os.PathLike) -> Iterator[Image.Image]:
    """The frames of a video (or GIF) as RGB PIL images, decoded one at a time."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            for frame in _decode(container, container.streams.video[0]):
                yield frame.to_image().convert("RGB")
    except av.FFmpegError as exc:
        raise DreamscopeError(f"{path} stopped decoding ({_reason(exc)}); re-export it") from None


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The numbered frames of a PNG folder, in order."""
    return sorted(p for p in Path(folder).iterdir() if _FRAME_PATTERN.fullmatch(p.name))


def _temp_name(path: Path, suffix: str = "") -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.part{suffix}"


class FrameWriter:
    """Writes frames to a video, GIF or PNG folder under a temporary name; renames it into place on success.

    With `keep_partial`, Ctrl-C finishes what was written so far into a playable file under the final name
    (`partial` is then True); otherwise any failure leaves nothing behind. With `resume`, the frames already
    in `path` are kept (a video's are re-encoded into the new file) and `existing`, `first` and `last` tell
    where to continue from.
    """

    def __init__(self, path, fps: Fraction | float, *, keep_partial: bool = False, resume: bool = False,
                 audio_from: str | os.PathLike | None = None):
        self.path = check_output(path, resume)
        self.kind = output_kind(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.keep_partial = keep_partial
        self.audio_from = audio_from
        self.count = 0
        self.existing = 0  # frames already in `path` when resuming, known once entered
        self.partial = False
        self.first: Image.Image | None = None
        self.last: Image.Image | None = None
        self._resume = resume
        self._container = self._stream = None
        self._gif_frames: list[Image.Image] = []
        self._temp: Path | None = None

    # -- context -----------------------------------------------------------------------------------------
    def __enter__(self) -> "FrameWriter":
        if self.kind == "frames" and self._resume:
            files = frame_files(self.path)
            if not files:
                raise DreamscopeError(f"nothing to resume: {self.path} holds no frame_NNNNNN.png files")
            self.count = len(files)
            self.first, self.last = (Image.open(files[i]).convert("RGB") for i in (0, -1))
        elif self.kind == "frames":
            self._temp = _temp_name(self.path)
            self._temp.mkdir()
        else:
            self._temp = _temp_name(self.path, self.path.suffix)
            if self._resume:
                try:
                    for frame in read_frames(open_video(self.path).path):
                        self.write(frame)
                except BaseException:  # __exit__ won't run for a failed __enter__: clean up here
                    self._discard()
                    raise
        self.existing = self.count
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        if exc_type is None or (interrupted and self.keep_partial and self.count > 0):
            self.partial = exc_type is not None
            try:
                self._finish()
            except BaseException:
                self._discard()
                raise
        else:
            self._discard()
        return False

    # -- writing -----------------------------------------------------------------------------------------
    def write(self, image: Image.Image) -> None:
        image = image.convert("RGB")
        if self.first is None:
            self.first = image
        self.last = image
        if self.kind == "frames":
            from .images import save_image  # atomic per frame: a resumed folder never holds half a frame

            save_image(image, (self._temp or self.path) / FRAME_NAME.format(self.count + 1))
        elif self.kind == "gif":
            # GIF needs every frame before it can be written; palettized frames take 1 byte per pixel.
            self._gif_frames.append(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
        else:
            self._encode(image)
        self.count += 1

    def _encode(self, image: Image.Image) -> None:
        av = _av()
        if self._container is None:
            self._open_encoder(image.size)
        if image.size != (self._stream.width, self._stream.height):
            raise DreamscopeError(f"frame {self.count + 1} is {image.width}x{image.height}, not {self._stream.width}x{self._stream.height}")
        frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
        frame.pts = self.count
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _open_encoder(self, size: tuple[int, int]) -> None:
        av = _av()
        container_format, codec, options, _ = CONTAINERS[self.path.suffix.lower()]
        self._container = av.open(str(self._temp), "w", format=container_format)
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height = size
        # 4:2:0 plays everywhere but needs even sides; odd sizes keep every pixel with 4:4:4.
        stream.pix_fmt = "yuv420p" if size[0] % 2 == 0 and size[1] % 2 == 0 else "yuv444p"
        stream.time_base = Fraction(1, 1) / self.fps
        stream.options = dict(options)
        self._stream = stream

    # -- finishing ---------------------------------------------------------------------------------------
    def _finish(self) -> None:
        if self.kind == "frames":
            if self._temp is not None:
                if self.path.exists():
                    self.path.rmdir()  # empty: check_output refused a non-empty folder
                os.replace(self._temp, self.path)
            return
        if self.count == 0:
            raise DreamscopeError("no frames were written")
        if self.kind == "gif":
            # GIF counts time in 1/100 s: alternate rounded durations so the clip keeps its length (12 fps: 80, 90, 80 ms...)
            ends = [round(100 * (i + 1) / self.fps) * 10 for i in range(self.count)]
            durations = [end - start for start, end in zip([0, *ends], ends)]
            first, *rest = self._gif_frames
            first.save(self._temp, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False)
            self._gif_frames.clear()
        else:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            if self.audio_from is not None and not self.partial:
                self._add_audio()
        os.replace(self._temp, self.path)

    def _add_audio(self) -> None:
        """Remux the encoded video with the source's sound: copied as is, or re-encoded where the container
        can't hold it. Packets are merged by time, so the file is interleaved and memory stays small."""
        av = _av()
        joined = _temp_name(self.path, self.path.suffix)
        container_format, _, _, audio_codec = CONTAINERS[self.path.suffix.lower()]
        try:
            with av.open(str(self._temp)) as video_in, av.open(str(self.audio_from)) as sound_in, \
                    av.open(str(joined), "w", format=container_format) as out:
                v_in, a_in = video_in.streams.video[0], sound_in.streams.audio[0]
                v_out = out.add_stream_from_template(v_in)
                name = a_in.codec_context.name
                copy = name in _COPYABLE_AUDIO.get(container_format, ()) or (container_format == "matroska" and name in out.supported_codecs)
                if copy:
                    a_out = out.add_stream_from_template(a_in)
                else:  # Opus only runs at 48 kHz; both encoders take mono or stereo
                    a_out = out.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else a_in.rate)
                    a_out.layout = "mono" if a_in.layout.nb_channels == 1 else "stereo"
                video_end = float(v_in.duration * v_in.time_base) if v_in.duration else None

                def timed(container, stream, target):
                    for packet in container.demux(stream):
                        if packet.dts is None:
                            continue
                        yield float(packet.dts * packet.time_base), packet, target

                merged = heapq.merge(timed(video_in, v_in, v_out), timed(sound_in, a_in, a_out), key=lambda item: item[0])
                for when, packet, target in merged:
                    if target is a_out and video_end is not None and when > video_end + 0.5:
                        break  # the dream is as long as the picture; sound beyond it is cut
                    if target is v_out or copy:
                        packet.stream = target
                        out.mux(packet)
                    else:
                        for frame in packet.decode():
                            frame.pts = None
                            out.mux(a_out.encode(frame))
                if not copy:
                    out.mux(a_out.encode(None))
            os.replace(joined, self._temp)
        finally:
            joined.unlink(missing_ok=True)

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - already failing; the file is being removed anyway
                pass
            self._container = None
        self._gif_frames.clear()
        if self._temp is not None and self._temp.exists():
            shutil.rmtree(self._temp) if self._temp.is_dir() else self._temp.unlink()
