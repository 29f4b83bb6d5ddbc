"""Self-describing checkpoints: state dict + spec + charset + meta, loaded with ``weights_only=True``.

File layout (a ``torch.save`` dict of plain types and tensors only)::

    {"format": "ppocr_torch.checkpoint/1", "form": "deploy", "spec": {...}, "charset": [...],
     "meta": {...}, "state_dict": {name: tensor}}
"""

import contextlib
import hashlib
import io
import sys
import threading
from pathlib import Path

import torch

from .errors import CheckpointError, SpecError, SpecMismatchError
from .files import atomic_write, sha256_file  # noqa: F401  (re-exported)

FORMAT = "ppocr_torch.checkpoint/1"


def save_checkpoint(path, model, *, meta=None):
    """Write ``model`` (a RecModel with ``.spec`` and ``.charset``) atomically; return the file's sha256."""
    if getattr(model.spec, "task", None) in PAGE_TASKS:  # a detector / orientation classifier: no charset
        return _save_payload(path, {"format": FORMAT, "task": model.spec.task, "form": model.form,
                                    "spec": model.spec.to_dict(), "charset": list(model.spec.labels),
                                    "meta": dict(meta or {}), "state_dict": _state(model)})
    if model.spec is None or model.charset is None:
        raise ValueError("model has no .spec/.charset to save")
    if len(model.charset) != model.spec.num_classes:
        raise SpecMismatchError(f"charset has {len(model.charset)} entries but the spec has "
                                f"{model.spec.num_classes} classes")
    payload = {
        "format": FORMAT,
        "form": model.form,
        "spec": model.spec.to_dict(),
        "charset": list(model.charset),
        "meta": dict(meta or {}),
        "state_dict": _state(model),
    }
    return _save_payload(path, payload)


PAGE_TASKS = ("det", "cls")  # PageModelSpec.task: their checkpoints carry "task" and the labels as "charset"


def _state(model):
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def _save_payload(path, payload):
    buf = io.BytesIO()  # a file-like target keeps the archive's inner name fixed: identical bytes every run
    torch.save(payload, buf)
    data = buf.getvalue()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return hashlib.sha256(data).hexdigest()


DIGEST_VERSION = "ppocr_torch.state_dict_digest/1"


def state_dict_digest(state_dict):
    """The content digest of a state dict: sha256 over every tensor's name, dtype, shape and little-endian bytes,
    in name order. It does not depend on the torch version, the zip container or the checkpoint's metadata, so
    a model's weights have one identity whichever way they arrived (the project's release, or the official
    download converted locally)."""
    if sys.byteorder != "little":  # tensor bytes are hashed as stored
        raise RuntimeError("state_dict_digest supports little-endian machines only")
    h = hashlib.sha256(DIGEST_VERSION.encode("ascii") + b"\n")
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        dtype = str(t.dtype).replace("torch.", "")
        h.update(f"{name}\t{dtype}\t{list(t.shape)}\n".encode("utf-8"))
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def checkpoint_digest(path):
    """:func:`state_dict_digest` of a checkpoint file's weights."""
    return state_dict_digest(read_checkpoint(path)["state_dict"])


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_failure(exc):
    """Why torch.load failed, without torch's advice to retry with ``weights_only=False``."""
    text = str(exc)
    if "Weights only load failed" not in text and "weights_only" not in text:
        return f"unreadable (corrupt or truncated?): {type(exc).__name__}: {_first_line(exc)}"
    marker = "WeightsUnpickler error:"
    if marker in text:  # torch's reason follows this marker (on the same line or the next)
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith((
        "Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)"))),
        "no detail given")
    detail = detail.split(" Please use", 1)[0]  # not torch's advice to allowlist what the file asks for
    if "global" in detail.lower():  # the pickle names a Python object to call: code, not data
        return f"refused: it contains objects other than tensors and plain data ({detail})"
    return f"unreadable (corrupt or truncated?): {detail}"


