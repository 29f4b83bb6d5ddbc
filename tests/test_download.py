"""Tests of ppocr_torch.download against a real HTTP server on 127.0.0.1 started here (no other network).

The server (:class:`WeightsServer`) is ``http.server`` with Range support written for these tests; it
serves real checkpoints saved here, logs every request, and can be told to fail, to cut a transfer after
N bytes, to ignore Range headers or to send slowly. Registry entries are the real ones with their weights
pointed at the server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ppocr_torch import download, registry, transport
from ppocr_torch.errors import CheckpointError, ChecksumError, DownloadError, WeightsNotCachedError
from ppocr_torch.registry import WeightsInfo, get_entry

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ch_PP-OCRv2_rec"  # small and committed: its random-weight checkpoint is saved by the tests


# -- the HTTP server ------------------------------------------------------------------------------------


class WeightsServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 serving ``files`` (name -> bytes), with Range support.

    Knobs (set before the request): ``fail[name]``: list of status codes answered first, one per request;
    ``cut[name]``: list of byte counts, one per request: send that many body bytes then drop the
    connection; ``ignore_range``: answer every request with the whole file; ``delay``: seconds to sleep
    after each 64 KiB chunk; ``no_length``: no Content-Length (the body ends when the connection closes);
    ``endless``: after the file, send zeros until the client hangs up (at most :data:`ENDLESS_MAX` bytes);
    ``trickle``: after ``trickle_after`` body bytes, send one byte every ``trickle`` seconds (for at most
    :data:`TRICKLE_MAX` seconds, then drop the connection). ``log``: one dict per request (path, range,
    status, sent).
    """

    ENDLESS_MAX = 256 << 20
    TRICKLE_MAX = 20.0

    def __init__(self, files: dict[str, bytes] | None = None, *, ignore_range: bool = False,
                 delay: float = 0.0):
        self.files = dict(files or {})
        self.fail: dict[str, list[int]] = {}
        self.cut: dict[str, list[int]] = {}
        self.ignore_range = ignore_range
        self.delay = delay
        self.no_length = False
        self.endless = False
        self.trickle: float | None = None
        self.trickle_after = 0
        self.log: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                server._serve(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def _serve(self, h) -> None:
        name = h.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        rng = h.headers.get("Range")
        rec = {"path": h.path, "range": rng, "status": None, "sent": 0}
        with self._lock:
            self.log.append(rec)
            fail = self.fail.get(name)
            status = fail.pop(0) if fail else None
            cuts = self.cut.get(name)
            cut = cuts.pop(0) if cuts else None
        if status is None and name not in self.files:
            status = 404
        if status is not None:
            rec["status"] = status
            h.send_error(status)
            return
        data = self.files[name]
        start, end = 0, len(data) - 1
        code = 200
        if rng and not self.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= len(data):
                rec["status"] = 416
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), end) if m.group(2) else end
            code = 206
        body = data[start:end + 1]
        rec["status"] = code
        h.send_response(code)
        h.send_header("Content-Type", "application/octet-stream")
        if not self.no_length:
            h.send_header("Content-Length", str(len(body)))
        if code == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        limit = len(body) if cut is None else min(cut, len(body))
        step = 1 << 16
        try:
            trickle = self.trickle
            if trickle is not None:
                limit = min(limit, self.trickle_after)
            for i in range(0, limit, step):
                h.wfile.write(body[i:min(i + step, limit)])
                rec["sent"] += min(step, limit - i)
                if self.delay:
                    time.sleep(self.delay)
            h.wfile.flush()
            if trickle is not None:  # then one byte at a time, never fast enough
                give_up = time.monotonic() + self.TRICKLE_MAX
                for i in range(limit, len(body)):
                    if time.monotonic() > give_up:
                        cut = limit  # drop the connection below
                        break
                    time.sleep(trickle)
                    h.wfile.write(body[i:i + 1])
                    h.wfile.flush()
                    rec["sent"] += 1
            while self.endless and rec["sent"] < self.ENDLESS_MAX:
                h.wfile.write(bytes(step))
                rec["sent"] += step
        except (BrokenPipeError, ConnectionResetError):
            return
        if cut is not None:  # drop the connection in the middle of the body
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def requests_for(self, name: str) -> list[dict]:
        return [r for r in self.log if r["path"].rstrip("/").endswith("/" + name)]

    def full_gets(self, name: str) -> int:
        return sum(1 for r in self.requests_for(name) if r["status"] == 200)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def refused_url(path: str = "") -> str:
    """A URL on 127.0.0.1 where nobody listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def use_registry(monkeypatch, *entries) -> None:
    """Make the registry hold exactly ``entries`` (for get_entry, list_models, entries)."""
    by_name = {e.name: e for e in entries}
    aliases = {a: e.name for e in entries for a in e.aliases}
    monkeypatch.setattr(registry, "_load", lambda: (by_name, aliases))


def state_digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class Checkpoint:
    path: Path
    data: bytes
    sha256: str
    digest: str  # state_digest of the saved model

    @property
    def file(self) -> str:
        return f"{MODEL}-{self.sha256[:8]}.pth"

    def entry(self, url: str | None = "", *, name: str = MODEL, file: str | None = None, sha256=None):
        """The real registry entry of ``name`` with its weights pointed at this checkpoint.

        ``url=""`` (default): no explicit URL (base URLs apply)."""
        w = WeightsInfo(file=file or self.file, sha256=sha256 or self.sha256, size=len(self.data),
                        embedded=False, url=url or None)
        base = get_entry(MODEL)  # no official download: these weights are not the official ones
        return dataclasses.replace(base, name=name, aliases=base.aliases if name == MODEL else (), weights=w,
                                   official={})


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Checkpoint:
    """A real ppocr_torch checkpoint: ch_PP-OCRv2_rec's architecture with random weights, saved here."""
    import torch

    from ppocr_torch.api import load_model
    from ppocr_torch.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = load_model(MODEL, pretrained=False)
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    sha = save_checkpoint(path, model)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    return Checkpoint(path, data, sha, state_digest(model))


