"""Tests of ppocr_torch.image_io: every input kind, dtype, channel layout and error case."""

from __future__ import annotations

import io
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image

from ppocr_torch.errors import InvalidImageError
from ppocr_torch.image_io import describe_input, load_image

# A 2x3 BGR test image with distinct, hand-picked pixels.
BGR = np.array(
    [
        [[0, 0, 255], [0, 255, 0], [255, 0, 0]],
        [[10, 20, 30], [200, 100, 50], [255, 255, 255]],
    ],
    dtype=np.uint8,
)


def _check_output(out: np.ndarray, h: int, w: int) -> None:
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == (h, w, 3)
    assert out.flags.c_contiguous


def _png_bytes(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


# ---------------------------------------------------------------- paths and bytes


def test_png_path_str_and_pathlike(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "img.png"
    assert cv2.imwrite(str(p), BGR)
    for obj in (str(p), p):
        out = load_image(obj)
        _check_output(out, 2, 3)
        assert np.array_equal(out, BGR)


def test_channel_order_ignored_for_files(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "img.png"
    assert cv2.imwrite(str(p), BGR)
    assert np.array_equal(load_image(p, channel_order="rgb"), BGR)


def test_jpeg_path(tmp_path: pathlib.Path) -> None:
    img = np.full((8, 16, 3), (40, 120, 200), dtype=np.uint8)
    p = tmp_path / "img.jpg"
    assert cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    out = load_image(p)
    _check_output(out, 8, 16)
    # lossy, but a flat colour at quality 100 stays within a couple of levels
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 3


def test_jpeg_exif_orientation_applied() -> None:
    # 2 rows x 4 cols, left half white; EXIF orientation 6 = rotate 90 degrees clockwise on display
    arr = np.zeros((2, 4, 3), dtype=np.uint8)
    arr[:, :2] = 255
    ex = Image.Exif()
    ex[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", exif=ex, quality=100)
    out = load_image(buf.getvalue())
    _check_output(out, 4, 2)  # rotated: 4 rows x 2 cols like PaddleOCR's cv2.imread


def test_16bit_png(tmp_path: pathlib.Path) -> None:
    img16 = np.array([[0, 65535, 257, 128, 129]], dtype=np.uint16)
    p = tmp_path / "img16.png"
    assert cv2.imwrite(str(p), img16)
    out = load_image(p)
    _check_output(out, 1, 5)
    # round(x / 257): 0 -> 0, 65535 -> 255, 257 -> 1, 128 -> 0 (0.498), 129 -> 1 (0.502)
    assert out[0, :, 0].tolist() == [0, 255, 1, 0, 1]
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


def test_gray_png(tmp_path: pathlib.Path) -> None:
    gray = np.array([[0, 77, 255]], dtype=np.uint8)
    p = tmp_path / "gray.png"
    assert cv2.imwrite(str(p), gray)
    out = load_image(p)
    _check_output(out, 1, 3)
    assert out[0].tolist() == [[0, 0, 0], [77, 77, 77], [255, 255, 255]]


def test_rgba_png_composited_over_white(tmp_path: pathlib.Path) -> None:
    bgra = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128], [10, 20, 30, 255]]], np.uint8)
    p = tmp_path / "rgba.png"
    assert cv2.imwrite(str(p), bgra)
    out = load_image(p)
    _check_output(out, 1, 4)
    # alpha 0 -> white; alpha 255 -> colour; black at alpha 128 -> 255*127/255 = 127
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 0], [127, 127, 127], [10, 20, 30]]


def test_bytes_bytearray_memoryview() -> None:
    data = _png_bytes(BGR)
    for obj in (data, bytearray(data), memoryview(data)):
        out = load_image(obj)
        _check_output(out, 2, 3)
        assert np.array_equal(out, BGR)


# ---------------------------------------------------------------- numpy


def test_numpy_bgr_default_and_rgb() -> None:
    rgb = np.array([[[255, 0, 0], [1, 2, 3]]], dtype=np.uint8)  # pure red first in RGB
    out = load_image(rgb, channel_order="rgb")
    assert out[0].tolist() == [[0, 0, 255], [3, 2, 1]]
    out_bgr = load_image(rgb)  # default "bgr": taken as is
    assert out_bgr[0].tolist() == [[255, 0, 0], [1, 2, 3]]


def test_numpy_gray_2d_and_hw1() -> None:
    gray = np.array([[5, 250]], dtype=np.uint8)
    for arr in (gray, gray[:, :, None]):
        out = load_image(arr)
        _check_output(out, 1, 2)
        assert out[0].tolist() == [[5, 5, 5], [250, 250, 250]]


def test_numpy_bgra_and_rgba() -> None:
    px = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [255, 255, 255, 51]]], dtype=np.uint8)
    out = load_image(px)
    assert out[0].tolist() == [[255, 255, 255], [10, 20, 30], [255, 255, 255]]
    # RGBA order: colour reversed; alpha 0 -> white
    out_rgb = load_image(px, channel_order="rgb")
    assert out_rgb[0].tolist() == [[255, 255, 255], [30, 20, 10], [255, 255, 255]]
    # black at alpha 51 (20%) over white: 255 * 204 / 255 = 204
    black = np.array([[[0, 0, 0, 51]]], dtype=np.uint8)
    assert load_image(black)[0, 0].tolist() == [204, 204, 204]


def test_numpy_gray_alpha() -> None:
    la = np.array([[[0, 0], [0, 255], [100, 255]]], dtype=np.uint8)
    assert load_image(la)[0].tolist() == [[255] * 3, [0] * 3, [100] * 3]


def test_numpy_uint16() -> None:
    arr = np.array([[0, 65535, 32896, 32767]], dtype=np.uint16)
    # 32896 / 257 = 128 exactly; 32767 / 257 = 127.498 -> 127
    assert load_image(arr)[0, :, 0].tolist() == [0, 255, 128, 127]


def test_numpy_uint16_rgb() -> None:
    arr = np.zeros((1, 1, 3), dtype=np.uint16)
    arr[0, 0, 0] = 65535  # red in RGB
    assert load_image(arr, channel_order="rgb")[0, 0].tolist() == [0, 0, 255]


def test_numpy_bool() -> None:
    arr = np.array([[True, False]])
    assert load_image(arr)[0].tolist() == [[255] * 3, [0] * 3]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_float(dtype: type) -> None:
    arr = np.array([[0.0, 1.0, 0.5, 0.25]], dtype=dtype)
    # round(x*255): 0, 255, 127.5 -> 128 (half to even), 63.75 -> 64
    assert load_image(arr)[0, :, 0].tolist() == [0, 255, 128, 64]


def test_numpy_non_contiguous_and_negative_stride() -> None:
    big = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    view = big[::2, ::-1]  # rows 0 and 2, columns reversed
    out = load_image(view)
    _check_output(out, 2, 6)
    assert out[0, 0].tolist() == big[0, 5].tolist()
    assert out[1, 5].tolist() == big[2, 0].tolist()
    rgb_view = big[:, :, ::-1][1:3]  # negative channel stride
    out_rgb = load_image(rgb_view, channel_order="rgb")
    assert np.array_equal(out_rgb, big[1:3])


def test_numpy_input_not_mutated_and_not_aliased() -> None:
    arr = np.array([[[1, 2, 3, 0]]], dtype=np.uint8)
    before = arr.copy()
    load_image(arr, channel_order="rgb")
    assert np.array_equal(arr, before)
    bgr = np.array([[[1, 2, 3]]], dtype=np.uint8)
    out = load_image(bgr)
    out[...] = 99
    assert bgr[0, 0].tolist() == [1, 2, 3]


def test_numpy_readonly_input() -> None:
    arr = np.array([[[1, 2, 3]]], dtype=np.uint8)
    arr.flags.writeable = False
    assert load_image(arr)[0, 0].tolist() == [1, 2, 3]


