"""Finding a registry model's checkpoint on disk, downloading it into the cache when needed.

Where weights come from, in this order:

* **embedded**: shipped inside the package (``ppocr_torch/weights/``);
* **local**: a folder named by ``$PPOCR_TORCH_WEIGHTS_DIR`` (several folders: separated by ``os.pathsep``)
  holding the registry file ``<name>-<sha8>.pth`` (checked against the registry's sha256), or, for a
  model the registry has no checkpoint for yet, a file the user converted himself (``<name>.pth`` or
  ``<name>-*.pth``);
* **cached**: ``cache_dir()/<file>``, where :func:`cache_dir` is ``$PPOCR_TORCH_HOME`` or, by default,
  ``<torch hub dir>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, where ``torch.hub`` downloads to);
* **download**: fetched from the mirrors of ``$PPOCR_TORCH_WEIGHTS_URL`` (a comma-separated list of base
  URLs, tried in order), else from the entry's explicit ``url``, else from :data:`DEFAULT_WEIGHTS_BASE_URL`.

Downloads stream into ``<cache>/<file>.part``; an interrupted transfer is resumed with an HTTP ``Range``
request (a server that ignores ``Range`` restarts it from zero), connection errors and 5xx answers are
retried with exponential backoff (4xx answers are not), and the file is checked against the registry's
sha256 before it is renamed onto its final name, so a file under the final name is always complete and
verified. A lock file ``<cache>/<file>.lock`` (``fcntl.flock``) makes concurrent processes download a file
once: the others wait and then use it. A cached file whose hash no longer matches is fetched again.

``PPOCR_TORCH_OFFLINE=1`` (or ``download=False``) never touches the network: a missing file raises
:class:`~ppocr_torch.errors.WeightsNotCachedError` naming the file, its URL and the command that fetches it.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import ChecksumError, DownloadError, WeightsNotCachedError

__all__ = [
    "DEFAULT_WEIGHTS_BASE_URL",
    "cache_dir",
    "weights_base_url",
    "weights_base_urls",
    "weights_dirs",
    "is_offline",
    "weights_url",
    "weights_urls",
    "weights_status",
    "local_weights",
    "resolve_weights",
    "cache_files",
    "clear_cache",
]

DEFAULT_WEIGHTS_BASE_URL = "https://github.com/ppocr-torch/ppocr-torch/releases/download/weights-v1/"
"""Base URL of the converted checkpoints (a GitHub release); the file name is appended."""

ENV_HOME = "PPOCR_TORCH_HOME"
ENV_URL = "PPOCR_TORCH_WEIGHTS_URL"
ENV_DIR = "PPOCR_TORCH_WEIGHTS_DIR"
ENV_OFFLINE = "PPOCR_TORCH_OFFLINE"

_TIMEOUT = (15, 60)  # (connect, read) seconds per request
_CHUNK = 1 << 16
_RETRIES = 4  # extra attempts per URL after a connection error, a cut transfer or a 5xx answer
_BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
_BACKOFF_MAX = 30.0
_LOCK_TIMEOUT = 3600.0  # seconds to wait for another process's download of the same file
_LOCK_POLL = 0.1
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
_TRUE = ("1", "true", "yes", "on")
_sleep = time.sleep  # between retries (replaceable in tests)

# (path, size, mtime_ns, sha256) of files verified in this process, so that repeated loads of the same
# cached file do not hash it again.
_verified: set[tuple[str, int, int, str]] = set()
_verified_lock = threading.Lock()
# In-process lock per target: flock is per open file description, so threads of one process need their own.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


# -- configuration --------------------------------------------------------------------------------------


def _torch_hub_dir() -> Path:
    """``torch.hub.get_dir()``, without importing torch when it is not imported yet.

    Before torch is imported nobody can have called ``torch.hub.set_dir``, so the directory follows from
    the environment exactly as torch computes it: ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir())
    default = os.path.join(os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache")), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default))) / "hub"


def cache_dir() -> Path:
    """Directory of downloaded checkpoints: ``$PPOCR_TORCH_HOME`` or ``<torch hub dir>/checkpoints``."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(os.path.expanduser(home))
    return _torch_hub_dir() / "checkpoints"


def weights_base_urls() -> list[str]:
    """Base URLs to download from, in order: the comma-separated ``$PPOCR_TORCH_WEIGHTS_URL`` or
    ``[DEFAULT_WEIGHTS_BASE_URL]``; each ends with ``/``."""
    raw = os.environ.get(ENV_URL, "")
    urls = [u.strip() for u in raw.split(",") if u.strip()] or [DEFAULT_WEIGHTS_BASE_URL]
    return [u if u.endswith("/") else u + "/" for u in urls]


def weights_base_url() -> str:
    """The first of :func:`weights_base_urls`."""
    return weights_base_urls()[0]


def weights_dirs() -> list[Path]:
    """Folders of ``$PPOCR_TORCH_WEIGHTS_DIR`` (``os.pathsep``-separated) whose files stand in for models."""
    raw = os.environ.get(ENV_DIR, "")
    return [Path(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p.strip()]


def is_offline() -> bool:
    """Whether ``$PPOCR_TORCH_OFFLINE`` forbids downloads (``1``, ``true``, ``yes`` or ``on``, any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in _TRUE


def weights_urls(entry) -> list[str]:
    """URLs of ``entry``'s checkpoint, in the order they are tried.

    With ``$PPOCR_TORCH_WEIGHTS_URL`` set: each of its base URLs + file name, then the entry's explicit
    ``url`` if it has one. Otherwise: the entry's explicit ``url``, else the default base URL + file name.
    """
    w = _require_weights(entry)
    if os.environ.get(ENV_URL, "").strip():
        urls = [base + w.file for base in weights_base_urls()]
        if w.url and w.url not in urls:
            urls.append(w.url)
        return urls
    return [w.url or DEFAULT_WEIGHTS_BASE_URL + w.file]


def weights_url(entry) -> str:
    """The first URL :func:`weights_urls` tries for ``entry``."""
    return weights_urls(entry)[0]


# -- lookup ---------------------------------------------------------------------------------------------


def local_weights(entry) -> Path | None:
    """The file standing in for ``entry`` in a ``$PPOCR_TORCH_WEIGHTS_DIR`` folder, or None.

    For a model with registry weights this is the registry's file name; for a model without, a file named
    ``<name>.pth`` or ``<name>-<anything>.pth`` (exactly one such file per folder).
    """
    for folder in weights_dirs():
        if entry.weights is not None:
            path = folder / entry.weights.file
            if path.is_file():
                return path
            continue
        path = folder / f"{entry.name}.pth"
        if path.is_file():
            return path
        try:
            found = sorted(p for p in folder.glob(f"{_glob_escape(entry.name)}-*.pth") if p.is_file())
        except OSError:
            found = []
        if len(found) > 1:
            raise WeightsNotCachedError(
                f"several checkpoints for model {entry.name!r} in {str(folder)!r} "
                f"({', '.join(p.name for p in found)}); keep one, or load one with load_model(path)"
            )
        if found:
            return found[0]
    return None


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def cache_path(entry) -> Path:
    """Where ``entry``'s checkpoint is cached: the registry's file name, or ``<name>-unverified.pth`` for a
    model the registry has no converted weights for (converted here from the official download)."""
    w = entry.weights
    return cache_dir() / (w.file if w is not None else f"{entry.name}-unverified.pth")


def weights_status(entry) -> str:
    """Where ``entry``'s weights would come from, without hashing or fetching anything.

    ``"embedded"``, ``"local"`` (in ``$PPOCR_TORCH_WEIGHTS_DIR``), ``"cached"``, ``"release"`` (the project's
    release mirrors, then the official download converted here), ``"official"`` (the official download
    converted here: the registry has no converted weights) or ``"unavailable"``.
    """
    w = entry.weights
    if w is not None and w.embedded:
        return "embedded"
    try:
        if local_weights(entry) is not None:
            return "local"
    except WeightsNotCachedError:
        pass
    try:
        if cache_path(entry).is_file():
            return "cached"
    except OSError:
        pass
    from .official import official_urls

    if w is not None:
        return "release"
    return "official" if official_urls(entry) else "unavailable"


def is_verified(entry) -> bool:
    """Whether the registry records the content digest of ``entry``'s weights (so that a checkpoint from any
    source, the official download converted here included, is checked against it)."""
    return entry.weights is not None and bool(entry.weights.digest)


def resolve_weights(entry, *, download: bool = True, progress: bool | None = None) -> Path:
    """Return the local path of ``entry``'s verified checkpoint, fetching it if needed.

    Tried in this order, each only when the one before has nothing: the package's embedded file;
    ``$PPOCR_TORCH_WEIGHTS_DIR``; the cache; the project's release mirrors (``$PPOCR_TORCH_WEIGHTS_URL``, else
    the default release); PaddleOCR's official download (``$PPOCR_TORCH_OFFICIAL_MIRROR`` first), converted
    here and cached under the registry's file name. A file from the release must have the registry's sha256;
    one converted here, the registry's content digest (models without one are cached marked unverified).

    Args:
        entry: a :class:`~ppocr_torch.registry.ModelEntry`.
        download: allow fetching a checkpoint that is not cached (also refused when :func:`is_offline`).
        progress: ``None`` (default): tqdm bars on stderr when stderr is a terminal; ``False``: never;
            ``True``: always.

    Raises:
        WeightsNotCachedError: not cached and fetching is disabled; the message says how to get it.
        ChecksumError: a file has the wrong sha256, or the official download converts to other weights than
            the registry's digest (nothing is cached).
        DownloadError: neither the release nor the official download could be fetched.
        SourceFormatError, ConversionError: the official download is not the export the registry describes.
    """
    w = entry.weights
    if w is not None and w.embedded:
        return _embedded_path(entry)
    local = local_weights(entry)
    if local is not None:
        if w is not None and not _matches(local, w.sha256) and not _matches_digest(local, w.digest):
            raise ChecksumError(
                f"{str(local)!r} (from ${ENV_DIR}) does not have the sha256 the registry lists for model "
                f"{entry.name!r} ({w.sha256}); replace it with the file from {weights_url(entry)}, or load "
                "your own file explicitly with load_model(path)"
            )
        return local
    target = cache_path(entry)
    if _cached_ok(target, w):
        return target
    if w is None:
        from .official import official_urls

        if not official_urls(entry):
            _require_weights(entry)  # raises: nothing converted, nothing to convert from
    if not download or is_offline():
        raise _not_cached_error(entry, target, offline=is_offline())
    with _FileLock(target.with_name(target.name + ".lock"), label=target.name, progress=progress):
        if _cached_ok(target, w):  # another process fetched it while we waited
            return target
        _unlink(target)  # corrupt or stale: fetch it again
        return _fetch_weights(entry, target, progress)


def _fetch_weights(entry, target: Path, progress: bool | None) -> Path:
    """The release mirrors, then the official download converted here (call with the lock held)."""
    from .official import build_from_official, official_urls

    release_error = None
    w = entry.weights
    if w is not None:
        try:
            _download(weights_urls(entry), target, sha256=w.sha256, size=w.size, progress=progress)
            return target
        except (DownloadError, ChecksumError) as exc:
            if not official_urls(entry):
                raise
            release_error = exc
    try:
        return build_from_official(entry, target, progress=progress)
    except DownloadError as exc:
        if release_error is None:
            raise
        raise DownloadError(f"cannot get the weights of model {entry.name!r}: from the release: {release_error}; "
                            f"from the official download: {exc}") from exc


def _cached_ok(target: Path, w) -> bool:
    """A cached checkpoint is good when it has the registry's sha256 (the release file) or its content digest
    (converted here); a model without registry weights accepts its cached conversion as it is."""
    try:
        if not target.is_file():
            return False
        if w is None:
            return True
        return _matches(target, w.sha256) or _matches_digest(target, w.digest)
    except FileNotFoundError:  # replaced or removed by another process meanwhile
        return False


def _matches_digest(path: Path, digest: str | None) -> bool:
    """Whether the checkpoint at ``path`` holds weights with content digest ``digest`` (memoised)."""
    if not digest:
        return False
    from .checkpoint import checkpoint_digest
    from .errors import CheckpointError

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, "digest:" + digest)
    with _verified_lock:
        if key in _verified:
            return True
    try:
        if checkpoint_digest(path) != digest:
            return False
    except CheckpointError:
        return False
    with _verified_lock:
        _verified.add(key)
    return True


def fetch_url(url: str, target: Path, *, sha256: str | None = None, progress: bool | None = None) -> Path:
    """Download ``url`` to ``target`` once (lock, resume, retries as for weights) and return ``target``.

    With ``sha256`` the file must have it (a cached file that does not is fetched again); without, the first
    complete transfer is kept: the caller records the hash it reports (the conversion tool does, for official
    release files whose hash nobody has published)."""
    target = Path(target)
    if target.is_file() and (sha256 is None or _matches(target, sha256)):
        return target
    if is_offline():
        raise DownloadError(f"cannot download {url}: offline mode (${ENV_OFFLINE}) is on")
    with _FileLock(target.with_name(target.name + ".lock"), label=target.name, progress=progress):
        if target.is_file() and (sha256 is None or _matches(target, sha256)):
            return target
        _unlink(target)
        _download([url], target, sha256=sha256, size=None, progress=progress)
    return target


def _valid(target: Path, sha256: str) -> bool:
    try:
        return target.is_file() and _matches(target, sha256)
    except FileNotFoundError:  # replaced or removed by another process meanwhile
        return False


def _not_cached_error(entry, target: Path, *, offline: bool) -> WeightsNotCachedError:
    from .official import official_urls

    why = f"offline mode (${ENV_OFFLINE})" if offline else "download=False"
    state = "is corrupt (it has neither the registry's sha256 nor its digest)" if target.is_file() else "is not there"
    where = weights_urls(entry)[0] if entry.weights is not None else (official_urls(entry) or ["(none)"])[0]
    return WeightsNotCachedError(
        f"weights of model {entry.name!r}: file {target.name} {state} in the cache directory "
        f"{str(target.parent)!r}, and downloading is disabled ({why}). Fetch it with "
        f"`ppocr-torch download {entry.name}` on a machine with network access (same cache directory), "
        f"or put the checkpoint from {where} into a folder named by ${ENV_DIR}"
    )


def _require_weights(entry):
    """``entry.weights``, or WeightsNotCachedError when the model has no converted checkpoint."""
    if entry.weights is None:
        raise WeightsNotCachedError(
            f"model {entry.name!r} has no converted checkpoint yet; convert it from the official "
            f"weights with `python -m conversion convert {entry.name} --out DIR`, then set "
            f"{ENV_DIR}=DIR (or load the file with load_model(path)); load_model({entry.name!r}, "
            "pretrained=False) builds it with random weights"
        )
    return entry.weights


def _embedded_path(entry) -> Path:
    """Path of a checkpoint shipped in ``ppocr_torch/weights/`` (copied to the cache if zipped)."""
    from importlib import resources

    w = entry.weights
    res = resources.files("ppocr_torch").joinpath("weights", w.file)
    if isinstance(res, Path):
        if not res.is_file():
            raise WeightsNotCachedError(
                f"embedded weights of model {entry.name!r} are missing from the package: {str(res)!r} "
                "does not exist; reinstall ppocr_torch"
            )
        size = res.stat().st_size
        if w.size and size != w.size:
            raise ChecksumError(
                f"embedded weights {str(res)!r} of model {entry.name!r} have {size} bytes, expected "
                f"{w.size}; the installation is damaged, reinstall ppocr_torch"
            )
        return res
    # The package is not on the file system (e.g. imported from a zip): copy the file to the cache.
    target = cache_dir() / w.file
    if _valid(target, w.sha256):
        return target
    if not res.is_file():
        raise WeightsNotCachedError(
            f"embedded weights {w.file} of model {entry.name!r} are missing from the package; "
            "reinstall ppocr_torch"
        )
    _write_verified(target, w.sha256, lambda fh: fh.write(res.read_bytes()), source="package data")
    return target


def _matches(path: Path, sha256: str) -> bool:
    """Whether ``path`` hashes to ``sha256`` (memoised per path, size and mtime in this process)."""
    from .files import sha256_file

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, sha256.lower())
    with _verified_lock:
        if key in _verified:
            return True
    if sha256_file(path).lower() != sha256.lower():
        return False
    with _verified_lock:
        _verified.add(key)
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _write_verified(target: Path, sha256: str, write, *, source: str) -> None:
    """Call ``write(fh)`` on a temp file next to ``target``, check its sha256, rename it onto ``target``.

    The temp file is removed on any failure (checksum, I/O, interrupt).
    """
    from .files import sha256_file

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        actual = sha256_file(tmp)
        if actual.lower() != sha256.lower():
            raise ChecksumError(
                f"{target.name} from {source} has sha256 {actual}, expected {sha256}; the file was "
                "discarded (corrupt transfer or wrong file at that URL)"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cached weights are ordinary readable files
        os.replace(tmp, target)
    except BaseException:
        _unlink(Path(tmp))
        raise


# -- cross-process lock ---------------------------------------------------------------------------------


class _FileLock:
    """Exclusive lock on ``path`` across processes (``fcntl.flock``) and threads.

    The lock file is removed on release. A waiter that acquired the lock on a file that was removed (or
    replaced) meanwhile notices it (inode check) and locks the current file instead, so at most one
    holder exists at any time and no lock file is left behind.
    """

    def __init__(self, path: Path, *, label: str, progress: bool | None, timeout: float | None = None):
        self.path = path
        self.label = label
        self.progress = progress
        self.timeout = _LOCK_TIMEOUT if timeout is None else timeout
        self._fd: int | None = None
        with _thread_locks_guard:
            self._tlock = _thread_locks.setdefault(str(path), threading.Lock())

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        if not self._tlock.acquire(timeout=max(self.timeout, 0)):
            raise DownloadError(self._timeout_message())
        try:
            self._acquire_file(deadline)
        except BaseException:
            self._tlock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self._fd is not None:
                _unlink(self.path)  # while still holding it (see the class docstring)
                _unlock(self._fd)
                os.close(self._fd)
                self._fd = None
        finally:
            self._tlock.release()

    def _timeout_message(self) -> str:
        return (f"timed out after {self.timeout:.0f} s waiting for another process downloading "
                f"{self.label} (lock file {str(self.path)!r})")

    def _acquire_file(self, deadline: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                while not _try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise DownloadError(self._timeout_message())
                    if not told and _show_progress(self.progress):
                        print(f"waiting for another process downloading {self.label} ...", file=sys.stderr)
                        told = True
                    time.sleep(_LOCK_POLL)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                self._fd = fd
                return
            _unlock(fd)  # the file we locked was removed by its previous holder: lock the new one
            os.close(fd)


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


# -- HTTP -----------------------------------------------------------------------------------------------


class _Failure(DownloadError):
    """One URL failed; ``retry`` says whether trying it again may help."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.retry = retry


def _download(urls: list[str], target: Path, *, sha256: str | None, size: int | None,
              progress: bool | None) -> None:
    """Fetch ``target`` from the first of ``urls`` that serves the right file (call with the lock held).

    The transfer goes to ``<target>.part`` (kept after a connection failure, for resuming); once the
    sha256 matches, the part file is renamed onto ``target``. A file with the wrong hash is deleted.
    """
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
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
                from .files import sha256_file

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
    from .files import sha256_file

    if sha256 is not None and sha256_file(part).lower() != sha256.lower():
        return False
    os.chmod(part, 0o644)
    os.replace(part, target)
    return True


def _fetch(session, url: str, part: Path, *, size: int | None, progress: bool | None, label: str) -> bool:
    """Complete ``part`` from ``url``, resuming what it holds; retries with backoff. Returns whether the
    transfer resumed an existing partial file."""
    resumed_any = False
    attempt = 0
    while True:
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

    offset = part.stat().st_size if part.is_file() else 0
    if size and offset > size:  # cannot be a prefix of the file
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
        raise _Failure(f"cannot download {url}: {_reason(exc)}", retry=True) from exc
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
        received = start
        bar = _progress_bar(size or expected_end, label, start, progress)
        try:
            with open(part, mode) as fh:
                try:
                    for block in resp.iter_content(chunk_size=_CHUNK):
                        fh.write(block)
                        received += len(block)
                        if bar is not None:
                            bar.update(len(block))
                except (requests.RequestException, OSError) as exc:
                    if not isinstance(exc, (requests.RequestException, ConnectionError)):
                        raise  # disk full and the like: not the network's fault
                    raise _Failure(f"cannot download {url}: transfer cut after {received} bytes "
                                   f"({_reason(exc)})", retry=True) from exc
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


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_bar(total: int | None, label: str, initial: int, progress: bool | None):
    """A tqdm bar on stderr, or None when not wanted (``progress=False``, or stderr not a terminal)."""
    if not _show_progress(progress):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                file=sys.stderr, leave=False)


# -- cache inspection -----------------------------------------------------------------------------------


def cache_files(entries=None) -> list[dict]:
    """ppocr-torch's files in :func:`cache_dir` (other torch.hub checkpoints there are left out).

    Returns one dict per file: ``path``, ``size``, ``model`` (registry name), ``state``: ``"current"``
    (the registry's file for that model), ``"old"`` (another version of that model's checkpoint) or
    ``"partial"`` (an unfinished download, ``.part``).
    """
    if entries is None:
        from .registry import entries as _entries

        entries = _entries()
    by_file = {e.weights.file: e.name for e in entries if e.weights is not None}
    names = sorted((e.name for e in entries), key=len, reverse=True)
    folder = cache_dir()
    out = []
    try:
        children = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    for path in children:
        if not path.is_file():
            continue
        name, state = path.name, "current"
        if name.endswith(".part"):
            name, state = name[: -len(".part")], "partial"
        model = by_file.get(name)
        if model is None:
            if not name.endswith(".pth"):
                continue
            model = next((n for n in names if name.startswith(n + "-")), None)
            if model is None:
                continue
            if state == "current":
                state = "old"
        out.append({"path": path, "size": path.stat().st_size, "model": model, "state": state})
    return out


def clear_cache(entries=None) -> tuple[list[dict], list[dict]]:
    """Delete ppocr-torch's files (see :func:`cache_files`) from the cache; other files are kept.

    A file whose download is in progress in another process (its lock is held) is skipped. Returns
    ``(removed, skipped)``, lists of :func:`cache_files` dicts.
    """
    removed, skipped = [], []
    for f in cache_files(entries):
        path = f["path"]
        final = path.name[: -len(".part")] if path.name.endswith(".part") else path.name
        try:
            with _FileLock(path.with_name(final + ".lock"), label=final, progress=False, timeout=0):
                path.unlink()
        except DownloadError:  # locked: being downloaded right now
            skipped.append(f)
            continue
        except FileNotFoundError:
            continue
        removed.append(f)
    return removed, skipped
