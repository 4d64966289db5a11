"""Reading videos: check a clip, stream its frames (turned as players show them) and its dreamscope metadata;
list and check a folder of PNG frames. videos.py re-exports all of it beside the writer.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image

from ..errors import DreamscopeError
from . import images
from .files import reason
from .images import MAX_PIXELS, metadata_from_json

FRAME_NAME = "frame_{:06d}.png"
_FRAME_PATTERN = re.compile(r"frame_(\d{6})\.png$")
READABLE = "MP4, MOV, MKV, WebM, GIF or animated PNG"
# The container tag holding all metadata pairs as one JSON object: Matroska upper-cases tag names and turns
# spaces into underscores, so pairs as separate tags would not come back as written.
METADATA_TAG = "dreamscope"


def _av():
    import av  # imported on first use: the picture commands never pay for it

    return av


def _url(path: str | os.PathLike) -> str:
    """The name to give FFmpeg: through its file protocol, since it reads a name with a colon as a protocol of
    its own ("clip 12:30.mp4", "http:x.mp4")."""
    return "file:" + os.fspath(path)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # as shown: a stream stored on its side with a display rotation gives its turned size
    height: int
    fps: Fraction
    frames: int  # counted by decoding, not trusted from the header
    audio: str | None  # the audio codec's name, or None without sound

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def __iter__(self) -> Iterator[Image.Image]:
        """Its frames, decoded one at a time as PIL images (`read_frames`)."""
        return read_frames(self.path)

    def __len__(self) -> int:
        return self.frames


def open_video(path: str | os.PathLike) -> VideoInfo:
    """Check a video fully before any work: it opens, has a video stream, and every frame decodes, at one size.

    Decoding the whole clip once costs little next to dreaming it, and it is the only way to catch a
    truncated or damaged file up front instead of after hours of rendering.
    """
    av = _av()
    path = Path(path)
    _check_file(path)
    try:
        with av.open(_url(path)) as container:
            if container.format.name == "webp_pipe" and _animated_picture(path):  # FFmpeg decodes only still WebP
                raise DreamscopeError(
                    f"{path} is an animated WebP, which dreamscope cannot read as a video; convert it to one of {READABLE} first"
                )
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise DreamscopeError(f"{path} is a still picture, not a video; dream it with: dreamscope dream {path}")
            stream = _video_stream(container, path)
            declared = stream.frames
            fps = stream.average_rate or stream.guessed_rate
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
            count = 0
            size = None
            for frame, turn in _decode(container, stream, path):
                shown = _shown_size(frame, turn)
                if size is None:
                    size = shown
                    if size[0] * size[1] > MAX_PIXELS:
                        raise DreamscopeError(
                            f"{path} has {size[0]}x{size[1]} frames, over the {MAX_PIXELS // 10**6} megapixel limit"
                        )
                elif shown != size:
                    raise DreamscopeError(
                        f"{path} changes its picture size: frame {count + 1} is {shown[0]}x{shown[1]}, the first "
                        f"{size[0]}x{size[1]}; re-export it at one size"
                    )
                count += 1
    except DreamscopeError:
        raise
    except PermissionError:
        raise DreamscopeError(f"cannot read {path} (permission denied); check its permissions") from None
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise DreamscopeError(
            f"{path} is not a readable video: not a video at all, or truncated or damaged ({reason(exc)}); "
            f"give an {READABLE} file, or re-export it"
        ) from None
    if count == 0:
        raise DreamscopeError(f"{path} has no frames; give a video with at least one frame")
    if declared and count < declared:
        raise DreamscopeError(
            f"{path} is truncated or damaged: its header promises {declared} frames but only {count} decode; re-export it"
        )
    if not fps:
        raise DreamscopeError(f"{path} does not say its frame rate; re-export it with a constant frame rate")
    return VideoInfo(path, size[0], size[1], Fraction(fps), count, audio)


def frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """The (width, height) of a video's frames as shown, from its first frame alone: a quick look before queueing
    work (`open_video` checks the whole clip when the work starts)."""
    _check_file(Path(path))
    frames = read_frames(path)
    try:
        first = next(frames, None)
    except DreamscopeError:
        raise
    except (ValueError, OSError) as exc:
        raise DreamscopeError(f"{path} is not a readable video ({reason(exc)}); give an {READABLE} file") from None
    finally:
        frames.close()
    if first is None:
        raise DreamscopeError(f"{path} has no frames; give a video with at least one frame")
    return first.size


def _check_file(path: Path) -> None:
    """A video is read more than once (checked whole, then streamed), so it must be a regular, non-empty file."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DreamscopeError(f"video file not found: {path} (check the path)") from None
    except OSError as exc:
        raise DreamscopeError(f"cannot read {path} ({reason(exc)}); check the path and its permissions") from None
    if stat.S_ISDIR(info.st_mode):
        raise DreamscopeError(f"{path} is a folder; give a video file")
    if not stat.S_ISREG(info.st_mode):
        raise DreamscopeError(
            f"{path} is a pipe or a device, not a file: a video is read twice (checked, then dreamed); save it to a file first"
        )
    if info.st_size == 0:
        raise DreamscopeError(f"{path} is empty (0 bytes); give a video file such as an MP4")


