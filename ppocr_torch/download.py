"""Finding a registry model's checkpoint on disk, downloading it into the cache when needed.

Where weights live:

* **embedded**: shipped inside the package (``ppocr_torch/weights/``);
* **cached**: ``cache_dir()/<file>``, where :func:`cache_dir` is ``$PPOCR_TORCH_HOME`` or, by default,
  ``<torch hub dir>/checkpoints`` (the directory ``torch.hub`` downloads into);
* **download**: fetched from the entry's explicit ``url`` or :func:`weights_base_url` + file name.

Every file is checked against the registry's sha256 before it is used; downloads are written to a
temporary file next to the target and renamed onto it only once verified, so an interrupted or corrupt
transfer never leaves a file that looks usable.

Environment variables: ``PPOCR_TORCH_HOME`` (cache directory), ``PPOCR_TORCH_WEIGHTS_URL`` (base URL of
the release files), ``PPOCR_TORCH_OFFLINE`` (``1``/``true``/``yes``: never download).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

from .errors import ChecksumError, DownloadError, WeightsNotCachedError

__all__ = [
    "DEFAULT_WEIGHTS_BASE_URL",
    "cache_dir",
    "weights_base_url",
    "is_offline",
    "weights_url",
    "weights_status",
    "resolve_weights",
]

DEFAULT_WEIGHTS_BASE_URL = "https://github.com/ppocr-torch/ppocr-torch/releases/download/weights-v1/"
"""Base URL of the converted checkpoints (a GitHub release); the file name is appended."""

_TIMEOUT = (15, 60)  # (connect, read) seconds
_CHUNK = 1 << 20
_TRUE = ("1", "true", "yes")

# (path, size, mtime_ns, sha256) of files verified in this process, so that repeated loads of the same
# cached file do not hash it again.
_verified: set[tuple[str, int, int, str]] = set()
_verified_lock = threading.Lock()


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
    home = os.environ.get("PPOCR_TORCH_HOME")
    if home:
        return Path(os.path.expanduser(home))
    return _torch_hub_dir() / "checkpoints"


def weights_base_url() -> str:
    """Base URL of the release files: ``$PPOCR_TORCH_WEIGHTS_URL`` or :data:`DEFAULT_WEIGHTS_BASE_URL`."""
    url = os.environ.get("PPOCR_TORCH_WEIGHTS_URL") or DEFAULT_WEIGHTS_BASE_URL
    return url if url.endswith("/") else url + "/"


def is_offline() -> bool:
    """Whether ``$PPOCR_TORCH_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``, any case)."""
    return os.environ.get("PPOCR_TORCH_OFFLINE", "").strip().lower() in _TRUE


def weights_url(entry) -> str:
    """Download URL of ``entry``'s checkpoint: its explicit ``url`` or the base URL + file name."""
    _require_weights(entry)
    return entry.weights.url or weights_base_url() + entry.weights.file


def weights_status(entry) -> str:
    """``"embedded"``, ``"cached"`` (file present in :func:`cache_dir`, not re-hashed), ``"download"``
    or ``"not converted"`` (the registry has no checkpoint for this model)."""
    w = entry.weights
    if w is None:
        return "not converted"
    if w.embedded:
        return "embedded"
    return "cached" if (cache_dir() / w.file).is_file() else "download"


def resolve_weights(entry, *, download: bool = True, progress: bool | None = None) -> Path:
    """Return the local path of ``entry``'s verified checkpoint, downloading it if needed.

    Args:
        entry: a :class:`~ppocr_torch.registry.ModelEntry`.
        download: allow downloading a checkpoint that is not cached (also refused when
            :func:`is_offline`).
        progress: ``False`` never shows a progress bar; otherwise a tqdm bar is shown on stderr when
            stderr is a terminal.

    Raises:
        WeightsNotCachedError: the registry has no checkpoint for the model, or it is not cached and
            downloading is disabled; the message says how to get it.
        ChecksumError: an embedded file has the wrong size, or a downloaded file the wrong sha256.
        DownloadError: the HTTP request failed.
    """
    w = _require_weights(entry)
    if w.embedded:
        return _embedded_path(entry)
    target = cache_dir() / w.file
    if target.is_file():
        if _matches(target, w.sha256):
            return target
        _unlink(target)  # corrupt or stale: fetch it again
    url = weights_url(entry)
    if not download or is_offline():
        why = "offline mode (PPOCR_TORCH_OFFLINE)" if is_offline() else "download=False"
        raise WeightsNotCachedError(
            f"weights of model {entry.name!r} ({w.file}) are not cached in {str(cache_dir())!r} and "
            f"downloading is disabled ({why}); fetch them with `ppocr-torch download {entry.name}` "
            f"or put the file from {url} into that directory"
        )
    _download(url, target, sha256=w.sha256, size=w.size, progress=progress)
    return target


def _require_weights(entry):
    """``entry.weights``, or WeightsNotCachedError when the model has no converted checkpoint."""
    if entry.weights is None:
        raise WeightsNotCachedError(
            f"model {entry.name!r} has no converted checkpoint yet; convert it from the official "
            f"weights with `python -m conversion convert {entry.name}`"
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
    if target.is_file() and _matches(target, w.sha256):
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
    from .checkpoint import sha256_file

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

    The temp file is removed on any failure (checksum, I/O, download error, interrupt).
    """
    from .checkpoint import sha256_file

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
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


def _download(url: str, target: Path, *, sha256: str, size: int | None, progress: bool | None) -> None:
    """Stream ``url`` into ``target`` atomically, verifying ``sha256`` (and the announced length)."""
    import requests

    def write(fh):
        try:
            with requests.get(url, stream=True, timeout=_TIMEOUT) as resp:
                resp.raise_for_status()
                total = int(resp.headers.get("Content-Length") or 0) or size or None
                received = 0
                bar = _progress_bar(total, target.name) if progress is not False else None
                try:
                    for block in resp.iter_content(chunk_size=_CHUNK):
                        fh.write(block)
                        received += len(block)
                        if bar is not None:
                            bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
                announced = resp.headers.get("Content-Length")
                if announced and "Content-Encoding" not in resp.headers and received != int(announced):
                    raise DownloadError(f"download of {url} was cut: got {received} of {announced} bytes")
        except requests.RequestException as exc:
            raise DownloadError(f"cannot download {url}: {exc}") from exc

    _write_verified(target, sha256, write, source=url)


def _progress_bar(total: int | None, label: str):
    """A tqdm bar on stderr, or None when stderr is not a terminal."""
    stream = sys.stderr
    try:
        interactive = stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=stream,
                leave=False)
