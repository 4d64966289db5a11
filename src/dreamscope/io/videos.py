"""Video files: write MP4/MOV/MKV/WebM, GIF or a folder of PNG frames, atomically; read them (video_reading.py).

The sibling of images.py for moving pictures, built on PyAV (FFmpeg inside the wheel). Frames cross this
module as PIL images, one at a time, so a long clip never sits in memory, and turned as players show them (a
phone's portrait video is stored on its side). Outputs are written under a temporary name beside the target and
renamed into place only when complete; an interrupted render either leaves nothing or, where the caller asks
for it (zoom, which can resume), a shorter but playable file. A failure to write (a full disk) is one
DreamscopeError, with the temporary file removed.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import secrets
import shutil
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from .. import runtime
from ..errors import DreamscopeError
from . import files, images
from .files import reason, write_error
from .images import check_metadata, metadata_json
from .video_reading import (  # noqa: F401 - the reading half of this module's API
    FRAME_NAME,
    METADATA_TAG,
    READABLE,
    VideoInfo,
    _av,
    _url,
    check_frames,
    frame_files,
    frame_size,
    open_video,
    read_frames,
    read_metadata,
)

# suffix -> (FFmpeg container, video encoder, encoder options, audio encoder when the input's can't be copied)
CONTAINERS = {
    ".mp4": ("mp4", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".mov": ("mov", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".mkv": ("matroska", "libx264", {"crf": "18", "preset": "medium"}, "aac"),
    ".webm": ("webm", "libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "1"}, "libopus"),
}
# Audio codecs each container plays back reliably when copied; anything else is re-encoded (FFmpeg's muxers
# accept more, e.g. PCM in MP4, but then fail when closing the file).
_COPYABLE_AUDIO = {
    "mp4": ("aac", "mp3", "ac3", "eac3", "alac"),
    "mov": ("aac", "mp3", "ac3", "alac", "pcm_s16le", "pcm_s24le"),
    "webm": ("opus", "vorbis"),
}
GIF = ".gif"
SUFFIXES = ", ".join([*CONTAINERS, GIF]) + " or a folder name (PNG frames)"


def output_kind(path: str | os.PathLike) -> str:
    """'video', 'gif' or 'frames' (a folder of PNGs: a name without a suffix, a trailing slash, or an existing folder
    not named as a video). An existing folder named clip.mp4 is a video output, which check_output refuses."""
    text = os.fspath(path)
    path = Path(text)
    suffix = path.suffix.lower()
    if text.endswith(("/", os.sep)) or not suffix or (os.path.isdir(path) and suffix not in CONTAINERS and suffix != GIF):
        return "frames"
    if suffix == GIF:
        return "gif"
    if suffix in CONTAINERS:
        return "video"
    raise DreamscopeError(f"cannot write '{suffix}' files; name the output with {SUFFIXES}")


def check_output(path: str | os.PathLike, resume: bool = False) -> Path:
    """Refuse an output that can't be written (or, with `resume`, continued) before any work is done."""
    kind = output_kind(path)
    path = Path(path)
    files.check_folder(path.parent if str(path.parent) else Path("."))
    if kind != "frames" and os.path.isdir(path):
        raise DreamscopeError(
            f"output path is a folder: {path}; name a new video file, or end the name with / for PNG frames in a folder"
        )
    if kind == "frames" and os.path.lexists(path) and not os.path.isdir(path):
        raise DreamscopeError(
            f"{path} is a file, not a folder of frames; name a new folder for PNG frames, or a video ({SUFFIXES})"
        )
    if resume:
        if not os.path.lexists(path):
            raise DreamscopeError(f"nothing to resume: {path} does not exist (start a new zoom instead)")
    elif kind == "frames" and _holds_anything(path):
        raise _not_empty(path)
    return path


