"""Text-line crops, as PaddleOCR's ``get_rotate_crop_image`` (``tools/infer/utility.py``) makes them.

The quadrilateral (top-left, top-right, bottom-right, bottom-left) is warped onto an upright rectangle whose
width is the longer of its top and bottom edges and whose height the longer of its left and right edges
(both truncated to int), with bicubic interpolation and replicated borders. A crop at least 1.5 times as high
as wide is a vertical line: it is turned 90 degrees counter-clockwise (``np.rot90``) so that the recogniser
reads it as a horizontal one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["VERTICAL_RATIO", "crop_quad"]

VERTICAL_RATIO = 1.5
"""Height / width from which a crop is rotated by 90 degrees."""


def crop_quad(img: np.ndarray, quad) -> np.ndarray:
    """The upright uint8 crop of ``quad`` (``[4, 2]``, clockwise from top-left) out of ``img`` (HxWx3)."""
    import cv2

    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    if not np.isfinite(pts).all():
        raise ValueError(f"quad has non-finite points: {pts.tolist()}")
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    if width < 1 or height < 1:
        raise ValueError(f"quad {pts.tolist()} is degenerate ({width}x{height} px)")
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(pts, target)
    crop = cv2.warpPerspective(img, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE,
                               flags=cv2.INTER_CUBIC)
    if crop.shape[0] * 1.0 / crop.shape[1] >= VERTICAL_RATIO:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop
