"""Recognition preprocessing, identical to PaddleOCR's ``TextRecognizer.resize_norm_img``.

PaddleOCR (``tools/infer/predict_rec.py``) resizes every text-line crop to the model height keeping its
aspect ratio (width rounded up, capped at the batch width), maps pixels to ``[-1, 1]`` with
``(x / 255 - 0.5) / 0.5`` in float32, and zero-pads on the right to the batch width
``int(height * max_wh_ratio)``, where ``max_wh_ratio`` starts at ``320 / height`` (``rec_image_shape``
``"3,48,320"``) and grows to the widest ``w / h`` of the batch.

Two batching modes are offered by :func:`prepare_batch`:

* ``"paddle"``: exactly PaddleOCR, one padded batch whose width depends on the widest image in it;
* ``"per_image"``: every image at its own width, so its result does not depend on which other images
  share the batch; images with equal final width are grouped to run in one forward pass.
* ``"throughput"``: every image resized as in ``"per_image"``, then zero-padded on the right to its own
  width rounded up to a bucket (:func:`bucket_width`, at most 1/8 wider), so lines of many widths share
  batches and shapes repeat; a result still depends only on its own image, not on its companions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import InvalidImageError

__all__ = [
    "DEFAULT_MIN_RATIO_WIDTH",
    "DEFAULT_MAX_WIDTH",
    "resize_norm",
    "batch_width_ratio",
    "bucket_width",
    "prepare_batch",
    "sort_for_batching",
]

DEFAULT_MIN_RATIO_WIDTH = 320
"""Base width of PaddleOCR's ``rec_image_shape`` ("3,48,320"): the narrowest batch width."""

DEFAULT_MAX_WIDTH = 32000
"""Default upper bound on a preprocessed width (OpenCV and memory stay comfortable below it)."""

_MODES = ("paddle", "per_image", "throughput")
_HALF = np.float32(0.5)
_255 = np.float32(255)


def _check_image(img: np.ndarray, where: str) -> None:
    """Require a non-empty uint8 HxWx3 array (what :func:`~ppocr_torch.image_io.load_image` returns)."""
    if not isinstance(img, np.ndarray):
        raise InvalidImageError(
            f"{where}: expected a numpy array, got {type(img).__name__}; use image_io.load_image"
        )
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise InvalidImageError(
            f"{where}: expected a uint8 HxWx3 BGR array, got ndarray {img.dtype} {img.shape}; "
            "use image_io.load_image"
        )
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InvalidImageError(
            f"{where}: empty image {img.shape[1]}x{img.shape[0]} (width x height)"
        )


def _check_height(height: int) -> None:
    if int(height) != height or height < 1:
        raise ValueError(f"height must be a positive integer, got {height!r}")


def resize_norm(img_bgr: np.ndarray, height: int, max_wh_ratio: float) -> np.ndarray:
    """Resize, normalise and right-pad one image exactly like PaddleOCR's ``resize_norm_img``.

    Args:
        img_bgr: uint8 ``HxWx3`` BGR image.
        height: model input height (e.g. 48 or 32).
        max_wh_ratio: batch width/height ratio; the output width is ``int(height * max_wh_ratio)``.

    Returns:
        float32 array ``[3, height, int(height * max_wh_ratio)]`` with values in ``[-1, 1]``; columns
        right of the resized image are 0.

    Raises:
        InvalidImageError: ``img_bgr`` is not a non-empty uint8 HxWx3 array.
        ValueError: ``height`` is not a positive integer or the output width would be below 1.
    """
    _check_image(img_bgr, "image")
    _check_height(height)
    height = int(height)
    img_w = int(height * max_wh_ratio)
    if img_w < 1:
        raise ValueError(
            f"max_wh_ratio {max_wh_ratio!r} gives an output width of {img_w} at height {height}"
        )
    out = np.zeros((3, height, img_w), dtype=np.float32)
    _resize_norm_into(img_bgr, out)
    return out


def _resize_norm_into(img_bgr: np.ndarray, out: np.ndarray) -> None:
    """Write the resized, normalised image into the zero-filled ``out`` ``[3, height, img_w]``."""
    import cv2

    _, height, img_w = out.shape
    h, w = img_bgr.shape[:2]
    ratio = w / float(h)
    if math.ceil(height * ratio) > img_w:
        resized_w = img_w
    else:
        resized_w = int(math.ceil(height * ratio))
    resized = cv2.resize(np.ascontiguousarray(img_bgr), (resized_w, height))
    # PaddleOCR: astype(float32) -> HWC->CHW -> / 255 -> -= 0.5 -> /= 0.5, all in float32. The same
    # element-wise float32 operations, written straight into the output (bit-identical, no temporaries).
    view = out[:, :, :resized_w]
    np.divide(resized.transpose(2, 0, 1), _255, out=view, dtype=np.float32)
    view -= _HALF
    view /= _HALF