def test_tiny_1x1() -> None:
    assert load_image(np.array([[7]], dtype=np.uint8)).shape == (1, 1, 3)
    assert load_image(_png_bytes(np.array([[[1, 2, 3]]], np.uint8)))[0, 0].tolist() == [1, 2, 3]


# ---------------------------------------------------------------- PIL


def test_pil_rgb_red_is_bgr() -> None:
    im = Image.new("RGB", (2, 1), (255, 0, 0))
    out = load_image(im)
    _check_output(out, 1, 2)
    assert out[0, 0].tolist() == [0, 0, 255]
    # channel_order does not apply to PIL images (always RGB)
    assert load_image(im, channel_order="bgr")[0, 0].tolist() == [0, 0, 255]


def test_pil_rgba_transparent_is_white() -> None:
    im = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert load_image(im)[0, 0].tolist() == [255, 255, 255]
    im2 = Image.new("RGBA", (1, 1), (0, 0, 255, 255))  # opaque blue
    assert load_image(im2)[0, 0].tolist() == [255, 0, 0]


def test_pil_l_and_1() -> None:
    assert load_image(Image.new("L", (1, 1), 77))[0, 0].tolist() == [77, 77, 77]
    im1 = Image.new("1", (2, 1), 0)
    im1.putpixel((1, 0), 1)
    assert load_image(im1)[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def test_pil_la() -> None:
    im = Image.new("LA", (2, 1), (0, 0))
    im.putpixel((1, 0), (30, 255))
    assert load_image(im)[0].tolist() == [[255] * 3, [30] * 3]


def test_pil_palette_with_transparency() -> None:
    im = Image.new("P", (2, 1), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))  # 0: red, 1: green
    im.putpixel((1, 0), 1)
    assert load_image(im)[0].tolist() == [[0, 0, 255], [0, 255, 0]]
    im.info["transparency"] = 0  # index 0 transparent; what shows is light green (luminance 150) -> black
    assert load_image(im)[0].tolist() == [[0, 0, 0], [0, 255, 0]]
    im.putpalette([255, 0, 0, 0, 0, 128] + [0] * (256 * 3 - 6))  # 1: dark blue -> white
    assert load_image(im)[0].tolist() == [[255, 255, 255], [128, 0, 0]]


def test_light_content_on_transparency_gets_a_dark_background() -> None:
    """White text exported on a transparent background (UI screenshots, PNG exports) must stay visible: the
    background is chosen against the alpha-weighted colour of what is shown."""
    white_text = np.zeros((1, 4, 4), np.uint8)
    white_text[..., :3] = 255
    white_text[0, :, 3] = [0, 255, 128, 0]
    assert load_image(white_text)[0].tolist() == [[0] * 3, [255] * 3, [128] * 3, [0] * 3]
    dark_text = white_text.copy()
    dark_text[..., :3] = 20
    assert load_image(dark_text)[0].tolist() == [[255] * 3, [20] * 3, [137] * 3, [255] * 3]
    gray_alpha = np.array([[[250, 0], [250, 200]]], np.uint8)  # light gray text, HxWx2
    assert load_image(gray_alpha)[0].tolist() == [[0] * 3, [196] * 3]


def test_pil_cmyk() -> None:
    # CMYK (0, 0, 0, 0) is white; (0, 255, 255, 0) is red
    im = Image.new("CMYK", (2, 1), (0, 0, 0, 0))
    im.putpixel((1, 0), (0, 255, 255, 0))
    assert load_image(im)[0].tolist() == [[255, 255, 255], [0, 0, 255]]


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_pil_16bit_modes(mode: str) -> None:
    im = Image.new(mode, (3, 1), 0)
    im.putpixel((1, 0), 65535)
    im.putpixel((2, 0), 257)
    assert load_image(im)[0, :, 0].tolist() == [0, 255, 1]


def test_pil_mode_i_out_of_range() -> None:
    im = Image.new("I", (1, 1), 70000)
    with pytest.raises(InvalidImageError, match="PIL.Image mode I 1x1"):
        load_image(im)