def local_only(monkeypatch) -> None:
    """Requests to 127.0.0.1 bypass any HTTP proxy configured in the environment."""
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    local_only(monkeypatch)
    home = tmp_path / "cache"
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(home))
    for var in ("PPOCR_TORCH_OFFLINE", "PPOCR_TORCH_WEIGHTS_URL", "PPOCR_TORCH_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(transport, "_BACKOFF", 0.01)
    return home


@pytest.fixture()
def served(checkpoint):
    with WeightsServer({checkpoint.file: checkpoint.data}) as srv:
        yield srv


@pytest.fixture()
def no_network(monkeypatch):
    """Any socket connection attempt fails the test."""
    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return calls


def _listing(path: Path):
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


# -- configuration --------------------------------------------------------------------------------------


def test_cache_dir_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(tmp_path / "h"))
    assert download.cache_dir() == tmp_path / "h"
    monkeypatch.delenv("PPOCR_TORCH_HOME")
    import torch

    assert download.cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert download.cache_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", "http://example.invalid/w")
    assert download.weights_base_url() == "http://example.invalid/w/"
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", " http://a.invalid/x , http://b.invalid/y/ ,")
    assert download.weights_base_urls() == ["http://a.invalid/x/", "http://b.invalid/y/"]
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_URL")
    assert download.weights_base_url() == download.DEFAULT_WEIGHTS_BASE_URL
    for value, expected in (("1", True), ("TRUE", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("PPOCR_TORCH_OFFLINE", value)
        assert download.is_offline() is expected


def test_cache_dir_without_torch_matches_torch_hub(tmp_path):
    """The default cache dir is computed without importing torch, and agrees with torch.hub."""
    code = ("import os, sys; from ppocr_torch import download; d = download.cache_dir(); "
            "assert 'torch' not in sys.modules; import torch; "
            "assert str(d) == os.path.join(torch.hub.get_dir(), 'checkpoints'), (d, torch.hub.get_dir()); "
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PPOCR_TORCH_HOME"}
    env["TORCH_HOME"] = str(tmp_path / "th")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_weights_urls_order(checkpoint, monkeypatch):
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_URL", raising=False)
    plain = checkpoint.entry()
    assert download.weights_urls(plain) == [download.DEFAULT_WEIGHTS_BASE_URL + checkpoint.file]
    explicit = checkpoint.entry("http://127.0.0.1:9/x/" + checkpoint.file)
    assert download.weights_urls(explicit) == ["http://127.0.0.1:9/x/" + checkpoint.file]
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", "http://127.0.0.1:1/a,http://127.0.0.1:2/b/")
    assert download.weights_urls(plain) == ["http://127.0.0.1:1/a/" + checkpoint.file,
                                            "http://127.0.0.1:2/b/" + checkpoint.file]
    assert download.weights_urls(explicit)[-1] == "http://127.0.0.1:9/x/" + checkpoint.file


# -- downloading ----------------------------------------------------------------------------------------


def test_first_download_then_cache_hit_without_request(served, cache, checkpoint, monkeypatch):
    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry)
    assert download.weights_status(entry) == "release"
    path = download.resolve_weights(entry, progress=False)
    assert path == cache / checkpoint.file
    assert path.read_bytes() == checkpoint.data
    assert _listing(cache) == [checkpoint.file], "no .part or .lock file may remain"
    assert [r["status"] for r in served.log] == [200] and served.log[0]["range"] is None
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o644
    assert download.weights_status(entry) == "cached"

    from ppocr_torch.api import load_model

    model = load_model(MODEL)  # through the registry: the cached, verified file
    assert state_digest(model) == checkpoint.digest
    assert len(served.log) == 1, "a cached, valid file must not be requested again"

    download._verified.clear()  # a new process: the file is hashed again, still no request
    assert download.resolve_weights(entry, progress=False) == path
    assert len(served.log) == 1


def test_cache_hit_makes_no_connection(served, cache, checkpoint, no_network):
    entry = checkpoint.entry(served.url + checkpoint.file)
    cache.mkdir(parents=True)
    (cache / checkpoint.file).write_bytes(checkpoint.data)
    assert download.resolve_weights(entry, progress=False) == cache / checkpoint.file
    assert no_network == [] and served.log == []


def test_base_url_used_when_entry_has_no_url(served, cache, checkpoint, monkeypatch):
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", served.url.rstrip("/"))
    path = download.resolve_weights(checkpoint.entry(), progress=False)
    assert path.read_bytes() == checkpoint.data
    assert [r["path"] for r in served.log] == [f"/{checkpoint.file}"]


def test_hash_mismatch_rejects_file_and_leaves_nothing(cache, checkpoint):
    tampered = bytearray(checkpoint.data)
    tampered[len(tampered) // 2] ^= 0xFF  # same size, other content
    with WeightsServer({checkpoint.file: bytes(tampered)}) as srv:
        entry = checkpoint.entry(srv.url + checkpoint.file)
        with pytest.raises(ChecksumError) as info:
            download.resolve_weights(entry, progress=False)
    msg = str(info.value)
    assert checkpoint.sha256 in msg and hashlib.sha256(tampered).hexdigest() in msg
    assert srv.url + checkpoint.file in msg
    assert _listing(cache) == [], "neither the file, nor a .part, nor a lock file may remain"


def test_wrong_size_is_rejected_before_download(cache, checkpoint):
    with WeightsServer({checkpoint.file: checkpoint.data + b"extra"}) as srv:
        with pytest.raises(ChecksumError) as info:
            download.resolve_weights(checkpoint.entry(srv.url + checkpoint.file), progress=False)
    assert str(len(checkpoint.data)) in str(info.value)
    assert _listing(cache) == []


def test_http_404_is_download_error_without_retry(served, cache, checkpoint):
    url = served.url + "missing/" + checkpoint.file
    served.files.clear()
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(checkpoint.entry(url), progress=False)
    assert url in str(info.value) and "404" in str(info.value)
    assert len(served.log) == 1, "a 404 must not be retried"
    assert _listing(cache) == []


def test_connection_refused_is_download_error(cache, checkpoint, monkeypatch):
    url = refused_url(checkpoint.file)
    calls = []
    monkeypatch.setattr(transport, "_sleep", calls.append)
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(checkpoint.entry(url), progress=False)
    msg = str(info.value)
    assert url in msg and "Connection refused" in msg
    assert f"after {transport._RETRIES + 1} attempts" in msg
    assert calls == [0.01 * 2 ** i for i in range(transport._RETRIES)], "exponential backoff"
    assert _listing(cache) == []


def test_a_host_that_does_not_resolve_fails_at_once(cache, checkpoint, monkeypatch):
    url = "http://no-such-host.invalid/weights/" + checkpoint.file  # .invalid never resolves (RFC 6761)
    calls = []
    monkeypatch.setattr(transport, "_sleep", calls.append)
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(checkpoint.entry(url), progress=False)
    assert url in str(info.value) and calls == [], "name resolution failures are not retried"
    assert _listing(cache) == []


def test_5xx_is_retried(served, cache, checkpoint):
    served.fail[checkpoint.file] = [503, 500]
    path = download.resolve_weights(checkpoint.entry(served.url + checkpoint.file), progress=False)
    assert path.read_bytes() == checkpoint.data
    assert [r["status"] for r in served.log] == [503, 500, 200]


def test_cut_transfer_is_resumed_with_range(served, cache, checkpoint):
    cut = len(checkpoint.data) // 3
    served.cut[checkpoint.file] = [cut]
    path = download.resolve_weights(checkpoint.entry(served.url + checkpoint.file), progress=False)
    assert path.read_bytes() == checkpoint.data
    assert [r["status"] for r in served.log] == [200, 206] and served.log[0]["sent"] == cut
    # the client resumes from what it saved (the HTTP stack may drop the last incomplete block)
    start = int(re.fullmatch(r"bytes=(\d+)-", served.log[1]["range"]).group(1))
    assert 0 < start <= cut and served.log[1]["sent"] == len(checkpoint.data) - start
    assert _listing(cache) == [checkpoint.file]


def test_partial_file_survives_failure_and_is_resumed_later(served, cache, checkpoint, monkeypatch):
    cut = len(checkpoint.data) // 2
    served.cut[checkpoint.file] = [cut]
    entry = checkpoint.entry(served.url + checkpoint.file)
    monkeypatch.setattr(transport, "_RETRIES", 0)
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(entry, progress=False)
    assert "cut" in str(info.value)
    part = cache / (checkpoint.file + ".part")
    assert _listing(cache) == [part.name]
    kept = part.stat().st_size
    assert 0 < kept <= cut and part.read_bytes() == checkpoint.data[:kept]
    assert download.cache_files([entry])[0]["state"] == "partial"
    path = download.resolve_weights(entry, progress=False)  # a later call (or process) resumes
    assert path.read_bytes() == checkpoint.data
    assert served.log[-1]["range"] == f"bytes={kept}-" and served.log[-1]["status"] == 206
    assert served.full_gets(checkpoint.file) == 1
    assert _listing(cache) == [checkpoint.file]


def test_server_ignoring_range_restarts_cleanly(cache, checkpoint):
    cut = len(checkpoint.data) // 4
    with WeightsServer({checkpoint.file: checkpoint.data}, ignore_range=True) as srv:
        srv.cut[checkpoint.file] = [cut]
        path = download.resolve_weights(checkpoint.entry(srv.url + checkpoint.file), progress=False)
    assert path.read_bytes() == checkpoint.data, "the 200 answer must replace the partial file, not extend it"
    assert [r["status"] for r in srv.log] == [200, 200]
    assert srv.log[0]["range"] is None and srv.log[1]["range"].startswith("bytes=")
    assert _listing(cache) == [checkpoint.file]


def test_bad_partial_file_is_discarded(served, cache, checkpoint):
    cache.mkdir(parents=True)
    (cache / (checkpoint.file + ".part")).write_bytes(b"\0" * 1000)  # not a prefix of the file
    path = download.resolve_weights(checkpoint.entry(served.url + checkpoint.file), progress=False)
    assert path.read_bytes() == checkpoint.data
    assert [(r["status"], r["range"]) for r in served.log] == [(206, "bytes=1000-"), (200, None)]
    assert _listing(cache) == [checkpoint.file]


def test_mirror_list_fallback(cache, checkpoint, monkeypatch):
    with WeightsServer() as empty, WeightsServer({checkpoint.file: checkpoint.data}) as good:
        monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", ",".join([refused_url(), empty.url, good.url]))
        path = download.resolve_weights(checkpoint.entry(), progress=False)
        assert path.read_bytes() == checkpoint.data
        assert [r["status"] for r in empty.log] == [404]
        assert [r["status"] for r in good.log] == [200]
        # every mirror failing: one error naming each URL
        good.files.clear()
        path.unlink()
        with pytest.raises(DownloadError) as info:
            download.resolve_weights(checkpoint.entry(), progress=False)
    msg = str(info.value)
    assert "any of 3 URLs" in msg and empty.url + checkpoint.file in msg and good.url + checkpoint.file in msg
    assert _listing(cache) == []


def test_four_processes_download_once(cache, checkpoint, tmp_path):
    """Four processes load the same model at the same moment: one download, four identical models."""
    ready = tmp_path / "ready"
    ready.mkdir()
    script = r"""
import dataclasses, hashlib, json, os, sys, time
from pathlib import Path
from ppocr_torch import registry
from ppocr_torch.registry import WeightsInfo
url, sha, size, file, ready, n = sys.argv[1:]
entry = dataclasses.replace(registry.get_entry("ch_PP-OCRv2_rec"),
                            weights=WeightsInfo(file=file, sha256=sha, size=int(size), url=url))
by_name, aliases = registry._load()
by_name = dict(by_name, **{entry.name: entry})
registry._load = lambda: (by_name, aliases)
import torch
from ppocr_torch.api import load_model
Path(ready, str(os.getpid())).touch()
deadline = time.monotonic() + 120
while len(os.listdir(ready)) < int(n) and time.monotonic() < deadline:
    time.sleep(0.01)
start = time.time()
model = load_model("ch_PP-OCRv2_rec")
h = hashlib.sha256()
for k, v in sorted(model.state_dict().items()):
    h.update(k.encode()); h.update(v.contiguous().numpy().tobytes())
print(json.dumps({"digest": h.hexdigest(), "start": start}))
"""
    n = 4
    # ~1.5 s per transfer: the processes overlap, the others must wait for the first one
    with WeightsServer({checkpoint.file: checkpoint.data}, delay=0.01) as srv:
        env = dict(os.environ, PPOCR_TORCH_HOME=str(cache))
        env.pop("PPOCR_TORCH_OFFLINE", None)
        env.pop("PPOCR_TORCH_WEIGHTS_URL", None)
        args = [srv.url + checkpoint.file, checkpoint.sha256, str(len(checkpoint.data)), checkpoint.file,
                str(ready), str(n)]
        procs = [subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(n)]
        outs = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=300)
                outs.append((p.returncode, out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
    for rc, out, err in outs:
        assert rc == 0, err
    reports = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in outs]
    assert {r["digest"] for r in reports} == {checkpoint.digest}, "four identical loads of the served checkpoint"
    starts = [r["start"] for r in reports]
    assert max(starts) - min(starts) < 1.0, "the loads must overlap the ~1.3 s transfer"
    assert [r["status"] for r in srv.log] == [200], f"exactly one download, got {srv.log}"
    assert _listing(cache) == [checkpoint.file]


def test_threads_download_once(served, cache, checkpoint):
    served.delay = 0.002
    entry = checkpoint.entry(served.url + checkpoint.file)
    results, errors = [], []

    def worker():
        try:
            results.append(download.resolve_weights(entry, progress=False))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 4 and set(results) == {cache / checkpoint.file}
    assert served.full_gets(checkpoint.file) == 1 and len(served.log) == 1


# -- offline, cache validation, local files -------------------------------------------------------------


def test_offline_never_touches_the_network(served, cache, checkpoint, monkeypatch, no_network):
    url = served.url + checkpoint.file
    entry = checkpoint.entry(url)
    use_registry(monkeypatch, entry)
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    from ppocr_torch.api import load_model

    with pytest.raises(WeightsNotCachedError) as info:
        load_model(MODEL)
    msg = str(info.value)
    assert url in msg and checkpoint.file in msg and str(cache) in msg
    assert f"ppocr-torch download {MODEL}" in msg and "PPOCR_TORCH_OFFLINE" in msg
    monkeypatch.delenv("PPOCR_TORCH_OFFLINE")
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry, download=False)
    assert "download=False" in str(info.value)
    assert served.log == [] and no_network == []
    assert _listing(cache) == []


def test_offline_uses_valid_cache(served, cache, checkpoint, monkeypatch):
    entry = checkpoint.entry(served.url + checkpoint.file)
    download.resolve_weights(entry, progress=False)
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "yes")
    assert download.resolve_weights(entry).read_bytes() == checkpoint.data
    assert len(served.log) == 1


def test_corrupted_cache_is_downloaded_again(served, cache, checkpoint):
    entry = checkpoint.entry(served.url + checkpoint.file)
    path = download.resolve_weights(entry, progress=False)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # bit rot after a successful download
    path.write_bytes(bytes(data))
    download._verified.clear()  # the next process (mtime may not change within a clock tick)
    assert download.resolve_weights(entry, progress=False).read_bytes() == checkpoint.data
    assert served.full_gets(checkpoint.file) == 2
    assert _listing(cache) == [checkpoint.file]


def test_corrupted_cache_offline_is_not_used(cache, checkpoint, monkeypatch):
    entry = checkpoint.entry(refused_url(checkpoint.file))
    cache.mkdir(parents=True)
    (cache / checkpoint.file).write_bytes(checkpoint.data[:1000])
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    assert "corrupt" in str(info.value)


def test_local_weights_dir_stands_in(cache, checkpoint, monkeypatch, tmp_path, no_network):
    folder = tmp_path / "mine"
    folder.mkdir()
    entry = checkpoint.entry(refused_url(checkpoint.file))
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_DIR", os.pathsep.join([str(tmp_path / "nothing"), str(folder)]))
    (folder / checkpoint.file).write_bytes(checkpoint.data)
    assert download.resolve_weights(entry) == folder / checkpoint.file
    assert download.weights_status(entry) == "local"
    (folder / checkpoint.file).write_bytes(checkpoint.data + b"!")
    with pytest.raises(ChecksumError) as info:
        download.resolve_weights(entry)
    assert "PPOCR_TORCH_WEIGHTS_DIR" in str(info.value)

    # a model the registry has no checkpoint for: a file the user converted stands in for it
    (folder / checkpoint.file).unlink()
    unconverted = dataclasses.replace(entry, weights=None)
    use_registry(monkeypatch, unconverted)
    assert download.weights_status(unconverted) == "unavailable"
    (folder / f"{MODEL}-myconv.pth").write_bytes(checkpoint.data)
    assert download.weights_status(unconverted) == "local"
    from ppocr_torch.api import load_model

    assert state_digest(load_model(MODEL)) == checkpoint.digest
    assert no_network == [] and _listing(cache) == []


def test_no_converted_checkpoint(checkpoint, monkeypatch):
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_DIR", raising=False)
    entry = dataclasses.replace(checkpoint.entry(), weights=None)
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    assert f"python -m conversion convert {MODEL}" in str(info.value)
    assert download.weights_status(entry) == "unavailable"


class _CodeOnLoad:
    """Unpickling this runs code (what a malicious checkpoint does): it writes a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def test_checkpoint_with_pickled_code_is_refused(cache, checkpoint, monkeypatch, tmp_path):
    import io

    import torch

    from ppocr_torch.api import load_model

    marker = tmp_path / "code_ran"
    payload = torch.load(checkpoint.path, map_location="cpu", weights_only=True)
    payload["meta"] = {"hook": _CodeOnLoad(str(marker))}
    buf = io.BytesIO()
    torch.save(payload, buf)
    evil = buf.getvalue()
    evil_sha = hashlib.sha256(evil).hexdigest()
    file = f"{MODEL}-{evil_sha[:8]}.pth"
    with WeightsServer({file: evil}) as srv:
        entry = dataclasses.replace(checkpoint.entry(), weights=WeightsInfo(
            file=file, sha256=evil_sha, size=len(evil), url=srv.url + file))
        use_registry(monkeypatch, entry)
        with pytest.raises(CheckpointError) as info:
            load_model(MODEL)  # downloads it (the hash is right), then refuses to unpickle it
    assert "refused" in str(info.value)
    assert not marker.exists(), "the pickled code must not run"
    with pytest.raises(CheckpointError):
        load_model(cache / file)
    assert not marker.exists()
    # the file really is dangerous: a plain (unsafe) torch.load runs its code
    torch.load(cache / file, map_location="cpu", weights_only=False)
    assert marker.read_text() == "code ran"


def test_progress_bar_only_on_request_or_tty(served, cache, checkpoint, capsys):
    entry = checkpoint.entry(served.url + checkpoint.file)
    download.resolve_weights(entry)  # stderr is not a terminal under pytest: quiet
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    (cache / checkpoint.file).unlink()
    download.resolve_weights(entry, progress=True)
    captured = capsys.readouterr()
    assert checkpoint.file in captured.err and captured.out == ""


def test_embedded_default_model_is_in_package(no_network):
    entry = get_entry("PP-OCRv6_small_rec")
    if entry.weights is None or not entry.weights.embedded:
        pytest.fail("the default model must have embedded weights in the registry")
    path = download.resolve_weights(entry, download=False)
    assert path.is_file()
    assert path.parent.name == "weights" and path.parent.parent.name == "ppocr_torch"
    assert path.stat().st_size == entry.weights.size
    from ppocr_torch.files import sha256_file

    assert sha256_file(path) == entry.weights.sha256
    assert download.weights_status(entry) == "embedded"


def test_embedded_missing_file_is_reported(checkpoint):
    entry = dataclasses.replace(checkpoint.entry(), weights=WeightsInfo(
        file="does-not-exist.pth", sha256=checkpoint.sha256, size=1, embedded=True))
    with pytest.raises(WeightsNotCachedError) as info:
        download.resolve_weights(entry)
    assert "does-not-exist.pth" in str(info.value)


def test_cache_files_lists_only_ours(cache, checkpoint):
    entry = checkpoint.entry()
    cache.mkdir(parents=True)
    (cache / checkpoint.file).write_bytes(b"x" * 10)
    (cache / f"{MODEL}-0123abcd.pth").write_bytes(b"y" * 5)  # an older version
    (cache / "resnet18-f37072fd.pth").write_bytes(b"z")  # another torch.hub model: not ours
    files = {f["path"].name: (f["model"], f["state"], f["size"]) for f in download.cache_files([entry])}
    assert files == {checkpoint.file: (MODEL, "current", 10), f"{MODEL}-0123abcd.pth": (MODEL, "old", 5)}
    removed, skipped = download.clear_cache([entry])
    assert len(removed) == 2 and skipped == []
    assert _listing(cache) == ["resnet18-f37072fd.pth"]


# -- hostile servers: bounded size, rate and time -------------------------------------------------------


def test_endless_body_stops_at_the_registry_size(served, cache, checkpoint):
    """A mirror answering 200 with no Content-Length and an endless body: the transfer stops once it
    exceeds the registry's size, and the oversized partial file is deleted (never resumed)."""
    served.no_length = True
    served.endless = True
    url = served.url + checkpoint.file
    started = time.monotonic()
    with pytest.raises(ChecksumError) as info:
        download.resolve_weights(checkpoint.entry(url), progress=False)
    assert time.monotonic() - started < 20
    msg = str(info.value)
    assert url in msg and f"more than the {len(checkpoint.data)} bytes" in msg
    received = int(re.search(r"\((\d+) bytes received\)", msg).group(1))
    assert len(checkpoint.data) < received <= len(checkpoint.data) + transport._CHUNK
    assert _listing(cache) == [], "neither the target, nor the oversized .part, nor the lock may remain"
    assert len(served.log) == 1, "a file that is too long is not retried from the same URL"
    # the server was not read to its end: the client hung up long before ENDLESS_MAX
    assert served.log[0]["sent"] < served.ENDLESS_MAX // 2


def test_endless_body_of_unknown_size_hits_the_hard_cap(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(transport, "MAX_DOWNLOAD_BYTES", 1 << 20)
    target = tmp_path / "official" / "rec_infer.tar"
    with WeightsServer({"rec_infer.tar": b"tar" * 1000}) as srv:
        srv.no_length = True
        srv.endless = True
        url = srv.url + "rec_infer.tar"
        with pytest.raises(DownloadError) as info:
            download.fetch_url(url, target, progress=False)  # official archives: no size known
        assert url in str(info.value) and f"more than {1 << 20} bytes" in str(info.value)
        assert not isinstance(info.value, ChecksumError)
        assert _listing(target.parent) == [], "the capped .part is deleted, nothing is left at the target"
        assert len(srv.log) == 1
        # a server announcing more than the cap is refused before its body is read
        srv.no_length = srv.endless = False
        srv.files["big.tar"] = bytes((1 << 20) + 1)
        with pytest.raises(DownloadError) as info:
            download.fetch_url(srv.url + "big.tar", tmp_path / "official" / "big.tar", progress=False)
        assert f"announces {(1 << 20) + 1} bytes" in str(info.value)
        assert _listing(target.parent) == []
        # within the cap a file of unknown size is fetched as before
        srv.files["small.tar"] = b"y" * 5000
        assert download.fetch_url(srv.url + "small.tar", tmp_path / "official" / "small.tar",
                                  progress=False).read_bytes() == b"y" * 5000


@pytest.fixture()
def fast_limits(monkeypatch):
    """Rate floor 8 KiB per 0.5 s (a local transfer brings megabytes in that time)."""
    monkeypatch.setattr(transport, "MIN_RATE_BYTES", 8 << 10)
    monkeypatch.setattr(transport, "MIN_RATE_WINDOW", 0.5)


def test_trickling_server_is_abandoned_and_resumed_later(served, cache, checkpoint, fast_limits):
    """1 byte per 50 ms never trips the per-read timeout; the rate floor stops it within about a window."""
    kept = 300_000
    served.trickle, served.trickle_after = 0.05, kept
    url = served.url + checkpoint.file
    entry = checkpoint.entry(url)
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(entry, progress=False)
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"the trickle held the download for {elapsed:.1f} s"
    msg = str(info.value)
    assert url in msg and "too slow" in msg and "B/s" in msg and f"minimum of {8 << 10} bytes per 0.5 s" in msg
    assert len(served.log) == 1, "a too slow transfer is not retried from the same URL"
    part = cache / (checkpoint.file + ".part")
    assert _listing(cache) == [part.name], "the partial file is kept for resuming, the target is not there"
    size = part.stat().st_size
    assert kept <= size < kept + 100 and part.read_bytes() == checkpoint.data[:size]
    served.trickle = None  # the server recovers: the next call resumes where the trickle stopped
    assert download.resolve_weights(entry, progress=False).read_bytes() == checkpoint.data
    assert served.log[-1]["range"] == f"bytes={size}-" and served.log[-1]["status"] == 206
    assert _listing(cache) == [checkpoint.file]


def test_slow_transfer_past_its_deadline_is_abandoned(served, cache, checkpoint, monkeypatch):
    """Above the rate floor but slower than the deadline allows (here: 0.3 s for the whole file)."""
    monkeypatch.setattr(transport, "MIN_RATE_BYTES", 1)
    monkeypatch.setattr(transport, "DEADLINE_BASE", 0.3)
    monkeypatch.setattr(transport, "DEADLINE_RATE", 1 << 40)
    served.delay = 0.02  # about 3 MB/s: the file needs longer than 0.3 s
    url = served.url + checkpoint.file
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download.resolve_weights(checkpoint.entry(url), progress=False)
    assert time.monotonic() - started < 3
    msg = str(info.value)
    assert url in msg and "past the 0.3 s allowed" in msg and "B/s" in msg
    part = cache / (checkpoint.file + ".part")
    assert _listing(cache) == [part.name]
    assert 0 < part.stat().st_size < len(checkpoint.data)
    assert part.read_bytes() == checkpoint.data[:part.stat().st_size]


def test_pace_measures_a_sliding_window(monkeypatch):
    """A pause shorter than the read timeout followed by a burst is fine; a window with too little fails."""
    now = [100.0]
    monkeypatch.setattr(transport.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(transport, "MIN_RATE_BYTES", 1000)
    monkeypatch.setattr(transport, "MIN_RATE_WINDOW", 10.0)
    pace = transport._Pace("http://127.0.0.1/x", None)
    received = 0
    for _ in range(30):  # 200 bytes per second: 2000 per window
        now[0] += 1
        received += 200
        pace.check(200, received)
    now[0] += 9  # a pause, then a burst: 5000 bytes in the last 10 s
    pace.check(5000, received + 5000)
    for _ in range(9):  # 50 bytes per second: the burst keeps the window above 1000 bytes...
        now[0] += 1
        pace.check(50, received)
    with pytest.raises(DownloadError) as info:
        for _ in range(3):  # ...until it slides out of the window
            now[0] += 1
            pace.check(50, received)
    assert "too slow" in str(info.value) and "per 10 s" in str(info.value)


# -- the lock: waiters give up on a holder without progress; a dead holder's lock is free -----------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="fcntl.flock")


def _hold_flock(path: Path) -> int:
    """Lock ``path`` through a file description of its own: to FileLock that is another process's lock."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@posix_only
def test_lock_waiter_gives_up_on_a_holder_without_progress(tmp_path):
    from ppocr_torch import filelock

    path = tmp_path / "w.pth.lock"
    fd = _hold_flock(path)
    try:
        started = time.monotonic()
        with pytest.raises(DownloadError) as info:
            with filelock.FileLock(path, label="w.pth", progress=False, timeout=0.4):
                pass
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert 0.4 <= waited < 2
    msg = str(info.value)
    assert repr(str(path)) in msg and "no progress for 0.4 s" in msg and "delete" in msg and "w.pth" in msg

    # a holder that shows progress (touches its lock file) is waited for beyond the timeout
    fd = _hold_flock(path)
    released = threading.Event()

    def holder():
        for _ in range(15):
            time.sleep(0.1)
            os.utime(path)
        os.close(fd)  # releases the lock
        released.set()

    t = threading.Thread(target=holder)
    started = time.monotonic()
    t.start()
    try:
        with filelock.FileLock(path, label="w.pth", progress=False, timeout=0.8):
            waited = time.monotonic() - started
            assert released.is_set(), "acquired only when the holder released it"
    finally:
        t.join(5)
    assert waited >= 1.4
    assert not path.exists(), "the lock file is removed on release"


def test_lock_waiter_thread_gives_up_and_heartbeat_keeps_it_waiting(tmp_path, monkeypatch):
    """The same between threads of one process; filelock.heartbeat() is the holder's sign of progress."""
    from ppocr_torch import filelock

    monkeypatch.setattr(filelock, "HEARTBEAT_INTERVAL", 0.05)
    path = tmp_path / "t.pth.lock"
    holding, release, beat = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with filelock.FileLock(path, label="t.pth", progress=False):
            holding.set()
            while not release.wait(0.05):
                if beat.is_set():
                    filelock.heartbeat()

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert holding.wait(10)
        with pytest.raises(DownloadError) as info:
            with filelock.FileLock(path, label="t.pth", progress=False, timeout=0.3):
                pass
        assert repr(str(path)) in str(info.value)
        beat.set()
        timer = threading.Timer(1.0, release.set)
        timer.start()
        started = time.monotonic()
        with filelock.FileLock(path, label="t.pth", progress=False, timeout=0.6):
            assert release.is_set() and time.monotonic() - started >= 0.9
        timer.join(5)
    finally:
        release.set()
        t.join(10)


@posix_only
def test_lock_left_by_a_killed_process_does_not_block(tmp_path):
    from ppocr_torch import filelock

    path = tmp_path / "k.pth.lock"
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(DownloadError):  # held by a live process
            with filelock.FileLock(path, label="k.pth", progress=False, timeout=0):
                pass
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert path.exists(), "the killed process left its lock file behind"
    started = time.monotonic()
    with filelock.FileLock(path, label="k.pth", progress=False, timeout=5):
        assert time.monotonic() - started < 1, "a dead process's lock is free at once"
    assert not path.exists()


@posix_only
def test_download_waiting_for_a_stuck_holder_is_a_download_error(served, cache, checkpoint, monkeypatch, capsys):
    from ppocr_torch import filelock
    from ppocr_torch.cli import main

    monkeypatch.setattr(filelock, "LOCK_TIMEOUT", 0.3)
    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry)
    cache.mkdir(parents=True)
    lock = cache / (checkpoint.file + ".lock")
    fd = _hold_flock(lock)
    try:
        with pytest.raises(DownloadError) as info:
            download.resolve_weights(entry, progress=False)
        assert repr(str(lock)) in str(info.value) and checkpoint.file in str(info.value)
        assert main(["download", "-q", MODEL]) == 2
        err = capsys.readouterr().err
        assert str(lock) in err and "Traceback" not in err
    finally:
        os.close(fd)
    assert served.log == [], "nothing is downloaded while another process holds the lock"
    assert download.resolve_weights(entry, progress=False).read_bytes() == checkpoint.data


# -- disk full, read-only cache: a typed error naming the file and the folder, exit code 2 ---------------


def _assert_cache_error(exc, path: Path, code: int) -> None:
    from ppocr_torch.errors import CacheError, PPOCRTorchError

    assert isinstance(exc, CacheError) and isinstance(exc, OSError) and isinstance(exc, PPOCRTorchError)
    assert exc.errno == code and exc.path == str(path)
    msg = str(exc)
    assert repr(str(path)) in msg and repr(str(path.parent)) in msg, msg
    assert "PPOCR_TORCH_HOME" in msg


def test_disk_full_while_writing_is_a_cache_error(served, cache, checkpoint, monkeypatch, capsys):
    import builtins
    import errno

    from ppocr_torch.cli import main

    room = 200_000  # bytes the disk takes before it is full

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            left = room - self.fh.tell()
            if len(data) > left:
                self.fh.write(data[:max(left, 0)])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def close(self):
            self.fh.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(transport, "open", lambda *a, **k: FullDisk(builtins.open(*a, **k)), raising=False)
    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry)
    part = cache / (checkpoint.file + ".part")
    with pytest.raises(OSError) as info:
        download.resolve_weights(entry, progress=False)
    _assert_cache_error(info.value, part, errno.ENOSPC)
    assert "No space left on device" in str(info.value) and "free space" in str(info.value)
    assert _listing(cache) == [part.name], "no target: only the resumable .part"
    assert part.read_bytes() == checkpoint.data[:room]
    assert len(served.log) == 1, "a full disk is not retried"

    rc = main(["download", "-q", MODEL])
    err = capsys.readouterr().err
    assert rc == 2 and str(part) in err and "No space left on device" in err and "Traceback" not in err
    assert not (cache / checkpoint.file).exists()

    monkeypatch.delattr(transport, "open")  # space freed: the next call resumes the .part
    assert download.resolve_weights(entry, progress=False).read_bytes() == checkpoint.data
    assert served.log[-1]["range"] == f"bytes={room}-"


def test_failed_rename_keeps_the_verified_part(served, cache, checkpoint, monkeypatch):
    import errno

    real_replace = os.replace
    target = cache / checkpoint.file

    def refuse(src, dst, *args, **kwargs):
        if Path(dst) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse)
    entry = checkpoint.entry(served.url + checkpoint.file)
    with pytest.raises(OSError) as info:
        download.resolve_weights(entry, progress=False)
    _assert_cache_error(info.value, target, errno.EACCES)
    assert "writable" in str(info.value) and checkpoint.file + ".part" in str(info.value)
    assert _listing(cache) == [checkpoint.file + ".part"]
    monkeypatch.setattr(os, "replace", real_replace)
    assert download.resolve_weights(entry, progress=False).read_bytes() == checkpoint.data
    assert len(served.log) == 1, "the complete, verified .part is renamed without downloading again"