def read_checkpoint(path):
    """Load and validate a checkpoint file (``weights_only=True``); returns the payload dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is an empty file (0 bytes): it was not written completely; "
                              "download, convert or save it again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for unsafe content, RuntimeError/EOFError for corrupt zips
        raise CheckpointError(f"checkpoint {str(path)!r} is {_load_failure(exc)}; download, convert or save it "
                              "again") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{str(path)!r} is not a ppocr_torch checkpoint (format {found!r:.80})")
    for key in ("spec", "charset", "state_dict", "form"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
    return payload


def _check_payload(payload, source):
    """Raise CheckpointError naming ``source`` unless the payload's fields have the kinds save_checkpoint writes."""
    def bad(what):
        return CheckpointError(f"{source}: {what}; the file is not as save_checkpoint writes it (edited or corrupt): "
                               "convert or save the model again")

    if payload["form"] not in ("train", "deploy"):
        raise bad(f"its 'form' is {payload['form']!r:.80}, not 'train' or 'deploy'")
    charset = payload["charset"]
    if not isinstance(charset, (list, tuple)) or not all(isinstance(c, str) for c in charset):
        raise bad(f"its 'charset' is of type {type(charset).__name__}, not a list of strings" if not isinstance(
            charset, (list, tuple)) else "its 'charset' holds entries that are not strings")
    if not isinstance(payload.get("meta", {}), dict):
        raise bad(f"its 'meta' is of type {type(payload['meta']).__name__}, not a dict")
    state = payload["state_dict"]
    if not isinstance(state, dict):
        raise bad(f"its 'state_dict' is of type {type(state).__name__}, not a dict of tensors")
    for name, t in state.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise bad(f"its state_dict entry {name!r:.80} is of type {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu" or t.is_complex() \
                or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
            raise bad(f"its tensor {name!r} is a {t.dtype} {t.layout} tensor on {t.device.type}, not a dense "
                      "real-valued CPU tensor")


_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
_TENSOR_LIMIT = (50, 1000)  # the spec may register 50x the file's tensors + 1000 while it is built (deploy: < 9x)


class _TooManyTensors(Exception):
    pass


@contextlib.contextmanager
def _registration_limit(limit):
    """Raise _TooManyTensors in this thread once more than ``limit`` parameters, buffers and submodules have been
    registered: a spec asking for a million layers fails in milliseconds instead of building them."""
    from torch.nn.modules import module as nn_module

    owner, count = threading.get_ident(), [0]

    def hook(*_):
        if threading.get_ident() == owner:
            count[0] += 1
            if count[0] > limit:
                raise _TooManyTensors(limit)

    handles = [nn_module.register_module_parameter_registration_hook(hook),
               nn_module.register_module_buffer_registration_hook(hook),
               nn_module.register_module_module_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _meta_state(spec, form, n_tensors, source, build=None):
    """``{name: (shape, is_floating)}`` of the model that ``spec`` describes (built by ``build``, default
    ``build_model``) on the meta device: no memory is allocated for its tensors whatever sizes the spec names."""
    from .models import build_model

    build = build or build_model
    limit = _TENSOR_LIMIT[0] * n_tensors + _TENSOR_LIMIT[1]
    try:
        with _registration_limit(limit), torch.device("meta"):
            model = build(spec, form=form)
        return {k: (tuple(v.shape), v.is_floating_point()) for k, v in model.state_dict().items()}
    except _TooManyTensors:
        raise CheckpointError(f"{source}: its spec describes a model of more than {limit} tensors and modules, but "
                              f"the file holds {n_tensors} tensors: the spec and the weights disagree (edited or "
                              "corrupt file); convert or save the model again") from None
    except Exception as exc:  # the spec is data from the file: whatever its options make a constructor raise
        raise CheckpointError(f"{source}: its spec cannot be built ({_first_line(exc)}); the file is not as "
                              "save_checkpoint writes it (edited or corrupt): convert or save the model again") from exc


def _check_tensors(expected, state, source, spec_name):
    """CheckpointError naming the first tensor whose name, shape or kind differs between spec and file."""
    def bad(what):
        return CheckpointError(f"{source}: {what}: the spec and the weights disagree (edited or corrupt file); "
                               "convert or save the model again")

    for name, (shape, floating) in expected.items():
        if name not in state:
            raise bad(f"tensor {name!r} of the spec {spec_name!r} (shape {list(shape)}) is missing from the file")
        t = state[name]
        if tuple(t.shape) != shape:
            raise bad(f"tensor {name!r} has shape {list(t.shape)} in the file but the spec {spec_name!r} needs "
                      f"{list(shape)}")
        if t.is_floating_point() != floating:
            raise bad(f"tensor {name!r} is {t.dtype} in the file but the spec {spec_name!r} needs a "
                      f"{'floating-point' if floating else 'integer'} tensor")
    extra = [k for k in state if k not in expected]
    if extra:
        raise bad(f"the file holds {len(extra)} tensor(s) that the spec {spec_name!r} has no place for, e.g. "
                  f"{extra[0]!r} (shape {list(state[extra[0]].shape)})")


def model_from_payload(payload, *, source="checkpoint"):
    """Build the RecModel described by a checkpoint payload and load its weights strictly.

    The spec is data from the file: every tensor's name and shape is checked against the model it describes,
    built on the meta device, before anything is allocated; the model is built for real only once they agree.
    """
    from .charset import check_num_classes
    from .models import ModelSpec, build_model

    _check_payload(payload, source)
    if "task" in payload:
        return _page_model_from_payload(payload, source)
    try:
        spec = ModelSpec.from_dict(payload["spec"])
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{source}: invalid spec: {_first_line(exc)}; the file is not as save_checkpoint "
                              "writes it (edited or corrupt): convert or save the model again") from exc
    charset = list(payload["charset"])
    try:
        check_num_classes(charset, spec.num_classes)
    except SpecMismatchError as exc:
        raise SpecMismatchError(f"{source}: {exc}") from exc
    state = payload["state_dict"]
    _check_tensors(_meta_state(spec, payload["form"], len(state), source), state, source, spec.name)
    try:
        model = build_model(spec, form=payload["form"], charset=charset)
    except SpecError as exc:
        raise CheckpointError(f"{source}: its spec cannot be built: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the spec {spec.name!r}: "
                              f"{_first_line(exc)}") from exc
    model.weights_meta = dict(payload.get("meta", {}))
    return model.eval()


def _page_model_from_payload(payload, source):
    """The detector / orientation classifier of a checkpoint payload (see :func:`model_from_payload`)."""
    from .models.page_model import build_page_model
    from .models.page_spec import PageModelSpec

    try:
        spec = PageModelSpec.from_dict(payload["spec"])
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{source}: invalid spec: {_first_line(exc)}; the file is not as save_checkpoint "
                              "writes it (edited or corrupt): convert or save the model again") from exc
    if payload["task"] != spec.task or list(payload["charset"]) != list(spec.labels):
        raise CheckpointError(f"{source}: its task/labels disagree with its spec (edited or corrupt file): convert "
                              "or save the model again")
    state = payload["state_dict"]
    _check_tensors(_meta_state(spec, payload["form"], len(state), source, build_page_model), state, source,
                   spec.name)
    try:
        model = build_page_model(spec, form=payload["form"])
    except SpecError as exc:
        raise CheckpointError(f"{source}: its spec cannot be built: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the spec {spec.name!r}: {_first_line(exc)}") from exc
    model.weights_meta = dict(payload.get("meta", {}))
    return model.eval()


def load_checkpoint(path):
    """Read ``path`` and return the ready RecModel (eval mode, CPU)."""
    return model_from_payload(read_checkpoint(path), source=str(path))