def test_pil_float_mode() -> None:
    im = Image.new("F", (2, 1), 1.0)
    im.putpixel((0, 0), 0.5)
    assert load_image(im)[0, :, 0].tolist() == [128, 255]
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        load_image(Image.new("F", (1, 1), 200.0))


def test_pil_from_file(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "pil.png"
    Image.new("RGB", (3, 2), (0, 128, 255)).save(p)
    with Image.open(p) as im:
        out = load_image(im)
    _check_output(out, 2, 3)
    assert out[1, 2].tolist() == [255, 128, 0]


# ---------------------------------------------------------------- describe_input


def test_describe_input() -> None:
    assert describe_input("x.png") == "path 'x.png'"
    assert describe_input(pathlib.Path("x.png")) == "path 'x.png'"
    assert describe_input(b"\0" * 1234) == "bytes (1234 B)"
    assert describe_input(np.zeros((32, 100), np.uint16)) == "ndarray uint16 (32, 100)"
    assert describe_input(Image.new("RGBA", (100, 32))) == "PIL.Image mode RGBA 100x32"
    assert describe_input("a.png", index=3) == "input 3 (path 'a.png')"


# ---------------------------------------------------------------- errors


def _raises(obj: object, *fragments: str, **kwargs: object) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as info:
        load_image(obj, **kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    msg = str(err)
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return err


def test_error_empty_file(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    _raises(str(p), f"path '{p}'", "empty file")


def test_error_empty_file_named(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.png"
    p.write_bytes(b"")
    _raises(str(p), f"input 3 (path '{p}'): empty file", name="input 3")


def test_error_empty_bytes() -> None:
    _raises(b"", "bytes (0 B)", "empty bytes")


def test_error_non_image_bytes() -> None:
    _raises(b"this is not an image", "bytes (20 B)", "not a decodable image")


def test_error_non_image_file(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("hello world")
    _raises(p, "notes.png", "not a decodable image")


def test_error_truncated_png() -> None:
    data = _png_bytes(np.full((20, 20, 3), 9, np.uint8))
    _raises(data[:30], "not a decodable image")


def test_error_missing_path(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "missing.png"
    _raises(str(p), "missing.png", "not found")


def test_error_directory(tmp_path: pathlib.Path) -> None:
    _raises(tmp_path, str(tmp_path), "directory")


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 5, 3), (3, 0, 4)])
def test_error_empty_array(shape: tuple[int, ...]) -> None:
    _raises(np.zeros(shape, np.uint8), f"ndarray uint8 {shape}", "empty image")


def test_error_empty_array_message() -> None:
    _raises(np.zeros((0, 5), np.uint8), "empty image 5x0")


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6), (5,), (), (2, 2, 5)])
def test_error_bad_shape(shape: tuple[int, ...]) -> None:
    _raises(np.zeros(shape, np.uint8), "shape")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint32, np.complex64])
def test_error_dtype(dtype: type) -> None:
    _raises(np.zeros((2, 2), dtype), np.dtype(dtype).name, "dtype")


@pytest.mark.parametrize("value", [1.5, -0.1, 255.0])
def test_error_float_out_of_range(value: float) -> None:
    arr = np.zeros((2, 2), np.float32)
    arr[1, 1] = value
    _raises(arr, "ndarray float32 (2, 2)", "floats must be in [0, 1]")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_error_float_nan_inf(value: float) -> None:
    arr = np.zeros((2, 2, 3), np.float64)
    arr[0, 0, 1] = value
    _raises(arr, "ndarray float64", "floats must be in [0, 1]")


def test_error_channel_order() -> None:
    _raises(np.zeros((2, 2, 3), np.uint8), "channel_order", "'rgba'", channel_order="rgba")


def test_error_unsupported_type() -> None:
    _raises(12345, "int", "unsupported input type")
    _raises([[1, 2], [3, 4]], "list", "unsupported input type")
