"""The HTTP transport of downloads: one file from the first of several URLs into ``<target>.part``, resumed with
``Range`` after a cut, retried with backoff on connection errors and 5xx answers (never on 4xx), renamed onto
the target only when its sha256 matches. Callers hold the file's lock (``filelock.FileLock``).

Hostile or broken servers cost bounded memory, disk and time: a transfer stops as soon as it exceeds the
expected size (the registry's, else :data:`MAX_DOWNLOAD_BYTES`); it is abandoned when fewer than
:data:`MIN_RATE_BYTES` arrived in the last :data:`MIN_RATE_WINDOW` seconds (a trickle, which the per-read
timeout never trips) or when it runs past its deadline (:data:`DEADLINE_BASE` seconds plus the expected bytes
at :data:`DEADLINE_RATE`). A file system error (disk full, read-only cache) is a
:class:`~ppocr_torch.errors.CacheError` naming the file and its folder."""

from __future__ import annotations

import collections
import http.client
import os
import re
import time
from pathlib import Path

from .errors import ChecksumError, DownloadError, PPOCRTorchError
from .filelock import heartbeat
from .files import cache_error, sha256_file
from .progress import progress_bar, seconds

_TIMEOUT = (15, 60)  # (connect, read) seconds per request
_CHUNK = 1 << 16
_RETRIES = 4  # extra attempts per URL after a connection error, a cut transfer or a 5xx answer
_BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
_BACKOFF_MAX = 30.0
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
_sleep = time.sleep  # between retries (replaceable in tests)

