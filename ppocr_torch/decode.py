"""Greedy CTC decoding, identical to PaddleOCR's ``CTCLabelDecode``.

For every timestep the most probable class is taken (``argmax``; the first one on ties). A timestep is
kept when its class differs from the previous timestep's (the first timestep always qualifies) and is
not the blank (index 0). The text is the concatenation of the kept characters and the score the float32
mean of their probabilities, or ``0.0`` when nothing is kept (PaddleOCR takes ``np.mean([0])``).

Unlike PaddleOCR we also report, for each kept character, its probability and the range of timesteps
its run of identical predictions covers.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import SpecMismatchError

__all__ = ["CharResult", "RecResult", "ctc_greedy_decode", "decode_steps"]


@dataclass(frozen=True)
class CharResult:
    """One decoded character.

    Attributes:
        char: the character (an entry of the charset).
        prob: its probability at the timestep where it was emitted (``first``).
        first: timestep (index in the model output sequence) where it was emitted.
        last: last timestep of the run of identical predictions starting at ``first`` (inclusive).
    """

    char: str
    prob: float
    first: int
    last: int


@dataclass(frozen=True, repr=False)
class RecResult:
    """Recognition result of one text line: ``text``, its ``score`` and per-character details."""

    text: str
    score: float
    chars: tuple[CharResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"text", "score", "chars": [[char, prob, first, last], ...]}``."""
        return {
            "text": self.text,
            "score": self.score,
            "chars": [[c.char, c.prob, c.first, c.last] for c in self.chars],
        }

    def __repr__(self) -> str:
        return f"RecResult(text={self.text!r}, score={self.score:.4f}, chars={len(self.chars)})"


def _to_numpy(probs: Any) -> np.ndarray:
    """Numpy view of ``probs``; torch tensors are detached and moved to the CPU."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(probs, torch.Tensor):
        t = probs.detach().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.float()
        return t.numpy()
    return np.asarray(probs)


_LTR_RUN = re.compile(r"[a-zA-Z0-9 :*./%+-]")


def reverse_rtl(text: str) -> str:
    """PaddleOCR's display order for right-to-left models (its ``pred_reverse``): the text is cut into
    single characters and runs of Latin letters/digits/``:*./%+-`` and space; the pieces are reversed, the
    runs themselves are kept as they are (so numbers and Latin words stay readable)."""
    pieces, run = [], ""
    for ch in text:
        if _LTR_RUN.match(ch):
            run += ch
        else:
            if run:
                pieces.append(run)
                run = ""
            pieces.append(ch)
    if run:
        pieces.append(run)
    return "".join(reversed(pieces))


def ctc_greedy_decode(probs: Any, charset: Sequence[str], *, reverse: bool = False) -> list[RecResult]:
    """Greedy CTC decoding of class probabilities, exactly as PaddleOCR's ``CTCLabelDecode``.

    Args:
        probs: ``[B, T, C]`` or ``[T, C]`` probabilities (after softmax), a numpy array or a torch
            tensor. Probabilities and scores are reported as float32 values (as the models output).
        charset: ``C`` strings; index 0 is the CTC blank (``"blank"`` in PaddleOCR), see
            :func:`~ppocr_torch.charset.build_charset`.
        reverse: apply :func:`reverse_rtl` to the text (models with ``spec.extra["reverse_text"]``, the
            Arabic-script ones); ``chars`` stay in time-step order.

    Returns:
        One :class:`RecResult` per batch item (a one-element list for ``[T, C]`` input).

    Raises:
        SpecMismatchError: ``len(charset)`` differs from ``C``.
        ValueError: ``probs`` is not 2-D or 3-D.
    """
    arr = _to_numpy(probs)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"probs must have shape [B, T, C] or [T, C], got {arr.shape}")
    batch, steps, classes = arr.shape
    if len(charset) != classes:
        raise SpecMismatchError(
            f"charset has {len(charset)} entries but the model output has {classes} classes"
        )
    if batch == 0:
        return []
    if steps == 0:
        return [RecResult("", 0.0, ()) for _ in range(batch)]

    idx = arr.argmax(axis=2)  # [B, T], first maximum on ties
    prob = np.take_along_axis(arr, idx[:, :, None], axis=2)[:, :, 0].astype(np.float32)
    changed = idx[:, 1:] != idx[:, :-1]  # [B, T-1]
    keep = idx != 0
    keep[:, 1:] &= changed
    # A run ends where the next prediction differs or the row ends.
    run_end = np.ones((batch, steps), dtype=bool)
    run_end[:, :-1] = changed

    results: list[RecResult] = []
    for b in range(batch):
        kept = np.flatnonzero(keep[b])
        if kept.size == 0:
            results.append(RecResult("", 0.0, ()))
            continue
        ends = np.flatnonzero(run_end[b])
        lasts = ends[np.searchsorted(ends, kept)]
        kept_prob = prob[b, kept]
        chars = tuple(
            CharResult(charset[c], p, t, last)
            for c, p, t, last in zip(
                idx[b, kept].tolist(), kept_prob.tolist(), kept.tolist(), lasts.tolist()
            )
        )
        text = "".join(c.char for c in chars)
        if reverse:
            text = reverse_rtl(text)
        results.append(RecResult(text, float(np.mean(kept_prob)), chars))
    return results


def decode_steps(idx: Any, prob: Any, charset: Sequence[str], *, reverse: bool = False) -> RecResult:
    """Greedy CTC decoding of one line given per-step arg-max classes and their probabilities.

    The same rule as :func:`ctc_greedy_decode` (which computes ``idx``/``prob`` from the full ``[T, C]``
    probabilities itself): used for lines read in windows (:mod:`ppocr_torch.long_lines`), where only the
    arg-max and its probability are kept per time step.

    Args:
        idx: ``[T]`` integer class per step (arg-max, first maximum on ties).
        prob: ``[T]`` probability of that class.
        charset: class strings, index 0 the blank.
        reverse: apply :func:`reverse_rtl` to the text.
    """
    idx = np.asarray(idx).reshape(-1)
    prob = np.asarray(prob, dtype=np.float32).reshape(-1)
    if idx.shape != prob.shape:
        raise ValueError(f"idx and prob must have the same length, got {idx.shape} and {prob.shape}")
    if idx.size and (int(idx.max()) >= len(charset) or int(idx.min()) < 0):
        raise SpecMismatchError(f"class indices must lie in [0, {len(charset)}) (the charset's size), got "
                                f"{int(idx.min())}..{int(idx.max())}")
    steps = idx.size
    if steps == 0:
        return RecResult("", 0.0, ())
    changed = idx[1:] != idx[:-1]
    keep = idx != 0
    keep[1:] &= changed
    run_end = np.ones(steps, dtype=bool)
    run_end[:-1] = changed
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return RecResult("", 0.0, ())
    ends = np.flatnonzero(run_end)
    lasts = ends[np.searchsorted(ends, kept)]
    kept_prob = prob[kept]
    chars = tuple(CharResult(charset[c], p, t, last) for c, p, t, last in
                  zip(idx[kept].tolist(), kept_prob.tolist(), kept.tolist(), lasts.tolist()))
    text = "".join(c.char for c in chars)
    if reverse:
        text = reverse_rtl(text)
    return RecResult(text, float(np.mean(kept_prob)), chars)
