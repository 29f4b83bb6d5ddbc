"""Tests of ppocr_torch.preprocess against hand-computed sizes and a straightforward reference."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ppocr_torch.errors import InvalidImageError
from ppocr_torch.preprocess import (
    DEFAULT_MIN_RATIO_WIDTH,
    batch_width_ratio,
    prepare_batch,
    resize_norm,
    sort_for_batching,
)


def _img(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _reference(img: np.ndarray, height: int, max_wh_ratio: float) -> np.ndarray:
    """PaddleOCR's resize_norm_img, written out plainly."""
    img_w = int(height * max_wh_ratio)
    h, w = img.shape[:2]
    resized_w = min(img_w, int(math.ceil(height * w / float(h))))
    resized = cv2.resize(img, (resized_w, height)).astype("float32")
    resized = resized.transpose((2, 0, 1)) / 255
    resized -= 0.5
    resized /= 0.5
    out = np.zeros((3, height, img_w), dtype=np.float32)
    out[:, :, :resized_w] = resized
    return out


def test_default_base_width() -> None:
    assert DEFAULT_MIN_RATIO_WIDTH == 320


def test_resize_norm_100x25_at_48() -> None:
    img = _img(100, 25)
    ratio = batch_width_ratio([img], 48)
    assert ratio == pytest.approx(320 / 48)  # 4 < 6.67
    out = resize_norm(img, 48, ratio)
    assert out.dtype == np.float32
    assert out.shape == (3, 48, 320)  # int(48 * 320/48) = 320
    # ratio 4 -> resized width 192, zeros from column 192 on
    assert np.all(out[:, :, 192:] == 0)
    assert np.any(out[:, :, 191] != 0)
    assert np.array_equal(out, _reference(img, 48, ratio))


def test_resize_norm_1000x10_at_48() -> None:
    img = _img(1000, 10)
    ratio = batch_width_ratio([img], 48)
    assert ratio == 100.0
    out = resize_norm(img, 48, ratio)
    assert out.shape == (3, 48, 4800)
    assert np.array_equal(out, _reference(img, 48, ratio))


def test_resize_norm_fractional_width() -> None:
    # 33x10 at height 48: 48 * 3.3 = 158.4 -> ceil 159; padded to 320
    img = np.full((10, 33, 3), 255, dtype=np.uint8)
    out = resize_norm(img, 48, 320 / 48)
    assert out.shape == (3, 48, 320)
    assert np.all(out[:, :, :159] == 1.0)
    assert np.all(out[:, :, 159:] == 0.0)


def test_resize_norm_height_32() -> None:
    img = _img(30, 10)
    out = resize_norm(img, 32, batch_width_ratio([img], 32))
    assert out.shape == (3, 32, 320)  # 320 / 32 = 10 > 3
    assert np.array_equal(out, _reference(img, 32, 10.0))


def test_resize_norm_clamped_to_batch_width() -> None:
    # a 4:1 image with max_wh_ratio 2 at height 48: batch width 96, resized width capped at 96
    img = _img(100, 25)
    out = resize_norm(img, 48, 2.0)
    assert out.shape == (3, 48, 96)
    assert np.array_equal(out, _reference(img, 48, 2.0))
    # no padding: the last column holds image data (normalised random pixels are never all 0.0)
    assert np.any(out[:, :, 95] != 0)


@pytest.mark.parametrize(
    "w,h,height,ratio",
    [(100, 25, 48, 320 / 48), (57, 31, 48, 10.0), (640, 48, 48, 640 / 48), (13, 77, 32, 10.0),
     (1, 1, 48, 320 / 48), (500, 3, 32, 500 / 3), (321, 48, 48, 321 / 48)],
)
def test_resize_norm_matches_reference(w: int, h: int, height: int, ratio: float) -> None:
    img = _img(w, h, seed=w * 1000 + h)
    assert np.array_equal(resize_norm(img, height, ratio), _reference(img, height, ratio))


def test_normalisation_range() -> None:
    white = np.full((10, 20, 3), 255, dtype=np.uint8)
    black = np.zeros((10, 20, 3), dtype=np.uint8)
    out_w = resize_norm(white, 48, 320 / 48)
    out_b = resize_norm(black, 48, 320 / 48)
    # 20x10 -> resized width 96; data columns are exactly +1 / -1, padding exactly 0
    assert np.all(out_w[:, :, :96] == 1.0)
    assert np.all(out_b[:, :, :96] == -1.0)
    assert np.all(out_w[:, :, 96:] == 0.0) and np.all(out_b[:, :, 96:] == 0.0)
    # mid-gray 51 -> (51/255 - 0.5)/0.5 = -0.6
    gray = np.full((10, 20, 3), 51, dtype=np.uint8)
    assert resize_norm(gray, 48, 320 / 48)[0, 0, 0] == pytest.approx(-0.6, abs=1e-6)


def test_channel_layout_chw_bgr_kept() -> None:
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[..., 2] = 255  # red in BGR
    out = resize_norm(img, 8, 1.0)
    assert out.shape == (3, 8, 8)
    assert np.all(out[0] == -1.0) and np.all(out[1] == -1.0) and np.all(out[2] == 1.0)