def test_read_only_cache_lock_file_cannot_be_created(served, cache, checkpoint, monkeypatch, capsys):
    """Simulated read-only file system (root ignores permissions): creating the lock file fails."""
    import errno

    from ppocr_torch.cli import main

    real_open = os.open
    lock = cache / (checkpoint.file + ".lock")

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(cache)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    cache.mkdir(parents=True)
    monkeypatch.setattr(os, "open", read_only)
    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry)
    with pytest.raises(OSError) as info:
        download.resolve_weights(entry, progress=False)
    _assert_cache_error(info.value, lock, errno.EROFS)
    assert "make" in str(info.value) and "writable" in str(info.value)
    rc = main(["download", "-q", MODEL])
    err = capsys.readouterr().err
    assert rc == 2 and str(lock) in err and "Traceback" not in err
    assert served.log == [] and _listing(cache) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores permissions (the simulated tests above cover it)")
def test_read_only_cache_dir(served, cache, checkpoint, monkeypatch, capsys):
    import errno

    from ppocr_torch.cli import main

    cache.mkdir(parents=True)
    cache.chmod(0o500)
    try:
        entry = checkpoint.entry(served.url + checkpoint.file)
        use_registry(monkeypatch, entry)
        with pytest.raises(OSError) as info:
            download.resolve_weights(entry, progress=False)
        _assert_cache_error(info.value, cache / (checkpoint.file + ".lock"), errno.EACCES)
        assert main(["download", "-q", MODEL]) == 2
        err = capsys.readouterr().err
        assert str(cache) in err and "Traceback" not in err
        assert served.log == [] and _listing(cache) == []
    finally:
        cache.chmod(0o700)


def test_file_where_the_cache_folder_should_be(served, cache, checkpoint, monkeypatch, capsys):
    """$PPOCR_TORCH_HOME names a file: `download` and `recognize` say so and exit 2."""
    import errno

    from ppocr_torch.cli import main

    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(b"not a folder")
    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry)
    with pytest.raises(OSError) as info:
        download.resolve_weights(entry, progress=False)
    from ppocr_torch.errors import CacheError

    assert isinstance(info.value, CacheError) and info.value.errno == errno.EEXIST
    msg = str(info.value)
    assert repr(str(cache)) in msg and "a file stands where" in msg and "PPOCR_TORCH_HOME" in msg
    assert main(["download", "-q", MODEL]) == 2
    err = capsys.readouterr().err
    assert str(cache) in err and "Traceback" not in err
    assert main(["recognize", "--model", MODEL, str(ROOT / "samples" / "sample_line.png")]) == 2
    captured = capsys.readouterr()
    assert str(cache) in captured.err and "a file stands where" in captured.err and captured.out == ""
    assert cache.read_bytes() == b"not a folder" and served.log == []
