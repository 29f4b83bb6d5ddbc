"""Text-line orientation: PaddleOCR's classifier input and its 180-degree rule (``predict_cls.py``).

Each crop is resized to the classifier's height keeping its aspect ratio (width rounded up, at most the
classifier's width), mapped to ``[-1, 1]`` and zero-padded on the right: the recognisers' own
``resize_norm`` with a fixed width (``3 x 48 x 192`` for ``ch_ppocr_mobile_v2.0_cls``). Since every crop is
padded to that one width, a crop's result does not depend on its batch. A crop is turned by 180 degrees
when the classifier's best label is ``"180"`` and its probability exceeds ``cls_thresh`` (0.9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CLS_THRESH", "CLS_BATCH", "Orientation", "orientation_batch", "apply_orientation", "check_classifier",
           "classify"]

CLS_THRESH = 0.9
"""PaddleOCR's ``cls_thresh``."""
CLS_BATCH = 6
"""PaddleOCR's ``cls_batch_num`` (results do not depend on it: every crop is padded to the same width)."""


@dataclass(frozen=True)
class Orientation:
    """The classifier's verdict on one crop: ``label`` (``"0"`` or ``"180"``), its probability, and whether
    the crop was turned."""

    label: str
    score: float
    rotated: bool


def orientation_batch(crops, height: int = 48, width: int = 192) -> np.ndarray:
    """float32 ``[N, 3, height, width]`` classifier input of uint8 BGR crops."""
    from ..preprocess import resize_norm

    out = np.zeros((len(crops), 3, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        out[i] = resize_norm(crop, height, width / height)
    return out


def apply_orientation(crops: list, probs, labels=("0", "180"), cls_thresh: float = CLS_THRESH) -> tuple:
    """``(crops, verdicts)``: each crop turned by 180 degrees where ``probs`` (``[N, len(labels)]``) says
    ``"180"`` with a probability above ``cls_thresh``."""
    import cv2

    probs = np.asarray(probs, dtype=np.float32)
    out, verdicts = [], []
    for crop, p in zip(crops, probs):
        k = int(p.argmax())
        label, score = str(labels[k]), float(p[k])
        turn = "180" in label and score > cls_thresh
        out.append(cv2.rotate(crop, cv2.ROTATE_180) if turn else crop)
        verdicts.append(Orientation(label, score, turn))
    return out, verdicts


def _input_shape(spec) -> tuple[int, int]:
    shape = getattr(spec, "input_shape", None)
    return (int(shape[-2]), int(shape[-1])) if shape else (48, 192)


def check_classifier(model) -> None:
    """Raise SpecError unless ``model`` takes PaddleOCR's cls input, ``(x / 255 - 0.5) / 0.5`` (what
    :func:`orientation_batch` makes)."""
    from ..errors import SpecError

    spec = getattr(model, "spec", None)
    pre = getattr(spec, "preprocess", None) or {}
    values = list(pre.get("mean", ())) + list(pre.get("std", ()))
    if any(abs(float(v) - 0.5) > 1e-9 for v in values):
        raise SpecError(f"line classifier {getattr(spec, 'name', '?')!r} normalises with mean {pre.get('mean')} / "
                        f"std {pre.get('std')}; the page pipeline feeds PaddleOCR's cls input (x / 255 - 0.5) / 0.5 "
                        "only: use ch_ppocr_mobile_v2.0_cls, or cls=None")


def classify(model, crops: list, *, cls_thresh: float = CLS_THRESH, batch_size: int = CLS_BATCH, device="cpu",
             lock=None) -> tuple:
    """Run the line classifier ``model`` (``forward`` -> ``[N, len(spec.labels)]`` probabilities) on uint8 BGR
    crops; returns ``(crops, verdicts)`` as :func:`apply_orientation`."""
    import contextlib

    import torch

    spec = getattr(model, "spec", None)
    height, width = _input_shape(spec)
    labels = tuple(getattr(spec, "labels", None) or ("0", "180"))
    probs = []
    for start in range(0, len(crops), batch_size):
        x = torch.from_numpy(orientation_batch(crops[start:start + batch_size], height, width)).to(device)
        with (lock if lock is not None else contextlib.nullcontext()), torch.inference_mode():
            out = model(x)
        probs.append(out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out, np.float32))
    if not probs:
        return [], []
    return apply_orientation(crops, np.concatenate(probs), labels, cls_thresh)
