"""Export a recognition model to ONNX, TorchScript or a ``torch.export`` ExportedProgram, verified before it is kept.

::

    from ppocr_torch.export import export_model
    result = export_model("PP-OCRv6_small_rec", "rec.onnx")            # or format="torchscript" / "exported-program"
    result.max_abs_diff                                                 # {"1x160": 2.3e-06, ...}

What is exported is the model's eval-mode forward, ``x`` ``[N, 3, H, W]`` (preprocessed as by
:mod:`ppocr_torch.preprocess`: BGR, ``(pixel / 255 - 0.5) / 0.5``) to softmax probabilities ``probs``
``[N, T, C]``, with the batch ``N`` and the width ``W`` dynamic. The deploy form's oneDNN modules do not export,
so a copy of the model is switched to plain ``nn.Conv2d``/``nn.Linear`` modules first
(:func:`ppocr_torch.models.onednn.to_plain`); the caller's model is never modified.

Every file describes itself: the class list, the spec and the input/output conventions are stored in it (ONNX:
``metadata_props``; TorchScript and ExportedProgram: extra files of the archive), under these keys:

* ``character``: the dictionary, one entry per line, without the blank and the trailing space class: the
  convention of RapidOCR's ONNX models, whose decoder inserts ``"blank"`` first and appends ``" "``;
* ``ppocr_torch.charset``: the exact class list as JSON (blank first, ``charset[i]`` is class ``i``);
* ``ppocr_torch.spec``: the :class:`~ppocr_torch.models.spec.ModelSpec` as JSON;
* ``ppocr_torch.export``: JSON describing the input, the output and the preprocessing.

With ``verify=True`` (the default) the file is written to a temporary file next to ``path``, loaded back with
its runtime (ONNX Runtime, ``torch.jit.load``, ``torch.export.load``) and run on the packaged sample line
stretched to widths 160, 320, 777 and 1500 (batch 1) and on a batch of two at width 777. Its outputs must agree
with the torch model's within ``atol`` (max |Δ| over all probabilities); only then is it renamed onto ``path``.
On failure :class:`~ppocr_torch.errors.ExportVerificationError` is raised and nothing is left at ``path``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ExportError, ExportVerificationError, MissingDependencyError

__all__ = ["FORMATS", "DEFAULT_OPSET", "DEFAULT_ATOL", "VERIFY_WIDTHS", "ExportResult", "export_model",
           "read_metadata", "check_dependencies", "verification_inputs"]

FORMATS = ("onnx", "torchscript", "exported-program")
DEFAULT_OPSET = 17  # LayerNormalization is an ONNX op from 17 on; ONNX Runtime 1.16 runs up to 19
DEFAULT_ATOL = 1e-5
VERIFY_WIDTHS = (160, 320, 777, 1500)
VERIFY_BATCH_WIDTH = 777  # the batch of two (stretched and right-padded sample) runs at this width
INPUT_NAME, OUTPUT_NAME = "x", "probs"
EXTRA_INSTALL = "pip install ppocr-torch[export]"

KEY_CHARACTER = "character"
KEY_CHARSET = "ppocr_torch.charset"
KEY_SPEC = "ppocr_torch.spec"
KEY_EXPORT = "ppocr_torch.export"
METADATA_KEYS = (KEY_CHARACTER, KEY_CHARSET, KEY_SPEC, KEY_EXPORT)

_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}
_EXAMPLE_SHAPE = (2, 320)  # batch and width of the example input the exporters trace


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        path: the file.
        format: ``"onnx"``, ``"torchscript"`` or ``"exported-program"``.
        verified: whether the file was loaded back and compared with the torch model.
        max_abs_diff: per checked input (``"1x160"``, ..., ``"2x777"``: batch x width), the max |Δ| between the
            file's and the torch model's probabilities (empty when not verified).
        metadata: the strings stored in the file (see the module docstring).
    """

    path: Path
    format: str
    verified: bool
    max_abs_diff: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{what} needs the package {module!r}, which is not installed: "
                                     f"`{EXTRA_INSTALL}` (or `pip install {module}`)") from exc


