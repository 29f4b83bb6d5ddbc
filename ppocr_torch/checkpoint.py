"""Self-describing checkpoints: state dict + spec + charset + meta, loaded with ``weights_only=True``.

File layout (a ``torch.save`` dict of plain types and tensors only)::

    {"format": "ppocr_torch.checkpoint/1", "form": "deploy", "spec": {...}, "charset": [...],
     "meta": {...}, "state_dict": {name: tensor}}
"""

import hashlib
import io
import sys
from pathlib import Path

import torch

from .errors import CheckpointError, SpecError, SpecMismatchError
from .files import atomic_write, sha256_file  # noqa: F401  (re-exported)

FORMAT = "ppocr_torch.checkpoint/1"


def save_checkpoint(path, model, *, meta=None):
    """Write ``model`` (a RecModel with ``.spec`` and ``.charset``) atomically; return the file's sha256."""
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
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
    }
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


def read_checkpoint(path):
    """Load and validate a checkpoint file (``weights_only=True``); returns the payload dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for unsafe content, RuntimeError/EOFError for corrupt zips
        kind = "refused: it contains objects other than tensors and plain data" if "weights_only" in str(exc) \
            else "unreadable (corrupt or truncated?)"
        raise CheckpointError(f"checkpoint {str(path)!r} is {kind}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a ppocr_torch checkpoint (format "
                              f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    for key in ("spec", "charset", "state_dict", "form"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
    return payload


def model_from_payload(payload, *, source="checkpoint"):
    """Build the RecModel described by a checkpoint payload and load its weights strictly."""
    from .charset import check_num_classes
    from .models import ModelSpec, build_model

    try:
        spec = ModelSpec.from_dict(payload["spec"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid spec: {exc}") from exc
    charset = list(payload["charset"])
    check_num_classes(charset, spec.num_classes)
    try:
        model = build_model(spec, form=payload["form"], charset=charset)
    except SpecError as exc:
        raise CheckpointError(f"{source}: its spec cannot be built: {exc}") from exc
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the spec {spec.name!r}: "
                              f"{str(exc).splitlines()[0]}") from exc
    model.weights_meta = dict(payload.get("meta", {}))
    return model.eval()


def load_checkpoint(path):
    """Read ``path`` and return the ready RecModel (eval mode, CPU)."""
    return model_from_payload(read_checkpoint(path), source=str(path))
