"""Weights from PaddleOCR's own downloads: the official inference export fetched, converted here on first use,
checked and cached, with no Paddle or ONNX installed.

The last step of :func:`ppocr_torch.download.resolve_weights`. The official file is the registry's
``official.inference_url`` (or PaddleX's ``paddlex_inference_url``), an ``*_infer.tar`` holding
``inference.json`` or ``inference.pdmodel`` + ``inference.pdiparams``; ``$PPOCR_TORCH_OFFICIAL_MIRROR`` (a
folder URL holding files under their official names) is tried before each URL. The export is read by structure
(``ppocr_torch.formats``) and mapped strictly onto the registry's spec (``ppocr_torch.mapping``: every tensor
filled exactly once). When the registry records the weights' content digest, the conversion must reproduce it
before anything is cached; a model without one is cached marked *unverified*.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import ChecksumError, DownloadError, PPOCRTorchError, SourceFormatError

ENV_OFFICIAL_MIRROR = "PPOCR_TORCH_OFFICIAL_MIRROR"
ENV_OFFICIAL_CACHE = "PPOCR_TORCH_OFFICIAL_CACHE"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
UNVERIFIED = "unverified"
VERIFY_COMMAND = "python -m conversion convert {name} --source official --update-registry"


def official_urls(entry) -> list[str]:
    """The official download URLs of ``entry``'s inference export, in the order they are tried."""
    urls = [entry.official.get(k) for k in ("inference_url", "paddlex_inference_url", "legacy_inference_url")]
    return list(dict.fromkeys(u for u in urls if u))


def mirrored(url: str) -> list[str]:
    """``$PPOCR_TORCH_OFFICIAL_MIRROR/<file name>`` (when set), then ``url`` itself."""
    mirror = os.environ.get(ENV_OFFICIAL_MIRROR, "").strip()
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return ([mirror.rstrip("/") + "/" + name] if mirror else []) + [url]


def official_file_path(url: str) -> Path:
    """Where the official file of ``url`` is downloaded: ``<root>/<url hash>/<file name>``, the root being
    ``$PPOCR_TORCH_OFFICIAL_CACHE/urls`` when that is set (the conversion tool's cache), else
    ``<weights cache>/official``."""
    from .download import cache_dir

    env = os.environ.get(ENV_OFFICIAL_CACHE, "").strip()
    root = Path(os.path.expanduser(env)) / "urls" if env else cache_dir() / "official"
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return root / key / url.rstrip("/").rsplit("/", 1)[-1]


def fetch_official(url: str, *, progress: bool | None = None) -> Path:
    """Download the official file of ``url`` (mirror first; lock, resume, retries) and return its path."""
    from .download import fetch_url

    target = official_file_path(url)
    errors = []
    for candidate in mirrored(url):
        try:
            return fetch_url(candidate, target, progress=progress)
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError("; ".join(errors) + f" (set ${ENV_OFFICIAL_MIRROR} to a folder URL holding {target.name})")


