"""Bad or unusual input through the public API: a correct result or a typed error naming the input,
never a crash, a hang or a silent wrong answer."""

import io

import cv2
import numpy as np
import pytest

from helpers import ROOT
from reference import Official, ctc_decode, resize_norm_img

SAMPLE = ROOT / "samples" / "sample_line.png"
SAMPLE_TEXT = (ROOT / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def rec():
    from ppocr_torch import Recognizer

    return Recognizer()


@pytest.fixture(scope="module")
def sample_bgr():
    return cv2.imread(str(SAMPLE))


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"this is not an image at all" * 10), "decod"),
])
def test_bad_files_raise_typed_errors_naming_the_file(rec, tmp_path, make, fragment):
    from ppocr_torch.errors import InvalidImageError

    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InvalidImageError) as info:
        rec(str(path))
    assert "bad.png" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("arr", [np.zeros((0, 10, 3), np.uint8), np.zeros((10, 0), np.uint8),
                                 np.zeros((4, 4, 3), np.int64), np.full((8, 8), 2.5, np.float32)])
def test_unusable_arrays_raise_value_errors(rec, arr):
    from ppocr_torch.errors import InvalidImageError

    with pytest.raises(InvalidImageError) as info:
        rec([SAMPLE, arr])
    assert "input 1" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_one_pixel_image_gives_a_result(rec):
    r = rec(np.full((1, 1, 3), 255, np.uint8))
    assert r.text == "" and r.score == 0.0


def test_gray_rgba_16bit_and_float_versions_of_the_sample_read_the_same(rec, sample_bgr):
    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2RGB), np.full(gray.shape, 255, np.uint8)])
    u16 = sample_bgr.astype(np.uint16) * 257
    f32 = sample_bgr.astype(np.float32) / 255
    ok, png16 = cv2.imencode(".png", u16)
    for img, kw in [(sample_bgr, {}), (u16, {}), (f32, {}), (png16.tobytes(), {})]:
        assert rec(img).text == SAMPLE_TEXT
    assert rec(gray).text == rec(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).text
    from ppocr_torch import Recognizer

    rgb_rec = Recognizer(rec.model, channel_order="rgb")
    assert rgb_rec(rgba).text == SAMPLE_TEXT


def test_a_20000_px_line_matches_the_official_model(rec, sample_bgr, official_source):
    """A very long line is read in one pass, exactly as the official model reads it."""
    reps = -(-20000 // sample_bgr.shape[1])
    line = np.ascontiguousarray(np.tile(sample_bgr, (1, reps, 1))[:, :20000])
    ours = rec(line)
    path, chars = official_source("PP-OCRv6_small_rec")
    charset = ["blank"] + [c for c in chars if c != ""] + [" "]
    h = rec.spec.input_height
    x = resize_norm_img(line, h, max(320 / h, line.shape[1] / line.shape[0]))[None]
    (text, score), = ctc_decode(Official(path)(x), charset)
    assert ours.text == text
    assert abs(ours.score - score) <= 1e-4
    assert text.count("Green Tea") >= reps - 1


def test_pil_images_in_any_mode(rec):
    from PIL import Image

    img = Image.open(SAMPLE)
    for mode in ("RGB", "RGBA"):
        assert rec(img.convert(mode)).text == SAMPLE_TEXT
    for mode in ("L", "P", "CMYK", "1"):  # lossy modes: same as that image handed over as an RGB array
        converted = img.convert(mode)
        as_rgb = np.asarray(converted.convert("RGB"))
        assert rec(converted).text == rec(as_rgb[:, :, ::-1]).text, mode
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    assert rec(buf.getvalue()).text == SAMPLE_TEXT


def test_special_files_and_unusable_path_strings_fail_only_their_own_entry(rec, tmp_path):
    """A FIFO (which would block a plain open), /dev/zero (endless), a NUL character and a lone surrogate (which
    the OS refuses with a bare ValueError) each give a typed error in their slot; the other inputs are read."""
    import os
    import threading

    from ppocr_torch.errors import InvalidImageError

    items = [str(SAMPLE), "a\x00.png", "a\ud800.png", str(tmp_path)]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        items.append(str(tmp_path / "pipe.png"))
    if os.path.exists("/dev/zero"):
        items.append("/dev/zero")
    items.append(SAMPLE)
    box = {}
    thread = threading.Thread(target=lambda: box.update(out=rec(items, errors="return")), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "recognize blocked"
    out = box["out"]
    assert len(out) == len(items)
    assert out[0].text == SAMPLE_TEXT and out[-1].text == SAMPLE_TEXT
    for i, res in enumerate(out[1:-1], start=1):
        assert isinstance(res, InvalidImageError), (items[i], res)
        assert str(res).startswith(f"input {i} (path {items[i]!r}): "), res
    assert "NUL character" in str(out[1]) and "surrogates not allowed" in str(out[2])
    assert "is a directory" in str(out[3])
    if hasattr(os, "mkfifo"):
        assert "is a FIFO (named pipe), not a regular file" in str(out[4])
    with pytest.raises(InvalidImageError, match="input 1 .*NUL character"):
        rec([SAMPLE, "a\x00.png"])
