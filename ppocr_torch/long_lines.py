"""Text lines wider than the comfortable width, read in overlapping windows and merged by CTC time step.

The line is resized once to the model height at its own width ``W`` (PaddleOCR's resize, kept as uint8),
then cut into windows of ``window`` px (default 2,400) that overlap by at least ``overlap`` px (default 320);
the last window starts at a multiple of 8 and is zero-padded on the right (< 8 px) like a PaddleOCR batch.
Each window is normalised and run on its own (a few per forward pass), and only the per-step arg-max class
and its probability are kept, never the ``[T, C]`` probabilities.

Windows are placed on the model's time-step grid (one step per ``p`` input px, ``p = window / T``: 8 for the
PP-OCRv3+ models), so step ``t`` of a window starting at ``s`` px is step ``s / p + t`` of the whole line. In
the overlap of two neighbours the first window's steps are kept up to a cut step and the second's from it on,
so each step of the line comes from exactly one window and never from the ``overlap / 4`` px next to a window
edge. The cut is chosen in the middle half of the overlap: the middle of the longest run of steps where both
windows predict the blank (ties: the run nearest the overlap's middle); without such a step, a step where both
windows agree on that step and the one before; else the middle. The merged ``[T]`` sequence is decoded once by
the ordinary greedy CTC rule, so a character whose steps straddle the cut collapses into one.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["WINDOW", "OVERLAP", "MAX_SPLIT_WIDTH", "WINDOW_BATCH_PX", "window_starts", "choose_cut",
           "read_long_line"]

WINDOW = 2400
"""Width of one window at model height (px, a multiple of 8)."""

OVERLAP = 320
"""Least overlap of two neighbouring windows (px, a multiple of 8)."""

MAX_SPLIT_WIDTH = 1_000_000
"""Hard upper bound on a line's width at model height, even when read in windows."""

WINDOW_BATCH_PX = 4800
"""Window pixels per forward pass (two windows of 2,400 px): bounds the ``[n, T, C]`` probabilities."""

_ALIGN = 8


def window_starts(width: int, window: int = WINDOW, overlap: int = OVERLAP, align: int = _ALIGN) -> list[int]:
    """Left edges of the windows covering ``width`` px: every ``window - overlap`` px, the last one moved left
    to ``ceil(width - window)`` on the ``align`` grid (so it still overlaps its neighbour by ``overlap`` px or
    more and ends less than ``align`` px after the line)."""
    if window % align or overlap % align or not 0 < overlap < window:
        raise ValueError(f"window ({window}) and overlap ({overlap}) must be multiples of {align}, "
                         f"0 < overlap < window")
    if width <= window:
        return [0]
    last = -(-(width - window) // align) * align
    starts = [0]
    while starts[-1] + window < width:
        starts.append(min(starts[-1] + window - overlap, last))
    return starts


def choose_cut(a: np.ndarray, b: np.ndarray) -> int:
    """Where to switch from window ``a`` to window ``b`` in their overlap.

    Args:
        a, b: arg-max classes of the two windows over the same steps of the line (the overlap), blank = 0.

    Returns:
        ``c`` in ``[0, len(a)]``: steps ``< c`` are taken from ``a``, steps ``>= c`` from ``b``.
    """
    n = len(a)
    mid = n // 2
    if n < 4:
        return mid
    lo, hi = max(1, mid - n // 4), min(n, mid + n // 4 + 1)  # candidate cuts: the middle half of the overlap
    both_blank = (a == 0) & (b == 0)
    best_key, best = None, None
    i = lo
    while i < hi:
        if not both_blank[i]:
            i += 1
            continue
        j = i
        while j < hi and both_blank[j]:
            j += 1
        c = (i + j) // 2
        key = (j - i, -abs(c - mid))
        if best_key is None or key > best_key:
            best_key, best = key, c
        i = j
    if best is not None:
        return best
    agree = a == b
    for c in sorted(range(lo, hi), key=lambda c: (abs(c - mid), c)):
        if agree[c] and agree[c - 1]:
            return c
    return mid


def read_long_line(img: np.ndarray, height: int, width: int,
                   run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], *,
                   window: int = WINDOW, overlap: int = OVERLAP,
                   batch_px: int = WINDOW_BATCH_PX) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max classes and their probabilities for every time step of a long line.

    Args:
        img: uint8 ``HxWx3`` BGR line.
        height: model input height.
        width: the line's own width at that height (``int(height * w / h)``).
        run: the model on a float32 ``[n, 3, height, window]`` batch, returning the arg-max classes and their
            probabilities, two ``[n, T]`` arrays.
        window, overlap: window width and least overlap (px, multiples of 8).
        batch_px: window pixels per call of ``run``.

    Returns:
        ``(idx, prob)``, ``[T_line]`` arrays with ``T_line = ceil(width / p)``, ``p`` px per time step.
    """
    import cv2

    h, w = img.shape[:2]
    resized_w = min(int(math.ceil(height * (w / float(h)))), width)
    line = cv2.resize(np.ascontiguousarray(img), (resized_w, height))  # uint8 [height, resized_w, 3]
    starts = window_starts(width, window, overlap)
    per_batch = max(1, batch_px // window)
    pieces_idx: list[np.ndarray] = []
    pieces_prob: list[np.ndarray] = []
    prev = None  # (first step, idx, prob) of the previous window
    from_step = 0  # the previous window's steps from here on are not emitted yet
    step_px = None
    for b0 in range(0, len(starts), per_batch):
        chunk = starts[b0:b0 + per_batch]
        x = np.zeros((len(chunk), 3, height, window), dtype=np.float32)
        for j, s in enumerate(chunk):
            seg = line[:, s:s + window]
            view = x[j, :, :, :seg.shape[1]]
            np.divide(seg.transpose(2, 0, 1), np.float32(255), out=view, dtype=np.float32)
            view -= np.float32(0.5)
            view /= np.float32(0.5)
        del seg, view
        idx, prob = run(x)
        del x
        steps = idx.shape[1]
        if step_px is None:
            if steps < 1 or window % steps:
                raise RuntimeError(f"the model maps a {window} px window to {steps} time steps; reading a line in "
                                   f"windows needs a whole number of px per step")
            step_px = window // steps
            if _ALIGN % step_px:
                raise RuntimeError(f"the model's time step is {step_px} px; windows are placed on an {_ALIGN} px grid")
        for j, s in enumerate(chunk):
            cur = (s // step_px, idx[j], prob[j])
            if prev is not None:
                p0, pidx, pprob = prev
                ov0, ov1 = cur[0], p0 + steps  # the overlap, in line steps
                cut = max(from_step, ov0 + choose_cut(pidx[ov0 - p0:ov1 - p0], cur[1][:ov1 - ov0]))
                pieces_idx.append(pidx[from_step - p0:cut - p0])
                pieces_prob.append(pprob[from_step - p0:cut - p0])
                from_step = cut
            prev = cur
        del idx, prob
    total = -(-width // step_px)
    p0, pidx, pprob = prev
    pieces_idx.append(pidx[from_step - p0:total - p0])
    pieces_prob.append(pprob[from_step - p0:total - p0])
    return np.concatenate(pieces_idx), np.concatenate(pieces_prob).astype(np.float32, copy=False)