def _animated_picture(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return bool(getattr(img, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError):
        return False


def _video_stream(container, path):
    """The first video stream that is not a cover picture (an audio file's album art is a one-frame 'video')."""
    attached = _av().stream.Disposition.attached_pic
    for stream in container.streams.video:
        if not stream.disposition & attached:
            return stream
    only = ", only a cover picture" if container.streams.video else ""
    raise DreamscopeError(f"{path} has no video stream{only}; give a video file such as an MP4")


def _decode(container, stream, name):
    """Frames of one stream, each with how to turn it for display; a damaged packet raises instead of being
    skipped silently."""
    stream.thread_type = "AUTO"
    rotate = _rotate_tag(stream)
    for packet in container.demux(stream):
        if packet.is_corrupt:
            raise DreamscopeError(f"{name} is truncated or damaged (a corrupt packet at {packet.pts}); re-export it")
        try:
            frames = packet.decode()
        except _av().error.EOFError:  # a stream that ends before its first frame (a crashed recording)
            return
        for frame in frames:
            yield frame, _display_turn(frame, rotate)


def _rotate_tag(stream) -> int:
    """The legacy `rotate` tag (clockwise degrees to show the picture upright) that older files carry instead of a
    display matrix; Matroska spells it ROTATE."""
    for key, value in stream.metadata.items():
        if key.lower() == "rotate":
            try:
                return round(float(value) / 90) * 90 % 360
            except ValueError:
                return 0
    return 0


_T = Image.Transpose
_TURNS = {90: _T.ROTATE_270, 180: _T.ROTATE_180, 270: _T.ROTATE_90}  # clockwise degrees -> PIL (counterclockwise)


def _display_turn(frame, rotate_tag: int) -> Image.Transpose | None:
    """How to turn a decoded frame to show it as players do: as FFmpeg's own autorotation does, from the display
    matrix (its clockwise quarter turn, and its signs for a mirrored one), else from the `rotate` tag."""
    data = frame.side_data.get("DISPLAYMATRIX")  # by name: PyAV 18.1.1 iterates the kinds, earlier ones the data
    matrix = struct.unpack("=9i", bytes(data)) if data is not None else None
    if matrix is None:
        return _TURNS.get(rotate_tag)
    clockwise = round(-frame.rotation / 90) * 90 % 360  # PyAV gives the counterclockwise angle; other angles round
    a, c, d = matrix[0], matrix[3], matrix[4]
    if clockwise == 90:
        return _T.TRANSPOSE if c > 0 else _T.ROTATE_270
    if clockwise == 270:
        return _T.TRANSVERSE if c < 0 else _T.ROTATE_90
    if clockwise == 180:
        return {(True, True): _T.ROTATE_180, (True, False): _T.FLIP_LEFT_RIGHT, (False, True): _T.FLIP_TOP_BOTTOM}.get(
            (a < 0, d < 0)
        )
    return _T.FLIP_TOP_BOTTOM if d < 0 else None


def _shown_size(frame, turn) -> tuple[int, int]:
    sideways = turn in (_T.ROTATE_90, _T.ROTATE_270, _T.TRANSPOSE, _T.TRANSVERSE)
    return (frame.height, frame.width) if sideways else (frame.width, frame.height)


def read_frames(path: str | os.PathLike) -> Iterator[Image.Image]:
    """The frames of a video (or GIF) as RGB PIL images, decoded one at a time and turned as players show them."""
    av = _av()
    try:
        with av.open(_url(path)) as container:
            for frame, turn in _decode(container, _video_stream(container, path), path):
                image = frame.to_image().convert("RGB")
                yield image if turn is None else image.transpose(turn)
    except av.FFmpegError as exc:
        raise DreamscopeError(f"{path} stopped decoding ({reason(exc)}); re-export it") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The text pairs FrameWriter wrote into a video, a GIF or a PNG frames folder; {} when there are none.

    A folder gives its first frame's, without that frame's own "frame" number. A lone surrogate written comes
    back as U+FFFD (see images.check_metadata).
    """
    path = Path(path)
    if os.path.isdir(path):
        files = frame_files(path)
        pairs = images.read_metadata(files[0]) if files else {}
        pairs.pop("frame", None)
        return pairs
    _check_file(path)
    av = _av()
    try:
        with av.open(_url(path)) as container:
            if container.format.name == "gif":  # FFmpeg skips GIF comments
                return images.read_metadata(path)
            tags = dict(container.metadata)
    except (av.FFmpegError, OSError) as exc:
        raise DreamscopeError(f"{path} is not a readable video ({reason(exc)})") from None
    return metadata_from_json(next((value for key, value in tags.items() if key.lower() == METADATA_TAG), None))


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The numbered frames of a PNG folder, in order."""
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if _FRAME_PATTERN.fullmatch(e.name) and e.is_file())
    except OSError as exc:
        raise DreamscopeError(f"cannot read the frames folder {folder} ({reason(exc)})") from None


def check_frames(folder: str | os.PathLike) -> tuple[list[Path], Image.Image, Image.Image]:
    """The frames of a PNG folder to continue, each checked (numbered without gaps, a PNG that decodes, the first
    one's size), with the first and last as pictures: a damaged frame is named before any work."""
    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise DreamscopeError(f"nothing to resume: {folder} holds no frame_NNNNNN.png files")
    first = last = None
    for number, file in enumerate(files, 1):
        expected = FRAME_NAME.format(number)
        if file.name != expected:  # the next frame written would overwrite one already there
            raise DreamscopeError(
                f"cannot resume {folder}: {expected} is missing (frames are numbered from 1 "
                "without gaps); put it back, or move the frames after it away, and resume again"
            )
        try:
            picture = images.load_image(file, what="frame")
            with open(file, "rb") as handle:
                readable = handle.read(8) == b"\x89PNG\r\n\x1a\n"  # a JPEG named like a frame decodes too
        except (DreamscopeError, OSError):
            readable = False
        if not readable:
            raise DreamscopeError(
                f"cannot resume {folder}: {file.name} is damaged, truncated or not a PNG picture; delete it and resume again"
            )
        if first is not None and picture.size != first.size:
            raise DreamscopeError(
                f"cannot resume {folder}: {file.name} is {picture.width}x{picture.height}, not "
                f"{first.width}x{first.height} like the first frame; delete it and resume again"
            )
        first, last = first or picture, picture
    return files, first, last