MAX_DOWNLOAD_BYTES = 2 << 30
"""Hard cap on a file of unknown size (no registry size; official archives have none): a longer body is cut
off and deleted."""
MIN_RATE_BYTES = 16 << 10
MIN_RATE_WINDOW = 30.0
"""A transfer that brought fewer than MIN_RATE_BYTES bytes in the last MIN_RATE_WINDOW seconds is abandoned
(its partial file is kept for resuming); a server that sends nothing at all trips the read timeout first."""
DEADLINE_BASE = 60.0
DEADLINE_RATE = 32 << 10
"""One GET of N expected bytes (the registry's size or Content-Length) is abandoned after
DEADLINE_BASE + N / DEADLINE_RATE seconds (e.g. 316 s for 8 MiB); its partial file is kept for resuming."""


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class _Failure(DownloadError):
    """One URL failed; ``retry`` says whether trying it again may help."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.retry = retry


def download_file(urls: list[str], target: Path, *, sha256: str | None, size: int | None,
              progress: bool | None) -> None:
    """Fetch ``target`` from the first of ``urls`` that serves the right file (call with the lock held).

    The transfer goes to ``<target>.part`` (kept after a connection failure or a too slow transfer, for
    resuming); once the sha256 matches, the part file is renamed onto ``target``. A file with the wrong hash,
    or longer than ``size`` (or :data:`MAX_DOWNLOAD_BYTES` when ``size`` is None), is deleted. Raises
    DownloadError, ChecksumError, or CacheError when the file cannot be written (nothing is left at ``target``).
    """
    import requests

    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(exc, folder, "create the folder", folder=folder.parent) from exc
    part = target.with_name(target.name + ".part")
    failures: list[tuple[str, Exception]] = []
    with requests.Session() as session:
        for url in urls:
            try:
                resumed = _fetch(session, url, part, size=size, progress=progress, label=target.name)
                if _publish(part, target, sha256):
                    return
                if resumed:  # the earlier partial file may have been bad: try once more from zero
                    _unlink(part)
                    _fetch(session, url, part, size=size, progress=progress, label=target.name)
                    if _publish(part, target, sha256):
                        return
                actual = sha256_file(part) if part.is_file() else "?"
                _unlink(part)
                raise ChecksumError(
                    f"{target.name} from {url} has sha256 {actual}, expected {sha256}; the file was "
                    "discarded (corrupt transfer or wrong file at that URL)"
                )
            except ChecksumError as exc:
                _unlink(part)
                failures.append((url, exc))
            except DownloadError as exc:  # the part file is kept: the next URL or call resumes it
                failures.append((url, exc))
    if len(failures) == 1:
        url, exc = failures[0]
        if isinstance(exc, _Failure):
            raise DownloadError(str(exc)) from exc
        raise exc
    summary = "; ".join(f"{url}: {_strip_url(str(exc), url)}" for url, exc in failures)
    cls = ChecksumError if all(isinstance(e, ChecksumError) for _, e in failures) else DownloadError
    raise cls(f"cannot download {target.name} from any of {len(failures)} URLs: {summary}")


def _strip_url(message: str, url: str) -> str:
    for prefix in (f"cannot download {url}: ",):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _publish(part: Path, target: Path, sha256: str | None) -> bool:
    """Rename ``part`` onto ``target`` if its sha256 matches (any, when ``sha256`` is None); False (part
    kept) otherwise."""
    if sha256 is not None and sha256_file(part).lower() != sha256.lower():
        return False
    try:
        os.chmod(part, 0o644)
        os.replace(part, target)
    except OSError as exc:  # the verified part file stays: the next call renames it without downloading
        raise cache_error(exc, target, f"rename the finished download {part.name} onto") from exc
    return True


def _fetch(session, url: str, part: Path, *, size: int | None, progress: bool | None, label: str) -> bool:
    """Complete ``part`` from ``url``, resuming what it holds; retries with backoff. Returns whether the
    transfer resumed an existing partial file."""
    resumed_any = False
    attempt = 0
    while True:
        heartbeat()
        try:
            resumed_any |= _fetch_once(session, url, part, size=size, progress=progress, label=label)
            return resumed_any
        except _Failure as exc:
            if not exc.retry or attempt >= _RETRIES:
                if attempt:
                    raise _Failure(f"{exc} (after {attempt + 1} attempts)", retry=False) from exc
                raise
        attempt += 1
        _sleep(min(_BACKOFF * 2 ** (attempt - 1), _BACKOFF_MAX))


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _fetch_once(session, url: str, part: Path, *, size: int | None, progress: bool | None,
                label: str) -> bool:
    """One GET of ``url`` into ``part`` (with a Range header when ``part`` holds a prefix)."""
    import requests
    import urllib3.exceptions

    limit = size or MAX_DOWNLOAD_BYTES  # the most bytes ``part`` may ever hold
    offset = part.stat().st_size if part.is_file() else 0
    if offset > limit:  # cannot be a prefix of the file
        _unlink(part)
        offset = 0
    if size and offset == size:
        return True  # complete already (its hash decides)
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = session.get(url, stream=True, timeout=_TIMEOUT, headers=headers, allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout) as exc:
        # a host name that does not resolve will not resolve a few seconds later either: fail fast (the
        # next URL or mirror is tried at once); refused or reset connections and timeouts are retried
        unresolved = "NameResolutionError" in repr(exc) or "Name or service not known" in str(exc)
        raise _Failure(f"cannot download {url}: {_reason(exc)}", retry=not unresolved) from exc
    except requests.RequestException as exc:  # invalid URL, unsupported scheme, ...
        raise _Failure(f"cannot download {url}: {_reason(exc)}", retry=False) from exc
    with resp:
        status = resp.status_code
        if status == 416 and offset:  # the partial file does not fit the file there: start over
            _unlink(part)
            raise _Failure(f"cannot download {url}: the server refused to resume (HTTP 416)", retry=True)
        if status in _RETRY_STATUS:
            raise _Failure(f"cannot download {url}: HTTP {status} {resp.reason or ''}".rstrip(), retry=True)
        if status not in (200, 206):
            raise _Failure(f"cannot download {url}: HTTP {status} {resp.reason or ''}".rstrip(), retry=False)
        mode = "ab"
        start = offset
        if status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:  # not the range we asked for: start over
                _unlink(part)
                raise _Failure(f"cannot download {url}: unexpected Content-Range "
                               f"{resp.headers.get('Content-Range')!r}", retry=True)
        else:  # 200: the whole file (the server ignored Range, or we asked for all of it)
            mode, start = "wb", 0
        length = resp.headers.get("Content-Length")
        expected_end = start + int(length) if length and length.isdigit() else None
        if size and expected_end is not None and expected_end != size and status == 200:
            raise ChecksumError(f"{url} serves {expected_end} bytes, the registry expects {size}: "
                                f"not the file {label}; nothing was saved")
        if not size and expected_end is not None and expected_end > limit:
            raise _Failure(f"cannot download {url}: it announces {expected_end} bytes, more than the "
                           f"{limit} bytes allowed for a file of unknown size; nothing was saved", retry=False)
        end = size or expected_end  # where this transfer should end, when known
        pace = _Pace(url, end - start if end else None)
        received = start
        bar = progress_bar(size or expected_end, label, start, progress)
        try:
            with open(part, mode) as fh:
                blocks = _blocks(resp)
                while True:
                    try:
                        block = next(blocks, None)
                    except (requests.RequestException, OSError, http.client.HTTPException,
                            urllib3.exceptions.HTTPError) as exc:  # reading touches the network only
                        raise _Failure(f"cannot download {url}: transfer cut after {received} bytes "
                                       f"({_reason(exc)})", retry=True) from exc
                    if block is None:
                        break
                    if received + len(block) > limit:
                        fh.close()
                        _unlink(part)  # an oversized file is no prefix of the right one: never resume it
                        if size:
                            raise ChecksumError(
                                f"{url} sent more than the {size} bytes the registry expects for {label} "
                                f"({received + len(block)} bytes received): not the file; the partial "
                                "download was deleted")
                        raise _Failure(f"cannot download {url}: more than {limit} bytes (the limit for a file of "
                                       "unknown size); the transfer was stopped and the partial file deleted",
                                       retry=False)
                    fh.write(block)
                    received += len(block)
                    heartbeat()
                    if bar is not None:
                        bar.update(len(block))
                    pace.check(len(block), received)
        except OSError as exc:
            if isinstance(exc, PPOCRTorchError):
                raise
            raise cache_error(exc, part, "write") from exc  # disk full and the like: the part file is kept
        finally:
            if bar is not None:
                bar.close()
        if expected_end is not None and received < expected_end:
            raise _Failure(f"cannot download {url}: transfer cut after {received} of {expected_end} bytes",
                           retry=True)
        if size and received < size:
            raise _Failure(f"cannot download {url}: transfer cut after {received} of {size} bytes",
                           retry=True)
        return start > 0


def _blocks(resp):
    """The body of ``resp`` as it arrives: each block is what the socket had (``read1``), so that a slow
    server is measured at every byte, not once per 64 KiB. With an older urllib3 without ``read1``: whole
    64 KiB chunks (a trickle is then noticed only when a chunk completes; the read timeout still bounds a
    silent server)."""
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:
        yield from resp.iter_content(chunk_size=_CHUNK)
        return
    while True:
        block = read1(_CHUNK, decode_content=True)
        if not block:
            return
        yield block


class _Pace:
    """Abandons a transfer that is too slow: fewer than MIN_RATE_BYTES in the last MIN_RATE_WINDOW seconds,
    or past its deadline (DEADLINE_BASE + expected bytes / DEADLINE_RATE)."""

    def __init__(self, url: str, expected: int | None):
        self.url = url
        self.start = time.monotonic()
        self.window = MIN_RATE_WINDOW
        self.marks = collections.deque([(self.start, 0)])  # (time, bytes so far), about 8 per window
        self.total = 0
        self.limit = DEADLINE_BASE + expected / DEADLINE_RATE if expected else None

    def check(self, n: int, received: int) -> None:
        now = time.monotonic()
        self.total += n
        if now - self.marks[-1][0] >= self.window / 8:
            self.marks.append((now, self.total))
        while len(self.marks) > 1 and self.marks[1][0] <= now - self.window:
            self.marks.popleft()  # keep the newest mark at least one window old
        t0, n0 = self.marks[0]
        got, span, elapsed = self.total - n0, now - t0, now - self.start
        if span >= self.window and got < MIN_RATE_BYTES:
            raise _Failure(f"cannot download {self.url}: too slow, {got} bytes in the last {seconds(span)} s "
                           f"({got / span:.0f} B/s), below the minimum of {MIN_RATE_BYTES} bytes per "
                           f"{self.window:g} s; {_kept(received)}", retry=False)
        if self.limit is not None and elapsed > self.limit:
            raise _Failure(f"cannot download {self.url}: too slow, {self.total} bytes in {seconds(elapsed)} s "
                           f"({self.total / elapsed:.0f} B/s), past the {seconds(self.limit)} s allowed for this "
                           f"transfer (at least {DEADLINE_RATE} B/s on average); {_kept(received)}", retry=False)


def _kept(received: int) -> str:
    return f"stopped after {received} bytes (the partial file is kept and resumed by the next try)"


def _reason(exc: BaseException) -> str:
    """A short reason for a requests/urllib3 exception (e.g. ``[Errno 111] Connection refused``)."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if m:
        return m.group(0).strip()
    for marker in ("Read timed out", "Connection aborted", "Connection broken", "timed out"):
        if marker in text:
            return text[text.index(marker):].split("'")[0].split('"')[0].rstrip(".,( ") or marker
    return text or type(exc).__name__