def check_dependencies(format: str, *, verify: bool = True) -> None:
    """Raise MissingDependencyError when a package that exporting to ``format`` needs is missing (ONNX: ``onnx``,
    and ``onnxruntime`` to verify); ValueError for an unknown format."""
    _check_format(format)
    if format == "onnx":
        _require("onnx", "ONNX export")
        if verify:
            _require("onnxruntime", "verifying an ONNX export (or skip the verification)")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}; got {format!r}")


# -- the model and what is stored with it ------------------------------------------------------------------


def _resolve(model_or_name: Any, download: bool):
    import torch

    if isinstance(model_or_name, torch.nn.Module):
        if getattr(model_or_name, "spec", None) is None or getattr(model_or_name, "charset", None) is None:
            raise ValueError("model must be a RecModel with .spec and .charset (see ppocr_torch.load_model)")
        return model_or_name
    from .api import load_model

    return load_model(model_or_name, download=download)


def _on_cpu_float32(model) -> bool:
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    return all(t.device.type == "cpu" and (t.dtype == torch.float32 or not t.is_floating_point()) for t in tensors)


@contextlib.contextmanager
def _reference(model):
    """The torch model the file is compared with: ``model`` itself in eval mode when it is a CPU float32 model
    (its mode is restored afterwards; its packed oneDNN weights are reused), else an eval copy on the CPU in
    float32 (the caller's model keeps its device and dtype)."""
    import torch

    if not _on_cpu_float32(model):
        yield copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _plain_copy(model):
    from .models.onednn import to_plain

    return to_plain(copy.deepcopy(model)).eval()


def _wrapper(model):
    """``forward(x) -> probs`` only (the exporters see one tensor argument named ``x``)."""
    import torch

    class RecognitionExport(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.model = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

    return RecognitionExport(model).eval()


def _metadata(model, format: str, opset: int | None) -> dict:
    from . import __version__

    spec, charset = model.spec, [str(c) for c in model.charset]
    if len(charset) != spec.num_classes:
        raise ExportError(f"model {spec.name!r}: its character set has {len(charset)} classes but its spec "
                          f"{spec.num_classes}")
    dictionary = charset[1:-1] if spec.use_space_char and len(charset) > 1 and charset[-1] == " " else charset[1:]
    info = {
        "ppocr_torch_version": __version__,
        "format": format,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, spec.input_height, "width"], "dtype": "float32",
                  "channel_order": "bgr", "normalize": "(pixel / 255 - 0.5) / 0.5",
                  "resize": f"to height {spec.input_height} keeping the aspect ratio, then right-padded with 0 "
                            f"to at least base_width {spec.base_width}"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", "time", spec.num_classes], "dtype": "float32",
                   "content": "softmax probabilities; class 0 is the CTC blank", "decode": "ctc_greedy"},
        "reverse_text": bool(spec.extra.get("reverse_text", False)),
    }
    if opset is not None:
        info["opset"] = opset
    return {
        KEY_CHARACTER: "\n".join(dictionary),
        KEY_CHARSET: json.dumps(charset, ensure_ascii=False),
        KEY_SPEC: json.dumps(spec.to_dict(), ensure_ascii=False, sort_keys=True),
        KEY_EXPORT: json.dumps(info, ensure_ascii=False, sort_keys=True),
    }


# -- verification inputs -------------------------------------------------------------------------------------


def _sample_bgr() -> np.ndarray:
    from importlib import resources

    from .image_io import load_image

    data = resources.files("ppocr_torch").joinpath("samples").joinpath("sample_line.png").read_bytes()
    return load_image(data)