def _holds_anything(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DreamscopeError(f"cannot read the folder {folder} ({reason(exc)})") from None


def _not_empty(folder: Path) -> DreamscopeError:
    return DreamscopeError(f"output folder {folder} is not empty; choose a new folder, or resume the zoom in it")


def _temp_name(path: Path, suffix: str = "") -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.part{suffix}"


class FrameWriter:
    """Writes frames to a video, GIF or PNG folder under a temporary name; renames it into place on success.

    With `keep_partial`, Ctrl-C (or a cancelled job: its generator closed) finishes what was written so far into a playable file under the final name
    (`partial` is then True); otherwise any failure leaves nothing behind, and a failure to write (a full disk)
    is a DreamscopeError. With `resume`, the frames already in `path` are kept (a video's are re-encoded into
    the new file; a folder's are each checked to decode) and `existing`, `first` and `last` tell where to
    continue from.

    `metadata` (text pairs, see images.check_metadata) goes into the output: a video's container tags (one
    "dreamscope" tag holding all pairs as JSON), a GIF's comment (the same JSON), each PNG of a folder (its
    text chunks, plus "frame", its number from 1). When resuming, the result carries the metadata given here,
    frames already in a folder included. videos.read_metadata gives it back.

    A PNG folder is locked while it is written (an advisory lock on the folder, which the system drops when a
    process dies), so a second run writing it fails up front instead of mixing its frames with this one's.
    """

    def __init__(
        self,
        path,
        fps: Fraction | float,
        *,
        keep_partial: bool = False,
        resume: bool = False,
        audio_from: str | os.PathLike | None = None,
        metadata: Mapping[str, str] | None = None,
    ):
        self.path = check_output(path, resume)
        self.kind = output_kind(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.keep_partial = keep_partial
        self.audio_from = audio_from
        self.metadata = check_metadata(metadata)
        self.count = 0
        self.existing = 0  # frames already in `path` when resuming, known once entered
        self.partial = False
        self.first: Image.Image | None = None
        self.last: Image.Image | None = None
        self._resume = resume
        self._container = self._stream = None
        self._gif_frames: list[Image.Image] = []
        self._temp: Path | None = None
        self._lock: int | None = None  # the locked folder's descriptor
        self._made_folder = False  # the empty folder made to hold the lock, removed again on failure

    # -- context -----------------------------------------------------------------------------------------
    def __enter__(self) -> FrameWriter:
        try:
            if self.kind == "frames":
                self._lock_folder()
                if self._resume:
                    self._take_over_frames()
                else:
                    self._temp = _temp_name(self.path)
                    self._temp.mkdir()
            else:
                self._temp = _temp_name(self.path, self.path.suffix)
                if self._resume:
                    for frame in read_frames(open_video(self.path).path):
                        self.write(frame)
        except BaseException as exc:  # __exit__ won't run for a failed __enter__: clean up here
            self._discard()
            if isinstance(exc, OSError):
                raise write_error(self.path, exc) from None
            raise
        self.existing = self.count
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        # Ctrl-C (SIGTERM arrives as one too) or a cancelled job (its generator closed): keep what is done
        interrupted = exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, GeneratorExit))
        if exc_type is None or (interrupted and self.keep_partial and self.count > 0):
            self.partial = exc_type is not None
            try:
                self._finish()
            except BaseException as error:
                self._discard()
                if isinstance(error, OSError):
                    raise write_error(self.path, error) from None
                raise
        else:
            self._discard()
        return False

    def _lock_folder(self) -> None:
        """Lock the output folder, made empty now if it does not exist yet (the finished frames are renamed
        over it, atomically). flock is per open file, so two writers in one process exclude each other too."""
        try:
            import fcntl
        except ImportError:  # no advisory locks here (Windows): the final rename still never overwrites frames
            return
        for _ in range(10):
            try:
                os.mkdir(self.path)
                self._made_folder = True
            except FileExistsError:
                pass
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._made_folder = False  # the other run holds it now
                raise DreamscopeError(
                    f"{self.path} is being written by another dreamscope run; wait for it or choose another folder"
                ) from None
            except OSError:  # a file system without locks (some network ones): go on without
                os.close(fd)
                return
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    self._lock = fd
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # a run that just finished renamed its frames over the folder: lock the new one
        else:
            raise DreamscopeError(f"{self.path} keeps changing under this run; wait for the other run or choose another folder")
        if not self._resume and _holds_anything(self.path):  # a run that finished in the meantime filled it
            raise _not_empty(self.path)

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the lock
            self._lock = None

    def _take_over_frames(self) -> None:
        """Check every frame of the folder to resume, so a damaged one is named now rather than breaking the
        result later, and give them the metadata of this run."""
        files, self.first, self.last = check_frames(self.path)
        for number, file in enumerate(files, 1):
            wanted = self._frame_metadata(number)
            if images.read_metadata(file) != (wanted or {}):
                images.set_png_text(file, wanted)
        self.count = len(files)

    # -- writing -----------------------------------------------------------------------------------------
    def write(self, image: Image.Image) -> None:
        image = image.convert("RGB")
        if self.first is not None and image.size != self.first.size:
            raise DreamscopeError(
                f"frame {self.count + 1} is {image.width}x{image.height}, not {self.first.width}x{self.first.height} like the first"
            )
        try:
            if self.kind == "frames":  # atomic per frame: a resumed folder never holds half a frame
                images.write_image(
                    image, (self._temp or self.path) / FRAME_NAME.format(self.count + 1), self._frame_metadata(self.count + 1)
                )
            elif self.kind == "gif":
                # GIF needs every frame before it can be written; palettized frames take 1 byte per pixel.
                self._gif_frames.append(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
            else:
                self._encode(image)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        if self.first is None:
            self.first = image
        self.last = image
        self.count += 1

    def _frame_metadata(self, number: int) -> dict[str, str] | None:
        return dict(sorted({**self.metadata, "frame": str(number)}.items())) if self.metadata else None

    def _encode(self, image: Image.Image) -> None:
        av = _av()
        try:
            if self._container is None:
                self._open_encoder(image.size)
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            frame.pts = self.count
            with runtime.filled_memory():  # see _open_encoder
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
        except av.FFmpegError as exc:  # an encoder's or muxer's failure, also when it is not a system error
            raise write_error(self.path, exc) from None

    def _open_encoder(self, size: tuple[int, int]) -> None:
        """The video stream. The encoder reads memory it has not written (x264 does, seen as the same frames giving
        files that decode differently, up to 33/255 on a 96x72 zoom, in about half of the runs): it is opened and fed
        with new memory filled with a fixed byte (`runtime.filled_memory`), and runs on one thread, so its output
        depends on the frames alone."""
        container_format, codec, options, _ = CONTAINERS[self.path.suffix.lower()]
        with runtime.filled_memory():
            self._open_stream(size, container_format, codec, options)

    def _open_stream(self, size, container_format, codec, options) -> None:
        self._container = self._open_output(self._temp, container_format)
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height = size
        # 4:2:0 plays everywhere but needs even sides; odd sizes keep every pixel with 4:4:4.
        stream.pix_fmt = "yuv420p" if size[0] % 2 == 0 and size[1] % 2 == 0 else "yuv444p"
        stream.time_base = Fraction(1, 1) / self.fps
        stream.codec_context.thread_count = 1
        stream.options = dict(options)
        self._stream = stream

    def _open_output(self, path: Path, container_format: str):
        """A container to write, carrying the metadata: MP4 and MOV keep tags of their own naming only with
        use_metadata_tags."""
        own_tags = {"movflags": "use_metadata_tags"} if self.metadata and container_format in ("mp4", "mov") else {}
        container = _av().open(_url(path), "w", format=container_format, container_options=own_tags)
        if self.metadata:
            container.metadata[METADATA_TAG] = metadata_json(self.metadata)
        return container

    # -- finishing ---------------------------------------------------------------------------------------
    def _finish(self) -> None:
        if self.kind == "frames":
            if self._temp is not None:
                self._place_folder()
            self._unlock()
            return
        if self.count == 0:
            raise DreamscopeError("no frames were written")
        if self.kind == "gif":
            # GIF counts time in 1/100 s: alternate rounded durations so the clip keeps its length (12 fps: 80, 90, 80 ms...)
            ends = [round(100 * (i + 1) / self.fps) * 10 for i in range(self.count)]
            durations = [end - start for start, end in zip([0, *ends], ends)]
            first, *rest = self._gif_frames
            comment = {"comment": metadata_json(self.metadata)} if self.metadata else {}
            with files.checked_file(self._temp) as handle:
                first.save(
                    handle, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False, **comment
                )
            self._gif_frames.clear()
        else:
            av = _av()
            try:
                with runtime.filled_memory():
                    for packet in self._stream.encode(None):
                        self._container.mux(packet)
                self._container.close()
                self._container = None
                if self.audio_from is not None and not self.partial:
                    with runtime.filled_memory():  # an audio encoder, like the video's, may read memory it never wrote
                        self._add_audio()
            except av.FFmpegError as exc:
                raise write_error(self.path, exc) from None
        os.replace(self._temp, self.path)

    def _place_folder(self) -> None:
        """Rename the finished frames over the empty folder held locked. One filled meanwhile by a program that
        takes no lock is left as it is, and this run's frames are kept beside it under a free name."""
        if self._lock is None and os.path.isdir(self.path) and not _holds_anything(self.path):
            os.rmdir(self.path)  # without a lock (Windows) a folder can't be renamed over
        try:
            os.replace(self._temp, self.path)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            kept = next(p for n in itertools.count(2) if not os.path.lexists(p := self.path.with_name(f"{self.path.name}-{n}")))
            os.replace(self._temp, kept)
            self._temp = None
            raise DreamscopeError(
                f"{self.path} was filled by another program while this run wrote it; this run's {self.count} frames are in {kept}"
            ) from None
        self._temp = None
        self._made_folder = False

    def _add_audio(self) -> None:
        """Remux the encoded video with the source's sound: copied as is, or re-encoded where the container
        can't hold it. Packets are merged by time, so the file is interleaved and memory stays small. A source
        without sound leaves the video silent."""
        av = _av()
        with av.open(_url(self.audio_from)) as sound_in:
            if not sound_in.streams.audio:
                return
            joined = _temp_name(self.path, self.path.suffix)
            container_format, _, _, audio_codec = CONTAINERS[self.path.suffix.lower()]
            try:
                with av.open(_url(self._temp)) as video_in, self._open_output(joined, container_format) as out:
                    v_in, a_in = video_in.streams.video[0], sound_in.streams.audio[0]
                    v_out = out.add_stream_from_template(v_in)
                    name = a_in.codec_context.codec.canonical_name  # "mp3", where the decoder is "mp3float"
                    copy = name in _COPYABLE_AUDIO.get(container_format, ()) or (
                        container_format == "matroska" and name in out.supported_codecs
                    )
                    if copy:
                        a_out = out.add_stream_from_template(a_in)
                    else:  # Opus only runs at 48 kHz; both encoders take mono or stereo
                        a_out = out.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else a_in.rate)
                        a_out.layout = "mono" if a_in.layout.nb_channels == 1 else "stereo"
                    video_end = float(v_in.duration * v_in.time_base) if v_in.duration else None

                    def timed(container, stream, target):
                        # Matroska stores no decoding times: FFmpeg gives some packets (the first key frame among
                        # them) a dts of None. Only the demuxer's empty end packets are skipped; the merge key
                        # carries the last known time forward so it never goes back.
                        last = float("-inf")
                        for packet in container.demux(stream):
                            if packet.size == 0:
                                continue
                            stamp = packet.dts if packet.dts is not None else packet.pts
                            if stamp is not None:
                                last = max(last, float(stamp * packet.time_base))
                            yield last, packet, target

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
            except Exception:
                pass
            self._container = None
        self._gif_frames.clear()
        if self._temp is not None and os.path.lexists(self._temp):
            shutil.rmtree(self._temp) if os.path.isdir(self._temp) else self._temp.unlink()
        self._temp = None
        if self._made_folder:  # removed before the lock is dropped, so no other run can have started in it
            try:
                os.rmdir(self.path)
            except OSError:
                pass
            self._made_folder = False
        self._unlock()
