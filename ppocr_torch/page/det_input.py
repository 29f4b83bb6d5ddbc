"""Detector input, as PaddleOCR's ``DetResizeForTest`` (resize type 0) and ``NormalizeImage`` make it.

The image is resized so that its sides are multiples of 32 (the DB networks downsample by 32):

* ``limit_type="max"``: scaled down so that the longer side is ``limit_side_len`` when it is longer;
* ``limit_type="min"``: scaled up so that the shorter side is ``limit_side_len`` when it is shorter;
* ``limit_type="resize_long"``: the longer side scaled to ``limit_side_len`` whatever its size.

Each side is then ``int(side * ratio)`` rounded to the nearest multiple of 32 (Python's ``round``, halves to
even), at least 32. ``max_side_limit`` (PaddleOCR 3.x, 4000 there) scales a result whose longer side exceeds
it back down before the rounding. Images whose ``h + w`` is below 64 are first zero-padded at the bottom and
right to at least 32x32, as PaddleOCR does.

``resize_long`` (``DetResizeForTest(resize_long=N)``, resize type 2, what PP-OCRv5 mobile det's inference.yml asks
for) is another rule: the longer side scaled to N (smaller or larger), each side ``int()``-ed, then rounded *up*
to a multiple of 128. It is not ``limit_type="resize_long"`` (type 0, multiples of 32, to the nearest). Normalisation: ``(x * (1/255) - mean) / std`` in float32,
per channel in the image's own (BGR) order, like PaddleOCR's ``NormalizeImage`` with ``order="hwc"``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError

__all__ = ["LIMIT_TYPES", "det_resize_shape", "resize_long_shape", "resize_for_det", "normalize_for_det",
           "prepare_det_input"]

LIMIT_TYPES = ("max", "min", "resize_long")


def det_resize_shape(h: int, w: int, limit_side_len: int, limit_type: str,
                     max_side_limit: int | None = None) -> tuple[int, int]:
    """``(resize_h, resize_w)`` of an ``h`` x ``w`` image (see the module docstring)."""
    if limit_type not in LIMIT_TYPES:
        raise ValueError(f"limit_type must be one of {', '.join(map(repr, LIMIT_TYPES))}; got {limit_type!r}")
    if isinstance(limit_side_len, bool) or not isinstance(limit_side_len, (int, float)) or limit_side_len <= 0:
        raise ValueError(f"limit_side_len must be a positive number, got {limit_side_len!r}")
    if limit_type == "max":
        ratio = float(limit_side_len) / (h if h > w else w) if max(h, w) > limit_side_len else 1.0
    elif limit_type == "min":
        ratio = float(limit_side_len) / (h if h < w else w) if min(h, w) < limit_side_len else 1.0
    else:
        ratio = float(limit_side_len) / max(h, w)
    resize_h, resize_w = int(h * ratio), int(w * ratio)
    if max_side_limit is not None and max(resize_h, resize_w) > max_side_limit:
        ratio = float(max_side_limit) / max(resize_h, resize_w)
        resize_h, resize_w = int(resize_h * ratio), int(resize_w * ratio)
    resize_h = max(int(round(resize_h / 32) * 32), 32)
    resize_w = max(int(round(resize_w / 32) * 32), 32)
    return resize_h, resize_w


def resize_long_shape(h: int, w: int, resize_long: int) -> tuple[int, int]:
    """``(resize_h, resize_w)`` of PaddleOCR's resize type 2 (``DetResizeForTest(resize_long=...)``)."""
    if isinstance(resize_long, bool) or not isinstance(resize_long, int) or resize_long <= 0:
        raise ValueError(f"resize_long must be a positive integer, got {resize_long!r}")
    ratio = float(resize_long) / (h if h > w else w)
    resize_h, resize_w = int(h * ratio), int(w * ratio)
    return (resize_h + 127) // 128 * 128, (resize_w + 127) // 128 * 128


def _check_bgr(img) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 \
            or img.shape[0] == 0 or img.shape[1] == 0:
        what = f"ndarray {img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise InvalidImageError(f"expected a non-empty uint8 HxWx3 BGR array, got {what}; use image_io.load_image")


def resize_for_det(img: np.ndarray, limit_side_len: int = 960, limit_type: str = "max",
                   max_side_limit: int | None = None, resize_long: int | None = None
                   ) -> tuple[np.ndarray, tuple[float, float]]:
    """The resized uint8 image and ``(ratio_h, ratio_w)`` = resized size / original size; with ``resize_long``,
    resize type 2 (the limit arguments are then unused)."""
    import cv2

    _check_bgr(img)
    h, w = img.shape[:2]
    if h + w < 64:  # PaddleOCR's image_padding: tiny images are padded to 32x32 first
        padded = np.zeros((max(32, h), max(32, w), 3), np.uint8)
        padded[:h, :w] = img
        img = padded
        h, w = img.shape[:2]
    if resize_long is not None:
        resize_h, resize_w = resize_long_shape(h, w, resize_long)
    else:
        resize_h, resize_w = det_resize_shape(h, w, limit_side_len, limit_type, max_side_limit)
    resized = cv2.resize(np.ascontiguousarray(img), (resize_w, resize_h))
    return resized, (resize_h / float(h), resize_w / float(w))


def normalize_for_det(img: np.ndarray, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                      scale: float = 1.0 / 255.0) -> np.ndarray:
    """float32 ``[3, H, W]``: ``(img * scale - mean) / std`` per channel, all in float32 as PaddleOCR."""
    mean32 = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
    std32 = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)
    out = (img.astype(np.float32) * np.float32(scale) - mean32) / std32
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def prepare_det_input(img: np.ndarray, *, limit_side_len: int = 960, limit_type: str = "max",
                      max_side_limit: int | None = None, resize_long: int | None = None,
                      mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> np.ndarray:
    """float32 ``[1, 3, H, W]`` detector input of a uint8 BGR image (resize, then normalise)."""
    resized, _ = resize_for_det(img, limit_side_len, limit_type, max_side_limit, resize_long)
    return normalize_for_det(resized, mean, std)[None]
