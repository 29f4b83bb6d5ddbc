"""Tests of ppocr_torch.download against a local HTTP server (no network access needed)."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from ppocr_torch import download
from ppocr_torch.errors import ChecksumError, DownloadError, WeightsNotCachedError
from ppocr_torch.models.spec import ModelSpec
from ppocr_torch.registry import ModelEntry, WeightsInfo, get_entry

PAYLOAD = b"not really a checkpoint, but bytes with a known hash\n" * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
FILE = f"fake_rec-{SHA[:8]}.pth"


class _Server:
    """A threaded http.server on 127.0.0.1 serving files from a directory and counting requests."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                path = server.root / self.path.lstrip("/").split("/")[-1]
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / FILE).write_bytes(PAYLOAD)
    with _Server(root) as srv:
        yield srv


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    home = tmp_path / "cache"
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(home))
    monkeypatch.delenv("PPOCR_TORCH_OFFLINE", raising=False)
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_URL", raising=False)
    return home


def _spec():
    return ModelSpec(name="fake_rec", backbone={"name": "X"}, head={"name": "CTCHead"}, input_height=32,
                     num_classes=3, dictionary="x.txt", use_space_char=False)


def _entry(url, *, sha=SHA, file=FILE):
    weights = WeightsInfo(file=file, sha256=sha, size=len(PAYLOAD), embedded=False, url=url)
    return ModelEntry(name="fake_rec", spec=_spec(), dictionary="x.txt", weights=weights)


def _listing(path: Path):
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_cache_dir_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(tmp_path / "h"))
    assert download.cache_dir() == tmp_path / "h"
    monkeypatch.delenv("PPOCR_TORCH_HOME")
    import torch

    assert download.cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", "http://example.invalid/w")
    assert download.weights_base_url() == "http://example.invalid/w/"
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_URL")
    assert download.weights_base_url() == download.DEFAULT_WEIGHTS_BASE_URL
    for value, expected in (("1", True), ("TRUE", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("PPOCR_TORCH_OFFLINE", value)
        assert download.is_offline() is expected


def test_cache_dir_without_torch_matches_torch_hub(tmp_path):
    """The default cache dir is computed without importing torch, and agrees with torch.hub."""
    import subprocess
    import sys

    code = ("import sys; from ppocr_torch import download; d = download.cache_dir(); "
            "assert 'torch' not in sys.modules; import torch; "
            "assert str(d) == os.path.join(torch.hub.get_dir(), 'checkpoints'), (d, torch.hub.get_dir()); "
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PPOCR_TORCH_HOME"}
    env["TORCH_HOME"] = str(tmp_path / "th")
    out = subprocess.run([sys.executable, "-c", "import os; " + code], env=env, capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_download_then_cached(served, cache):
    entry = _entry(served.url + FILE)
    path = download.resolve_weights(entry, progress=False)
    assert path == cache / FILE
    assert path.read_bytes() == PAYLOAD
    assert _listing(cache) == [FILE]
    assert len(served.requests) == 1
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o644
    assert download.resolve_weights(entry, progress=False) == path
    assert len(served.requests) == 1, "a cached, valid file must not be downloaded again"
    assert download.weights_status(entry) == "cached"


def test_base_url_used_when_entry_has_no_url(served, cache, monkeypatch):
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", served.url.rstrip("/"))
    path = download.resolve_weights(_entry(None), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert served.requests == [f"/{FILE}"]


def test_wrong_checksum_leaves_nothing(served, cache):
    entry = _entry(served.url + FILE, sha="0" * 64)
    with pytest.raises(ChecksumError) as info:
        download.resolve_weights(entry, progress=False)
    assert "0" * 64 in str(info.value)
    assert _listing(cache) == [], "neither the target nor a temp file may remain"


def test_http_404_is_download_error(served, cache):
    url = served.url + "missing.pth"
    entry = _entry(url, file="missing.pth")
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(entry, progress=False)
    assert url in str(info.value)
    assert _listing(cache) == []


def test_connection_refused_is_download_error(cache):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{FILE}"
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(_entry(url), progress=False)
    assert url in str(info.value)
    assert _listing(cache) == []


def test_offline_or_no_download(served, cache, monkeypatch):
    url = served.url + FILE
    entry = _entry(url)
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    msg = str(info.value)
    assert url in msg and FILE in msg and "fake_rec" in msg
    assert "ppocr-torch download fake_rec" in msg
    monkeypatch.delenv("PPOCR_TORCH_OFFLINE")
    with pytest.raises(WeightsNotCachedError):
        download.resolve_weights(entry, download=False)
    assert served.requests == []
    assert download.weights_status(entry) == "download"


def test_offline_uses_valid_cache(served, cache, monkeypatch):
    entry = _entry(served.url + FILE)
    download.resolve_weights(entry, progress=False)
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "yes")
    assert download.resolve_weights(entry).read_bytes() == PAYLOAD
    assert len(served.requests) == 1


def test_corrupted_cache_is_downloaded_again(served, cache):
    entry = _entry(served.url + FILE)
    cache.mkdir(parents=True)
    (cache / FILE).write_bytes(PAYLOAD[:-10] + b"corrupted!")
    path = download.resolve_weights(entry, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert len(served.requests) == 1
    assert _listing(cache) == [FILE]


def test_corrupted_cache_offline_is_not_used(cache, monkeypatch):
    entry = _entry("http://127.0.0.1:9/" + FILE)
    cache.mkdir(parents=True)
    (cache / FILE).write_bytes(b"truncated")
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    with pytest.raises(WeightsNotCachedError):
        download.resolve_weights(entry)


def test_no_converted_checkpoint():
    entry = ModelEntry(name="fake_rec", spec=_spec(), dictionary="x.txt", weights=None)
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    assert "python -m conversion convert fake_rec" in str(info.value)
    assert download.weights_status(entry) == "not converted"


def test_embedded_default_model_is_in_package():
    entry = get_entry("PP-OCRv6_small_rec")
    if entry.weights is None or not entry.weights.embedded:
        pytest.fail("the default model must have embedded weights in the registry")
    path = download.resolve_weights(entry, download=False)
    assert path.is_file()
    assert path.parent.name == "weights" and path.parent.parent.name == "ppocr_torch"
    assert path.stat().st_size == entry.weights.size
    from ppocr_torch.checkpoint import sha256_file

    assert sha256_file(path) == entry.weights.sha256
    assert download.weights_status(entry) == "embedded"


def test_embedded_missing_file_is_reported():
    entry = ModelEntry(name="fake_rec", spec=_spec(), dictionary="x.txt",
                       weights=WeightsInfo(file="does-not-exist.pth", sha256=SHA, size=1, embedded=True))
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    assert "does-not-exist.pth" in str(info.value)