def unpack_archive(path) -> Path:
    """The model inside an official release file: an ``*_infer.tar`` is extracted (once, next to it; only
    regular files and folders, no absolute or ``..`` paths) and the folder holding ``inference.json`` /
    ``inference.pdmodel`` (or the one ``.onnx``) is returned; any other file is returned as it is."""
    import tarfile

    from .files import CACHE_ERRNOS, cache_error, sha256_file

    path = Path(path)
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        return path
    if not path.is_file():
        raise SourceFormatError(f"{path}: no such archive")
    dest = path.with_name(f"{path.name}.{sha256_file(path)[:12]}.d")  # a re-fetched archive is unpacked anew
    if not dest.is_dir():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        except OSError as exc:
            raise cache_error(exc, dest, "unpack the archive into") from exc
        try:
            try:
                with tarfile.open(path) as tf:
                    members = tf.getmembers()
                    for m in members:
                        parts = Path(m.name).parts
                        if Path(m.name).is_absolute() or ".." in parts or not (m.isfile() or m.isdir()):
                            raise SourceFormatError(f"{path.name}: refusing archive member {m.name!r} (absolute "
                                                    "path, '..' or not a regular file)")
                    for m in members:
                        if m.isfile():
                            out = tmp.joinpath(*Path(m.name).parts)
                            out.parent.mkdir(parents=True, exist_ok=True)
                            with tf.extractfile(m) as src, open(out, "wb") as dst:
                                shutil.copyfileobj(src, dst)
            except (tarfile.TarError, EOFError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in CACHE_ERRNOS:  # disk full, read-only: not the archive
                    raise cache_error(exc, dest, "unpack the archive into") from exc
                raise SourceFormatError(f"{path}: not a readable tar archive ({exc}); truncated download?") from exc
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    found = sorted({p.parent for pat in ("inference.json", "inference.pdmodel") for p in dest.rglob(pat)})
    onnx = sorted(dest.rglob("*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found and len(onnx) == 1:
        return onnx[0]
    raise SourceFormatError(f"{path.name}: expected one Paddle inference export or one .onnx inside, found "
                            f"{[str(p.relative_to(dest)) for p in found + onnx] or 'none'}")


def _check_dictionary(entry, folder: Path, charset) -> None:
    """The export's own dictionary (``inference.yml``) must be the packaged one; checked where PyYAML is
    installed (it is not a runtime dependency: without it the classifier's class count is the check)."""
    yml = folder / "inference.yml"
    try:
        import yaml
    except ImportError:
        return
    if not yml.is_file():
        return
    with open(yml, encoding="utf-8") as fh:
        post = (yaml.safe_load(fh) or {}).get("PostProcess") or {}
    chars = [str(c) for c in post.get("character_dict") or []]
    ours = charset[1:-1] if entry.spec.use_space_char else charset[1:]
    if chars and chars != list(ours) and not (chars + [" "] == list(ours)):
        from .errors import SpecMismatchError

        raise SpecMismatchError(f"{yml}: the export's dictionary ({len(chars)} characters) differs from "
                                f"ppocr_torch/dicts/{entry.spec.dictionary} ({len(ours)} characters)")


def convert_export(entry, folder):
    """The deploy-form model of registry ``entry`` converted from the Paddle inference export in ``folder``."""
    from .charset import packaged_charset
    from .formats import read_export_ops
    from .mapping import model_from_ops, page_model_from_ops

    if getattr(entry.spec, "task", None) in ("det", "cls"):  # a detector / orientation classifier: no dictionary
        return page_model_from_ops(entry.spec, read_export_ops(folder), source=str(folder))[0]
    charset = packaged_charset(entry.spec)
    _check_dictionary(entry, Path(folder), charset)
    model, _ = model_from_ops(entry.spec, charset, read_export_ops(folder), source=str(folder))
    return model


def build_from_official(entry, target: Path, *, progress: bool | None = None) -> Path:
    """Fetch ``entry``'s official export, convert it, check it and save the checkpoint at ``target``.

    Call with ``target``'s lock held. Raises DownloadError (no official URL answered), SourceFormatError /
    ConversionError (the file is not the expected export), ChecksumError (the converted weights do not have the
    registry's content digest: nothing is cached and the downloaded file is discarded)."""
    from .checkpoint import save_checkpoint, state_dict_digest
    from .filelock import heartbeat
    from .files import cache_error, sha256_file

    urls = official_urls(entry)
    if not urls:
        raise DownloadError(f"model {entry.name!r}: the registry lists no official download")
    errors, archive, url = [], None, None
    for url in urls:
        try:
            archive = fetch_official(url, progress=progress)
            break
        except DownloadError as exc:
            errors.append(str(exc))
    if archive is None:
        raise DownloadError(f"model {entry.name!r}: no official download answered: " + "; ".join(errors))
    bar = _steps_bar(f"converting {entry.name}", progress)
    try:
        heartbeat()  # tells processes waiting for ``target``'s lock that this one is still at work
        folder = unpack_archive(archive)
        bar.update(1)
        heartbeat()
        model = convert_export(entry, folder)
        bar.update(1)
        heartbeat()
        digest = state_dict_digest(model.state_dict())
        expected = entry.weights.digest if entry.weights is not None else None
        if expected and digest != expected:
            _discard(archive)
            raise ChecksumError(
                f"the official download {url} of model {entry.name!r} converts to weights with content digest "
                f"{digest}, but the registry records {expected}; nothing was cached and the downloaded file was "
                "discarded (a changed or corrupt official file)")
        meta = {"name": entry.name, "source_format": "paddle_inference", "url": url, "archive": archive.name,
                "archive_sha256": sha256_file(archive), "digest": digest,
                "verification": "digest" if expected else UNVERIFIED, "converted_by": "ppocr_torch runtime"}
        if not expected:  # recorded in the metadata and in the spec: whoever loads the file is told
            meta["verify_with"] = VERIFY_COMMAND.format(name=entry.name)
            model.spec = model.spec.replace(extra={**model.spec.extra, "verification": UNVERIFIED})
        try:
            save_checkpoint(target, model, meta=meta)
        except OSError as exc:  # disk full, read-only cache (save_checkpoint leaves nothing at target)
            if isinstance(exc, PPOCRTorchError):
                raise
            raise cache_error(exc, target, "write") from exc
        bar.update(1)
    finally:
        bar.close()
        shutil.rmtree(archive.parent / f"{archive.name}.{_short_hash(archive)}.d", ignore_errors=True)
    return target


def _short_hash(path: Path) -> str:
    from .files import sha256_file

    try:
        return sha256_file(path)[:12]
    except OSError:
        return "missing"


def _discard(path: Path) -> None:
    shutil.rmtree(path.parent / f"{path.name}.{_short_hash(path)}.d", ignore_errors=True)
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _steps_bar(label: str, progress: bool | None):
    from .progress import show_progress

    if not show_progress(progress):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=3, desc=label, unit="step", file=sys.stderr, leave=False)