def _stretched(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` resized to exactly ``height x width`` and normalised: [3, height, width]."""
    import cv2

    from .preprocess import _resize_norm_into

    out = np.zeros((3, height, width), dtype=np.float32)
    _resize_norm_into(cv2.resize(img, (width, height)), out)
    return out


def _padded(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` preprocessed as a line (aspect ratio kept) in a ``width`` wide, right-padded input."""
    from .preprocess import _resize_norm_into

    out = np.zeros((3, height, width), dtype=np.float32)
    _resize_norm_into(img, out)
    return out


def verification_inputs(height: int, widths=VERIFY_WIDTHS, batch_width: int = VERIFY_BATCH_WIDTH) -> dict:
    """The inputs an export is checked on: ``{"1xW": [1, 3, height, W] for W in widths, "2x<batch_width>":
    [2, 3, height, batch_width]}`` (float32 numpy), made from the packaged sample line."""
    img = _sample_bgr()
    inputs = {f"1x{w}": _stretched(img, height, w)[None] for w in widths}
    inputs[f"2x{batch_width}"] = np.stack([_stretched(img, height, batch_width), _padded(img, height, batch_width)])
    return inputs


# -- writing ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' expected warnings (tracer notes on shape checks, deprecation notices)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message=r".*`torch\.jit\.\w+` is deprecated")
        warnings.filterwarnings("ignore", message=r"Constant folding - Only steps=1")
        yield


def _example(spec):
    import torch

    batch, width = _EXAMPLE_SHAPE
    return torch.from_numpy(np.ascontiguousarray(
        np.repeat(_stretched(_sample_bgr(), spec.input_height, width)[None], batch, axis=0)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _write_onnx(module, example, tmp: str, meta: dict, opset: int) -> None:
    import torch

    onnx = _require("onnx", "ONNX export")
    kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                  do_constant_folding=True,
                  dynamic_axes={INPUT_NAME: {0: "batch", 3: "width"}, OUTPUT_NAME: {0: "batch", 1: "time"}})
    with _quiet(), torch.no_grad():
        try:
            torch.onnx.export(module, (example,), tmp, dynamo=False, **kwargs)
        except TypeError as exc:  # torch < 2.5: no ``dynamo`` argument (the TorchScript exporter is the default)
            if "dynamo" not in str(exc):
                raise
            torch.onnx.export(module, (example,), tmp, **kwargs)
    proto = onnx.load(tmp)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, tmp)


def _write_torchscript(module, example, tmp: str, meta: dict) -> None:
    import torch

    buf = io.BytesIO()
    with _quiet():
        with torch.no_grad():
            traced = torch.jit.trace(module, (example,), check_trace=False)
        torch.jit.save(traced, buf, _extra_files=meta)
    Path(tmp).write_bytes(buf.getvalue())


def _dynamic_width():
    from torch.export import Dim

    dim = getattr(Dim, "DYNAMIC", None) or getattr(Dim, "AUTO", None)
    if dim is None:
        import torch

        raise ExportError(f"exported-program needs torch >= 2.5 (Dim.AUTO/Dim.DYNAMIC); this is torch "
                          f"{torch.__version__}")
    return dim


def _write_exported_program(module, example, tmp: str, meta: dict) -> None:
    """Export and save; the width range torch.export derived is added to ``meta[KEY_EXPORT]`` (in place)."""
    import torch
    from torch.export import Dim

    dynamic = {INPUT_NAME: {0: Dim("batch", min=1), 3: _dynamic_width()}}
    with _quiet(), torch.no_grad():
        ep = torch.export.export(module, (example,), dynamic_shapes=dynamic)
    info = json.loads(meta[KEY_EXPORT])
    info.update(_width_bounds(ep))
    meta[KEY_EXPORT] = json.dumps(info, ensure_ascii=False, sort_keys=True)
    buf = io.BytesIO()
    torch.export.save(ep, buf, extra_files=meta)
    Path(tmp).write_bytes(buf.getvalue())


def _width_bounds(ep) -> dict:
    """The width range of an ExportedProgram's input (``max_width`` None when unbounded); ExportError when the
    exporter made the width static."""
    node = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == INPUT_NAME)
    width = node.meta["val"].shape[3]
    expr = getattr(width, "node", None)
    if expr is None:
        raise ExportError(f"torch.export made the input width static ({int(width)}): some operation of the model "
                          "depends on the width as a Python number")
    vr = ep.range_constraints.get(expr.expr)
    if vr is None:
        return {"min_width": None, "max_width": None}
    try:
        upper = int(vr.upper)
    except (TypeError, ValueError, OverflowError, AttributeError):  # unbounded: torch's int_oo
        upper = None
    return {"min_width": int(vr.lower), "max_width": upper}


# -- loading back --------------------------------------------------------------------------------------------


def _runner(format: str, path: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function running the file at ``path`` on a float32 numpy batch, as its runtime loads it."""
    import torch

    if format == "onnx":
        ort = _require("onnxruntime", "verifying an ONNX export")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    with open(path, "rb") as fh:
        if format == "torchscript":
            with _quiet():
                loaded = torch.jit.load(fh, map_location="cpu")
        else:
            loaded = torch.export.load(fh).module()

    def run(x: np.ndarray) -> np.ndarray:
        # TorchScript: the profiling executor's first call of a shape runs a slow instrumented graph (several
        # seconds for one line), and one call per shape never reaches its optimized graph anyway
        plain = torch.jit.optimized_execution(False) if format == "torchscript" else contextlib.nullcontext()
        with torch.no_grad(), plain:
            return loaded(torch.from_numpy(x)).numpy()

    return run


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| (inf when the shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def _verify(format: str, path: str, reference, spec, atol: float) -> dict:
    import torch

    run = _runner(format, path)
    diffs, failures = {}, []
    for key, x in verification_inputs(spec.input_height).items():
        with torch.no_grad():
            expected = reference(torch.from_numpy(x)).numpy()
        try:
            got = run(x)
        except Exception as exc:  # a runtime that refuses a shape it should take (a baked width or batch)
            raise ExportVerificationError(f"{format} export of {spec.name!r}: running it on input {key} (batch x "
                                          f"width) failed: {_first_line(exc)}", max_abs_diff=diffs) from exc
        diffs[key] = d = _max_abs_diff(got, expected)
        if not d <= atol:
            failures.append((key, x, got, expected))
    if failures:
        key, x, got, expected = max(failures, key=lambda f: diffs[f[0]])
        shapes = "" if got.shape == expected.shape else f" (output shape {tuple(got.shape)}, torch " \
                                                          f"{tuple(expected.shape)})"
        raise ExportVerificationError(
            f"{format} export of {spec.name!r} does not reproduce the torch model: max |Δ| {diffs[key]:.3g} on input "
            f"{key} (batch x width){shapes}, above {atol:g}{_float64_note(reference, x, got, expected)}; "
            f"all: {_format_diffs(diffs)}", max_abs_diff=diffs)
    return diffs


def _float64_note(reference, x: np.ndarray, got: np.ndarray, expected: np.ndarray) -> str:
    """Both outputs' distance to the model evaluated in float64: rounding (both similar) or a wrong graph."""
    import torch

    if got.shape != expected.shape:
        return ""
    try:
        exact_model = _plain_copy(reference).double()
        with torch.no_grad():
            exact = exact_model(torch.from_numpy(x).double()).numpy()
    except Exception:  # a diagnostic only
        return ""
    return (f" (against float64: export {_max_abs_diff(got, exact):.3g}, torch {_max_abs_diff(expected, exact):.3g}; "
            f"similar values mean fp32 rounding, see docs/export.md)")


def _format_diffs(diffs: dict) -> str:
    return ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())


# -- public ---------------------------------------------------------------------------------------------------


def export_model(model_or_name: Any, path: str | os.PathLike, format: str = "onnx", *, opset: int = DEFAULT_OPSET,
                 verify: bool = True, atol: float = DEFAULT_ATOL, download: bool = True) -> ExportResult:
    """Export a recognition model to ``path`` and (by default) verify the file before keeping it.

    Args:
        model_or_name: a RecModel (e.g. a fine-tuned one; not modified), a registry name or a checkpoint path.
        path: the file to write (suffixes by convention: ``.onnx``, ``.pt`` for TorchScript, ``.pt2`` for an
            ExportedProgram). Its folder is created; an existing file is replaced only once the new one verified.
        format: ``"onnx"``, ``"torchscript"`` or ``"exported-program"``.
        opset: ONNX opset (ONNX only).
        verify: load the file back with its runtime and compare it with the torch model (see the module docs).
        atol: the largest max |Δ| between the file's and the torch model's probabilities accepted.
        download: allow downloading registry weights.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ValueError: unknown ``format``.
        MissingDependencyError: ONNX export without ``onnx`` (or, to verify it, ``onnxruntime``) installed.
        ExportError: the exporter cannot export the model (its message's first line is given).
        ExportVerificationError: the file does not reproduce the model within ``atol``; nothing is written.
        and what :func:`ppocr_torch.load_model` raises for a name or a checkpoint.
    """
    check_dependencies(format, verify=verify)
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0:
        raise ValueError(f"atol must be a non-negative number, got {atol!r}")
    model = _resolve(model_or_name, download)
    with _reference(model) as reference:
        return _export(reference, path, format, opset, verify, atol)


def _check_exportable(model, format: str) -> None:
    import torch

    if format == "exported-program" and any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        raise ExportError(f"model {model.spec.name!r} has LSTM layers, and torch.export fixes an LSTM's sequence length "
                          f"(pytorch/pytorch#115092): its ExportedProgram would only take one input width; export it "
                          f"to onnx or torchscript instead")


def _export(reference, path, format: str, opset: int, verify: bool, atol: float) -> ExportResult:
    spec = reference.spec
    _check_exportable(reference, format)
    module = _wrapper(_plain_copy(reference))
    meta = _metadata(reference, format, opset if format == "onnx" else None)
    example = _example(spec)
    outcome: dict = {}

    def write(tmp: str) -> None:
        try:
            if format == "onnx":
                _write_onnx(module, example, tmp, meta, opset)
            elif format == "torchscript":
                _write_torchscript(module, example, tmp, meta)
            else:
                _write_exported_program(module, example, tmp, meta)
        except (ExportError, MissingDependencyError, OSError):
            raise
        except Exception as exc:  # the exporters raise many kinds (RuntimeError, UserError, onnx checker errors)
            raise ExportError(f"cannot export {spec.name!r} to {format}: {type(exc).__name__}: "
                              f"{_first_line(exc)}") from exc
        if verify:
            outcome["diffs"] = _verify(format, tmp, reference, spec, atol)

    from .files import atomic_write

    final = atomic_write(path, write)
    return ExportResult(path=Path(final), format=format, verified=verify, max_abs_diff=outcome.get("diffs", {}),
                        metadata=dict(meta))


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata stored in an exported file: ``{"charset": [...], "spec": {...}, "export": {...},
    "character": "..."}`` (``spec`` as plain data: ``ModelSpec.from_dict`` builds the spec).

    TorchScript and ExportedProgram archives are read as zip files (nothing is unpickled or loaded); ONNX files
    need the ``onnx`` package. Raises ExportError when the file holds no ppocr_torch metadata.
    """
    path = os.fspath(path)
    strings: dict[str, str] = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                parts = name.split("/")
                if len(parts) == 3 and parts[1] == "extra" and parts[2] in METADATA_KEYS:
                    strings[parts[2]] = zf.read(name).decode("utf-8")
    else:
        onnx = _require("onnx", "reading an ONNX export")
        try:
            proto = onnx.load(path, load_external_data=False)
        except Exception as exc:
            raise ExportError(f"{path!r} is neither a TorchScript/ExportedProgram archive nor a readable ONNX "
                              f"model: {_first_line(exc)}") from exc
        strings = {p.key: p.value for p in proto.metadata_props if p.key in METADATA_KEYS}
    if KEY_CHARSET not in strings or KEY_SPEC not in strings:
        raise ExportError(f"{path!r} holds no ppocr_torch metadata (keys {KEY_CHARSET!r}, {KEY_SPEC!r}): not "
                          f"exported by ppocr_torch.export")
    return {"charset": json.loads(strings[KEY_CHARSET]), "spec": json.loads(strings[KEY_SPEC]),
            "export": json.loads(strings.get(KEY_EXPORT, "{}")), "character": strings.get(KEY_CHARACTER, "")}


def default_suffix(format: str) -> str:
    """The conventional file suffix of ``format``."""
    _check_format(format)
    return _SUFFIXES[format]