def test_1x1_image() -> None:
    img = np.full((1, 1, 3), 255, dtype=np.uint8)
    out = resize_norm(img, 48, 320 / 48)
    assert out.shape == (3, 48, 320)
    assert np.all(out[:, :, :48] == 1.0)  # 1:1 -> 48 columns
    assert np.all(out[:, :, 48:] == 0.0)


def test_non_contiguous_input() -> None:
    base = _img(60, 20)
    view = base[:, ::-1]
    assert np.array_equal(resize_norm(view, 48, 320 / 48), _reference(view.copy(), 48, 320 / 48))


def test_resize_norm_rejects_bad_images() -> None:
    with pytest.raises(InvalidImageError):
        resize_norm(np.zeros((10, 10), np.uint8), 48, 320 / 48)
    with pytest.raises(InvalidImageError):
        resize_norm(np.zeros((10, 10, 3), np.float32), 48, 320 / 48)
    with pytest.raises(InvalidImageError, match="empty image"):
        resize_norm(np.zeros((0, 10, 3), np.uint8), 48, 320 / 48)


def test_batch_width_ratio() -> None:
    assert batch_width_ratio([], 48) == 320 / 48
    assert batch_width_ratio([_img(100, 25)], 48) == 320 / 48
    assert batch_width_ratio([_img(100, 25), _img(1000, 10)], 48) == 100.0
    assert batch_width_ratio([_img(100, 25)], 48, base_width=64) == 4.0


# images used by the batching tests: ratios 4, 4, 100, 2
_BATCH = [_img(100, 25, 1), _img(40, 10, 2), _img(1000, 10, 3), _img(20, 10, 4)]


def test_prepare_batch_paddle() -> None:
    batch = prepare_batch(_BATCH, 48, mode="paddle")
    assert isinstance(batch, np.ndarray)
    assert batch.dtype == np.float32
    assert batch.shape == (4, 3, 48, 4800)  # int(48 * 100)
    for i, img in enumerate(_BATCH):
        assert np.array_equal(batch[i], _reference(img, 48, 100.0))


def test_prepare_batch_per_image_groups() -> None:
    groups = prepare_batch(_BATCH, 48)  # default mode "per_image"
    assert isinstance(groups, list)
    assert [idx for idx, _ in groups] == [[0, 1, 3], [2]]
    (idx_a, arr_a), (idx_b, arr_b) = groups
    assert arr_a.shape == (3, 3, 48, 320)
    assert arr_b.shape == (1, 3, 48, 4800)
    for j, i in enumerate(idx_a):
        assert np.array_equal(arr_a[j], _reference(_BATCH[i], 48, 320 / 48))
    assert np.array_equal(arr_b[0], _reference(_BATCH[2], 48, 100.0))


def test_per_image_independent_of_batch() -> None:
    alone = prepare_batch([_BATCH[0]], 48)
    together = prepare_batch(_BATCH, 48)
    assert np.array_equal(alone[0][1][0], together[0][1][0])
    # in "paddle" mode the same image is padded further, but its first 320 columns agree
    paddle = prepare_batch(_BATCH, 48, mode="paddle")
    assert np.array_equal(paddle[0][:, :, :320], alone[0][1][0])
    assert np.all(paddle[0][:, :, 320:] == 0)


def test_prepare_batch_empty() -> None:
    assert prepare_batch([], 48) == []
    assert prepare_batch([], 48, mode="paddle").shape == (0, 3, 48, 320)


def test_prepare_batch_bad_mode() -> None:
    with pytest.raises(ValueError, match="per_image") as info:
        prepare_batch(_BATCH, 48, mode="fast")
    assert not isinstance(info.value, InvalidImageError)


@pytest.mark.parametrize("mode", ["paddle", "per_image"])
def test_prepare_batch_max_width(mode: str) -> None:
    # image 2 (1000x10) is 4800 px wide at height 48
    with pytest.raises(InvalidImageError) as info:
        prepare_batch(_BATCH, 48, mode=mode, max_width=4000)
    msg = str(info.value)
    assert "image 2" in msg and "1000x10" in msg and "4800" in msg and "split" in msg
    # exactly at the limit is allowed
    assert prepare_batch(_BATCH, 48, mode=mode, max_width=4800) is not None


def test_prepare_batch_default_max_width() -> None:
    long_line = np.zeros((10, 7000, 3), np.uint8)  # 33600 px at height 48
    with pytest.raises(InvalidImageError, match="image 0"):
        prepare_batch([long_line], 48)


def test_sort_for_batching() -> None:
    # ratios 4, 4, 100, 2 -> 2 first, then the two 4s, then 100
    order = sort_for_batching(_BATCH, 48)
    assert order[0] == 3 and order[3] == 2 and sorted(order[1:3]) == [0, 1]
    assert sort_for_batching([_img(30, 10), _img(10, 10), _img(50, 10)], 48) == [1, 0, 2]
    assert sort_for_batching([], 48) == []
