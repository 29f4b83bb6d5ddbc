"""PaddleOCR's DB post-processing: a text probability map -> quadrilaterals in original image pixels.

Step by step, as ``DBPostProcess`` (``ppocr/postprocess/db_postprocess.py``) and the detector's
``filter_tag_det_res`` (``tools/infer/predict_det.py``) do it:

1. binarise: ``prob > thresh``; with ``use_dilation`` the mask is dilated by a 2x2 kernel;
2. outer and inner contours of the mask (``cv2.findContours``, ``RETR_LIST``, ``CHAIN_APPROX_SIMPLE``), the
   first ``max_candidates`` of them;
3. per contour, its minimum-area rectangle (:func:`mini_box`); dropped when its short side is below
   ``min_size`` (3);
4. score: the mean probability inside the rectangle (``"fast"``) or inside the contour itself (``"slow"``);
   dropped below ``box_thresh``;
5. unclip: the rectangle is offset outwards by ``area * unclip_ratio / perimeter`` with pyclipper (round
   joins), and its minimum-area rectangle taken again; dropped when its short side is below ``min_size + 2``;
6. scaled from map to image pixels (``round(x / map_w * img_w)``, clipped to ``[0, img_w]``);
7. corners ordered top-left, top-right, bottom-right, bottom-left (:func:`order_points_clockwise`), clipped
   to ``[0, img_w - 1]`` x ``[0, img_h - 1]``, and dropped when a side is 3 px or shorter.

``box_type="poly"`` replaces 3-5 by a polygon (``cv2.approxPolyDP`` with epsilon 0.002 x perimeter, at
least 4 points, fast score, unclipped once, dropped when unclip gives several pieces).

pyclipper (the polygon-offset library PaddleOCR uses) is imported on first use: ``pip install
'ppocr-torch[ocr]'``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import MissingDependencyError

__all__ = ["DBPostProcess", "mini_box", "unclip", "box_score_fast", "box_score_slow", "order_points_clockwise",
           "polygon_area_perimeter"]

_SCORE_MODES = ("fast", "slow")
_BOX_TYPES = ("quad", "poly")


def _pyclipper():
    try:
        import pyclipper
    except ImportError as exc:
        raise MissingDependencyError(
            "page OCR needs pyclipper (the polygon-offset library PaddleOCR's DB post-processing uses): "
            "pip install 'ppocr-torch[ocr]'  (or: pip install pyclipper)") from exc
    return pyclipper


def mini_box(contour) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle of ``contour`` as float32 ``[4, 2]`` and its short side.

    Corner order as PaddleOCR's ``get_mini_boxes``: the four corners sorted by x; of the two left ones the
    upper first, then the upper right, the lower right, the lower left.
    """
    import cv2

    rect = cv2.minAreaRect(contour)
    pts = sorted(list(cv2.boxPoints(rect)), key=lambda p: p[0])
    left_top, left_bottom = (0, 1) if pts[1][1] > pts[0][1] else (1, 0)
    right_top, right_bottom = (2, 3) if pts[3][1] > pts[2][1] else (3, 2)
    box = np.array([pts[left_top], pts[right_top], pts[right_bottom], pts[left_bottom]])
    return box, min(rect[1])


def polygon_area_perimeter(points) -> tuple[float, float]:
    """Area and perimeter of a closed polygon, in float64, summed in the order GEOS (shapely) sums them."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = len(p)
    if n < 3:
        return 0.0, 0.0
    ring = np.concatenate([p, p[:1]])  # closed ring, as shapely stores it
    x0 = ring[0, 0]
    area = 0.0
    for i in range(1, n):
        area += (ring[i, 0] - x0) * (ring[i - 1, 1] - ring[i + 1, 1])
    length = 0.0
    for i in range(n):
        dx, dy = ring[i + 1, 0] - ring[i, 0], ring[i + 1, 1] - ring[i, 1]
        length += math.sqrt(dx * dx + dy * dy)
    return abs(area / 2.0), length


def unclip(box, unclip_ratio: float) -> list:
    """The polygons (lists of integer points) of ``box`` offset outwards by ``area * unclip_ratio / perimeter``
    (pyclipper, round joins, closed polygon)."""
    pyclipper = _pyclipper()
    area, length = polygon_area_perimeter(box)
    distance = area * unclip_ratio / length if length > 0 else 0.0
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return offset.Execute(distance)


def box_score_fast(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean of ``prob`` inside the polygon ``box`` (float points, truncated to int for filling)."""
    import cv2

    h, w = prob.shape[:2]
    box = np.array(box).reshape(-1, 2)  # a copy, in the caller's dtype (float32 corners, like PaddleOCR)
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    box[:, 0] -= xmin
    box[:, 1] -= ymin
    cv2.fillPoly(mask, box.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0]


def box_score_slow(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean of ``prob`` inside the contour itself (integer points)."""
    import cv2

    h, w = prob.shape[:2]
    c = np.reshape(contour, (-1, 2)).copy()
    xmin, xmax = int(np.clip(c[:, 0].min(), 0, w - 1)), int(np.clip(c[:, 0].max(), 0, w - 1))
    ymin, ymax = int(np.clip(c[:, 1].min(), 0, h - 1)), int(np.clip(c[:, 1].max(), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    c[:, 0] -= xmin
    c[:, 1] -= ymin
    cv2.fillPoly(mask, c.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0]


def order_points_clockwise(pts: np.ndarray) -> np.ndarray:
    """float32 ``[4, 2]``: top-left, top-right, bottom-right, bottom-left (the two smallest x are the left
    corners, each pair ordered by y), as PaddleOCR's detector orders them."""
    by_x = pts[np.argsort(pts[:, 0]), :]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1]), :]
    tr, br = right[np.argsort(right[:, 1]), :]
    return np.array([tl, tr, br, bl], dtype=np.float32)


