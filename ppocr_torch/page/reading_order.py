"""PaddleOCR's reading order of detected lines (``sorted_boxes`` in ``tools/infer/predict_system.py``).

Boxes are sorted by the top-left corner's (y, x); then, walking down the list, a box whose top-left y is
less than ``LINE_TOLERANCE`` (10 px) from its predecessor's and whose x is smaller moves before it, and keeps
moving up while the same holds (one bubble pass per box), so that boxes of one visual line read left to
right even when their tops differ by a few pixels.
"""

from __future__ import annotations

__all__ = ["LINE_TOLERANCE", "reading_order"]

LINE_TOLERANCE = 10
"""Pixels of top-left y within which two boxes count as one line."""


def reading_order(boxes) -> list[int]:
    """Indices of ``boxes`` (each ``[4, 2]``, top-left first) in PaddleOCR's reading order."""
    tops = [(float(b[0][1]), float(b[0][0])) for b in boxes]
    order = sorted(range(len(tops)), key=lambda i: tops[i])  # stable, like Python's sorted in PaddleOCR
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            below, above = tops[order[j + 1]], tops[order[j]]
            if abs(below[0] - above[0]) < LINE_TOLERANCE and below[1] < above[1]:
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return order