def batch_width_ratio(
    images: Sequence[np.ndarray], height: int, base_width: int = DEFAULT_MIN_RATIO_WIDTH
) -> float:
    """PaddleOCR's ``max_wh_ratio``: ``max(base_width / height, max(w / h for each image))``."""
    ratio = base_width / height
    for img in images:
        h, w = img.shape[:2]
        ratio = max(ratio, w * 1.0 / h)
    return ratio


def bucket_width(width: int, base_width: int = DEFAULT_MIN_RATIO_WIDTH) -> int:
    """The padded width of an image whose own width is ``width`` in ``"throughput"`` mode.

    ``base_width`` and below stay as they are; above, the width is rounded up to a multiple of
    ``max(64, 2 ** floor(log2(width)) // 8)``: at most 64 px or 1/8 wider, one bucket per step.
    """
    if width <= base_width:
        return int(width)
    step = max(64, (1 << (int(width).bit_length() - 1)) // 8)
    return -(-int(width) // step) * step


def _own_width(img: np.ndarray, height: int, base_width: int) -> int:
    """Width an image gets when batched alone: ``int(height * max(base_width/height, w/h))``."""
    return int(height * batch_width_ratio([img], height, base_width))


def prepare_batch(
    images: Sequence[np.ndarray],
    height: int,
    *,
    mode: str = "per_image",
    base_width: int = DEFAULT_MIN_RATIO_WIDTH,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> np.ndarray | list[tuple[list[int], np.ndarray]]:
    """Preprocess uint8 BGR images into model input.

    Args:
        images: uint8 ``HxWx3`` BGR arrays.
        height: model input height.
        mode: ``"paddle"`` returns one float32 array ``[N, 3, height, W]`` padded to the common width
            ``int(height * batch_width_ratio(images, height, base_width))``, exactly like PaddleOCR for
            a batch made of ``images``. ``"per_image"`` gives every image its own width
            ``int(height * max(base_width / height, w / h))`` and returns a list of groups
            ``(indices, array[n, 3, height, width])``, one per distinct width, in ascending width order
            with indices ascending inside a group; results do not depend on the batch composition.
            ``"throughput"`` returns the same kind of groups, one per bucket width
            (:func:`bucket_width` of the own width); each image is resized to its own width and
            zero-padded to its bucket.
        base_width: narrowest width (PaddleOCR's ``rec_image_shape`` width, 320).
        max_width: largest width allowed for any image's own width.

    Raises:
        ValueError: unknown ``mode`` or bad ``height``.
        InvalidImageError: an image is not a non-empty uint8 HxWx3 array, or its width at this height
            would exceed ``max_width``.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in _MODES)}; got {mode!r}")
    _check_height(height)
    height = int(height)
    widths: list[int] = []
    for i, img in enumerate(images):
        _check_image(img, f"image {i}")
        width = _own_width(img, height, base_width)
        if width > max_width:
            h, w = img.shape[:2]
            raise InvalidImageError(
                f"image {i} ({w}x{h}, width x height) would be {width} px wide at height {height}, "
                f"above max_width {max_width}; split the text line into shorter pieces"
            )
        widths.append(width)

    if mode == "paddle":
        ratio = batch_width_ratio(images, height, base_width)
        batch = np.zeros((len(images), 3, height, int(height * ratio)), dtype=np.float32)
        for i, img in enumerate(images):
            _resize_norm_into(img, batch[i])
        return batch

    groups: dict[int, list[int]] = {}
    for i, width in enumerate(widths):
        key = bucket_width(width, base_width) if mode == "throughput" else width
        groups.setdefault(key, []).append(i)
    result: list[tuple[list[int], np.ndarray]] = []
    for width in sorted(groups):
        indices = groups[width]
        arr = np.zeros((len(indices), 3, height, width), dtype=np.float32)
        for j, i in enumerate(indices):
            _resize_norm_into(images[i], arr[j, :, :, :widths[i]])
        result.append((indices, arr))
    return result


def sort_for_batching(images: Sequence[np.ndarray], height: int) -> list[int]:
    """PaddleOCR's processing order: indices sorted by ``w / h`` ascending (``np.argsort``).

    Uses numpy's default sort kind like PaddleOCR, so the order among images with *equal* ratios is
    whatever numpy gives (not guaranteed stable). ``height`` does not affect the order; it is accepted
    for symmetry with the other functions.
    """
    del height  # the order depends on the aspect ratio only
    ratios = np.array([img.shape[1] / float(img.shape[0]) for img in images], dtype=np.float64)
    return [int(i) for i in np.argsort(ratios)]
