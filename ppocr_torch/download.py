"""Where a registry model's checkpoint comes from, fetched into the cache when needed.

In this order, each step only when the one before has nothing:

* **embedded**: shipped inside the package (``ppocr_torch/weights/``);
* **local**: a folder named by ``$PPOCR_TORCH_WEIGHTS_DIR`` (several folders: separated by ``os.pathsep``)
  holding the registry file ``<name>-<sha8>.pth`` (checked against the registry's sha256 or digest), or, for a
  model the registry has no checkpoint for yet, a file the user converted himself (``<name>.pth`` or
  ``<name>-*.pth``);
* **cached**: ``cache_dir()/<file>``, where :func:`cache_dir` is ``$PPOCR_TORCH_HOME`` or, by default,
  ``<torch hub dir>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, where ``torch.hub`` downloads to);
* **release**: the project's release files, from the mirrors of ``$PPOCR_TORCH_WEIGHTS_URL`` (a comma-separated
  list of base URLs, tried in order), else the entry's explicit ``url``, else :data:`DEFAULT_WEIGHTS_BASE_URL`;
* **official**: PaddleOCR's own download converted here (:mod:`ppocr_torch.official`).

The transfer itself (resume, retries, sha256 before the rename; size, rate and time limits) is
:mod:`ppocr_torch.transport`; a lock file ``<cache>/<file>.lock`` (:mod:`ppocr_torch.filelock`) makes concurrent
processes fetch a file once. A cache that cannot be written (disk full, read-only) raises
:class:`~ppocr_torch.errors.CacheError` naming the file and the folder.
``PPOCR_TORCH_OFFLINE=1`` (or ``download=False``) never touches the network: a missing file raises
:class:`~ppocr_torch.errors.WeightsNotCachedError` naming the file, its URL and the command that fetches it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from pathlib import Path

from .errors import ChecksumError, DownloadError, PPOCRTorchError, WeightsNotCachedError
from .filelock import FileLock
from .files import cache_error
from .transport import download_file

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

_TRUE = ("1", "true", "yes", "on")

# (path, size, mtime_ns, sha256) of files verified in this process, so that repeated loads of the same
# cached file do not hash it again.
_verified: set[tuple[str, int, int, str]] = set()
_verified_lock = threading.Lock()
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
        DownloadError: neither the release nor the official download could be fetched (or another process
            fetching the same file made no progress for ``filelock.LOCK_TIMEOUT`` seconds).
        CacheError: the cache cannot be written (disk full, read-only folder); the message names the file
            and the folder. Nothing is left at the target (a partial ``.part`` may be, for resuming).
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
    with FileLock(target.with_name(target.name + ".lock"), label=target.name, progress=progress):
        if _cached_ok(target, w):  # another process fetched it while we waited
            return target
        try:
            _unlink(target)  # corrupt or stale: fetch it again
        except OSError as exc:
            raise cache_error(exc, target, "replace the corrupt file") from exc
        return _fetch_weights(entry, target, progress)


def _fetch_weights(entry, target: Path, progress: bool | None) -> Path:
    """The release mirrors, then the official download converted here (call with the lock held)."""
    from .official import build_from_official, official_urls

    release_error = None
    w = entry.weights
    if w is not None:
        try:
            download_file(weights_urls(entry), target, sha256=w.sha256, size=w.size, progress=progress)
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
    with FileLock(target.with_name(target.name + ".lock"), label=target.name, progress=progress):
        if target.is_file() and (sha256 is None or _matches(target, sha256)):
            return target
        try:
            _unlink(target)
        except OSError as exc:
            raise cache_error(exc, target, "replace the stale file") from exc
        download_file([url], target, sha256=sha256, size=None, progress=progress)
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

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise cache_error(exc, target, "write") from exc
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
    except BaseException as exc:
        _unlink(Path(tmp))
        if isinstance(exc, OSError) and not isinstance(exc, PPOCRTorchError):
            raise cache_error(exc, target, "write") from exc
        raise


# -- cache inspection -----------------------------------------------------------------------------------


def cache_files(entries=None) -> list[dict]:
    """ppocr-torch's files in :func:`cache_dir` (other torch.hub checkpoints there are left out).

    Returns one dict per file: ``path``, ``size``, ``model`` (registry name), ``state``: ``"current"``
    (the registry's file for that model), ``"old"`` (another version of that model's checkpoint) or
    ``"partial"`` (an unfinished download, ``.part``).
    """
    if entries is None:
        from .registry import entries as _entries
        from .registry import page_entries

        entries = _entries() + page_entries()  # recognisers, detectors and orientation classifiers
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
            with FileLock(path.with_name(final + ".lock"), label=final, progress=False, timeout=0):
                path.unlink()
        except DownloadError:  # locked: being downloaded right now
            skipped.append(f)
            continue
        except FileNotFoundError:
            continue
        removed.append(f)
    return removed, skipped
