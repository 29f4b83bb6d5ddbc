"""Recognition metrics: exact match, character accuracy and normalised edit distance.

For predictions ``p`` and ground truths ``g`` (``ED`` is the Levenshtein distance: insertions, deletions and
substitutions of single characters, each costing 1):

* ``acc``: the share of lines with ``p == g`` (spaces and case count; PaddleOCR's ``RecMetric`` removes spaces first
  by default);
* ``char_acc``: the mean over lines of ``max(0, 1 - ED(p, g) / len(g))``, i.e. one minus the character error rate
  of each line, clipped at 0 (a line with an empty ``g`` scores 1 when ``p`` is empty too, else 0);
* ``norm_edit_dis``: PaddleOCR's ``norm_edit_dis``, ``1 - mean(ED(p, g) / max(len(p), len(g)))`` (a pair of empty
  strings has distance 0): a similarity, 1 when every line is right;
* ``cer``: ``sum(ED) / sum(len(g))`` over the whole set, the usual character error rate (can exceed 1).
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["levenshtein", "text_metrics"]


def levenshtein(a: str, b: str) -> int:
    """The edit distance between ``a`` and ``b`` (unit-cost insertions, deletions and substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1,  # delete ca
                               current[j - 1] + 1,  # insert cb
                               previous[j - 1] + (ca != cb)))  # substitute (free when equal)
        previous = current
    return previous[-1]


def text_metrics(predictions: Sequence[str], targets: Sequence[str]) -> dict:
    """``{"n", "acc", "char_acc", "norm_edit_dis", "cer", "edits", "chars"}`` of predictions against targets (see the
    module docstring); an empty set gives zeros with ``n = 0``."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    n = len(targets)
    exact = char_acc = ned = 0.0
    edits = chars = 0
    for p, g in zip(predictions, targets):
        d = levenshtein(p, g)
        exact += p == g
        char_acc += (1.0 if not p else 0.0) if not g else max(0.0, 1.0 - d / len(g))
        ned += d / max(len(p), len(g)) if (p or g) else 0.0
        edits += d
        chars += len(g)
    if n == 0:
        return {"n": 0, "acc": 0.0, "char_acc": 0.0, "norm_edit_dis": 0.0, "cer": 0.0, "edits": 0, "chars": 0}
    return {"n": n, "acc": exact / n, "char_acc": char_acc / n, "norm_edit_dis": 1.0 - ned / n,
            "cer": edits / chars if chars else float(edits > 0), "edits": edits, "chars": chars}
