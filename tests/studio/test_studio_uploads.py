"""The studio's upload checks (studio/uploads.py) on their own: however many uploads arrive together, at most two
are decoded at once, pictures, videos and animations alike."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import chelsea, pan_frames, write_clip
from dreamscope.studio import uploads


def test_at_most_two_uploads_are_decoded_at_once_whatever_their_kind(tmp_path, monkeypatch):
    files = {}
    for number in range(2):
        files[f"photo{number}.png"] = "picture"
        chelsea((96 + number, 64)).save(tmp_path / f"photo{number}.png")
        files[f"clip{number}.mp4"] = "video"
        write_clip(tmp_path / f"clip{number}.mp4", pan_frames(3), fps=12)
        files[f"moving{number}.gif"] = "video"  # an animation: its first frame as a picture, then every frame
        frames = pan_frames(3)
        frames[0].save(tmp_path / f"moving{number}.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    lock, decoding, most = threading.Lock(), [0], [0]

    def counted(decode):
        def decode_counted(*args, **kwargs):  # the real decode, counted while it runs and held a moment
            with lock:
                decoding[0] += 1
                most[0] = max(most[0], decoding[0])
            try:
                time.sleep(0.2)
                return decode(*args, **kwargs)
            finally:
                with lock:
                    decoding[0] -= 1

        return decode_counted

    monkeypatch.setattr(uploads.images, "load_image", counted(uploads.images.load_image))
    monkeypatch.setattr(uploads.videos, "open_video", counted(uploads.videos.open_video))
    start = threading.Barrier(len(files))

    def inspect(name: str) -> uploads.Sniffed:
        start.wait()  # all arrive together, as uploads of a runaway script would
        return uploads.inspect(tmp_path / name, name, uploads.Limits())

    with ThreadPoolExecutor(len(files)) as pool:
        sniffed = dict(zip(files, pool.map(inspect, files)))
    assert {name: found.kind for name, found in sniffed.items()} == files
    assert sniffed["moving0.gif"].frames == sniffed["clip0.mp4"].frames == 3
    assert most[0] == 2, most  # two at a time: never more, and the count does see two together
