"""Fetch weights over HTTP into the cache folder: checked against a digest, written atomically.

The file is streamed into a temporary file beside its destination while its SHA-256 (and SHA-1, for digests
Caffe's Model Zoo published) is computed; only a file whose digest matches is renamed into place, so a broken
or wrong download never leaves anything in the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DreamscopeError
from ..io.files import temporary_file
from .catalogue import get_spec
from .spec import ModelSpec
from .weights import CHUNK, FileWeights, env_name, file_digests, weights_dir

TIMEOUT_S = 60
Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None when the server does not say)


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    already_present: bool = False


def _digest(name: str, text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().lower()
    length = {"sha256": 64, "sha1": 40}[name]
    if not re.fullmatch(f"[0-9a-f]{{{length}}}", text):
        raise DreamscopeError(f"a {name.upper()} digest is {length} hexadecimal digits, got '{text}'")
    return text


def _check(found: dict[str, str], expected: dict[str, str | None], url: str) -> None:
    for name, digest in expected.items():
        if digest and found[name] != digest:
            raise DreamscopeError(
                f"the file from {url} has {name.upper()} {found[name]}, not the expected {digest}: it is damaged or not "
                "the right file, so nothing was saved; try again, or check the URL and the digest"
            )


def download(
    url: str,
    destination: str | Path,
    *,
    sha256: str | None = None,
    sha1: str | None = None,
    progress: Progress | None = None,
    timeout: float = TIMEOUT_S,
) -> Fetched:
    """Download `url` to `destination`, refusing it unless it has the given digest (at least one is required)."""
    expected = {"sha256": _digest("sha256", sha256), "sha1": _digest("sha1", sha1)}
    if not any(expected.values()):
        raise DreamscopeError(
            f"no digest is known for {url}; pass its SHA-256 (sha256=, --sha256 HEX on the command line) "
            "from a source you trust, so a wrong file is refused"
        )
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DreamscopeError(f"cannot download '{url}': give an http:// or https:// address")
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a read-only disk: the cache folder is the user's to move
        raise DreamscopeError(
            f"cannot make the weights folder {destination.parent} ({exc.strerror or exc}); set "
            "DREAMSCOPE_CACHE to a folder you can write"
        ) from None
    if destination.is_file():
        found = file_digests(destination, ("sha256", "sha1"))
        if all(not digest or found[name] == digest for name, digest in expected.items()):
            return Fetched(destination, found["sha256"], destination.stat().st_size, already_present=True)
    fd, tmp = temporary_file(destination)
    try:
        sha256_hash, sha1_hash, done = hashlib.sha256(), hashlib.sha1(), 0
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers["Content-Length"]) if response.headers.get("Content-Length", "").isdigit() else None
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                sha256_hash.update(chunk)
                sha1_hash.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done != total:
            raise DreamscopeError(f"the download from {url} stopped after {done} of {total} bytes; nothing was saved, try again")
        found = {"sha256": sha256_hash.hexdigest(), "sha1": sha1_hash.hexdigest()}
        _check(found, expected, url)
        os.replace(tmp, destination)
    except urllib.error.HTTPError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DreamscopeError(f"the server answered {exc.code} {exc.reason} for {url}; check the URL") from None
    except (urllib.error.URLError, OSError) as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise DreamscopeError(
            f"cannot download {url} ({reason}); check the address and your connection, "
            "or fetch the file yourself and pass it as weights= (--weights)"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Fetched(destination, found["sha256"], done)


def fetch_weights(name: str, *, url: str | None = None, sha256: str | None = None, progress: Progress | None = None) -> Fetched:
    """`dreamscope models --download NAME`: the model's weights into the cache folder, where it finds them.

    The address is `url`, else $DREAMSCOPE_<MODEL>_URL, else the registered one. The registered digest applies
    to any address (a mirror serves the same file) unless `sha256` is given.
    """
    spec: ModelSpec = get_spec(name)
    if not isinstance(spec.weights, FileWeights) or spec.weights.download is None:
        raise DreamscopeError(f"{name} has nothing to download: {spec.weights.how_to_get()}")
    source = spec.weights.download
    url = url or os.environ.get(env_name(name, "url")) or source.url
    digests = {"sha256": sha256} if sha256 else {"sha256": source.sha256, "sha1": source.sha1}
    return download(url, weights_dir() / cache_name(url, spec.weights), progress=progress, **digests)


def cache_name(url: str, weights: FileWeights) -> str:
    """The registered file name, or its state-dict twin when the address serves a PyTorch file."""
    suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
    if suffix in (".pth", ".pt", ".safetensors"):
        twin = Path(weights.download.file_name).stem + (".safetensors" if suffix == ".safetensors" else ".pth")
        if twin in weights.file_names:
            return twin
    return weights.download.file_name