@dataclass(frozen=True)
class DBPostProcess:
    """DB post-processing with PaddleOCR's parameters (defaults: ``DBPostProcess``'s own; the pipelines pass
    the detector's, see :class:`~ppocr_torch.page.pipeline.OCR`).

    Call it with a probability map ``[H, W]`` (or ``[1, 1, H, W]``) and the original image's ``(height,
    width)``; it returns ``(boxes, scores)``: boxes float32 ``[N, 4, 2]`` (quad; integer values, clockwise from
    top-left) or a list of ``[K, 2]`` arrays (poly), in contour order, and their scores.
    """

    thresh: float = 0.3
    box_thresh: float = 0.7
    max_candidates: int = 1000
    unclip_ratio: float = 2.0
    use_dilation: bool = False
    score_mode: str = "fast"
    box_type: str = "quad"
    min_size: int = 3

    def __post_init__(self):
        if self.score_mode not in _SCORE_MODES:
            raise ValueError(f"score_mode must be 'fast' or 'slow', got {self.score_mode!r}")
        if self.box_type not in _BOX_TYPES:
            raise ValueError(f"box_type must be 'quad' or 'poly', got {self.box_type!r}")
        for name in ("thresh", "box_thresh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
        if isinstance(self.unclip_ratio, bool) or not isinstance(self.unclip_ratio, (int, float)) \
                or self.unclip_ratio <= 0:
            raise ValueError(f"unclip_ratio must be a positive number, got {self.unclip_ratio!r}")
        if isinstance(self.max_candidates, bool) or not isinstance(self.max_candidates, int) \
                or self.max_candidates < 1:
            raise ValueError(f"max_candidates must be a positive integer, got {self.max_candidates!r}")

    def __call__(self, prob, image_shape) -> tuple:
        import cv2

        prob = np.asarray(prob, dtype=np.float32)
        if prob.ndim == 4:
            prob = prob[0, 0]
        elif prob.ndim == 3:
            prob = prob[0]
        if prob.ndim != 2:
            raise ValueError(f"expected a probability map [H, W] or [1, 1, H, W], got shape {prob.shape}")
        img_h, img_w = int(image_shape[0]), int(image_shape[1])
        mask = prob > self.thresh
        if self.use_dilation:
            mask = cv2.dilate(mask.astype(np.uint8), np.ones((2, 2), np.uint8))
        if self.box_type == "poly":
            return self._polygons(prob, mask, img_w, img_h)
        boxes, scores = self._quads(prob, mask, img_w, img_h)
        return self._filter(boxes, scores, img_h, img_w)

    def _contours(self, mask):
        import cv2

        outs = cv2.findContours((mask * 255).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        return outs[-2][:self.max_candidates]

    def _quads(self, prob, mask, img_w, img_h):
        map_h, map_w = mask.shape
        boxes, scores = [], []
        for contour in self._contours(mask):
            points, short = mini_box(contour)
            if short < self.min_size:
                continue
            if self.score_mode == "fast":
                score = box_score_fast(prob, points.reshape(-1, 2))
            else:
                score = box_score_slow(prob, contour)
            if self.box_thresh > score:
                continue
            # all the pieces' points together, as PaddleOCR reshapes them (a split is exceedingly rare)
            pieces = unclip(points, self.unclip_ratio)
            if not pieces:
                continue
            expanded = np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces]).reshape(-1, 1, 2)
            box, short = mini_box(expanded)
            if short < self.min_size + 2:
                continue
            box[:, 0] = np.clip(np.round(box[:, 0] / map_w * img_w), 0, img_w)
            box[:, 1] = np.clip(np.round(box[:, 1] / map_h * img_h), 0, img_h)
            boxes.append(box.astype(np.int32))
            scores.append(float(score))
        return boxes, scores

    @staticmethod
    def _filter(boxes, scores, img_h, img_w):
        kept, kept_scores = [], []
        for box, score in zip(boxes, scores):
            box = order_points_clockwise(box)
            box[:, 0] = np.clip(box[:, 0], 0, img_w - 1).astype(np.int32)
            box[:, 1] = np.clip(box[:, 1], 0, img_h - 1).astype(np.int32)
            if int(np.linalg.norm(box[0] - box[1])) <= 3 or int(np.linalg.norm(box[0] - box[3])) <= 3:
                continue
            kept.append(box)
            kept_scores.append(score)
        return np.array(kept, dtype=np.float32).reshape(-1, 4, 2), kept_scores

    def _polygons(self, prob, mask, img_w, img_h):
        import cv2

        map_h, map_w = mask.shape
        polys, scores = [], []
        for contour in self._contours(mask):
            approx = cv2.approxPolyDP(contour, 0.002 * cv2.arcLength(contour, True), True)
            points = approx.reshape(-1, 2)
            if points.shape[0] < 4:
                continue
            score = box_score_fast(prob, points)
            if self.box_thresh > score:
                continue
            pieces = unclip(points, self.unclip_ratio)
            if len(pieces) != 1:
                continue
            poly = np.array(pieces[0], dtype=np.float64).reshape(-1, 2)
            _, short = mini_box(poly.reshape(-1, 1, 2).astype(np.float32))
            if short < self.min_size + 2:
                continue
            poly[:, 0] = np.clip(np.round(poly[:, 0] / map_w * img_w), 0, img_w - 1)
            poly[:, 1] = np.clip(np.round(poly[:, 1] / map_h * img_h), 0, img_h - 1)
            polys.append(poly.astype(np.float32))
            scores.append(float(score))
        return polys, scores
