"""Tests of ppocr_torch.image_header: sizes of real files of every format, hostile headers refused by
load_image before decoding, and malformed headers that never raise."""

from __future__ import annotations

import io
import struct
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from ppocr_torch.errors import InvalidImageError
from ppocr_torch.image_header import image_size
from ppocr_torch.image_io import load_image

W, H = 37, 23  # distinct, so that a swapped width and height fails


def _noise(channels=3):
    return np.random.default_rng(0).integers(0, 256, (H, W, channels), dtype=np.uint8)


def _cv2(ext, params=(), channels=3):
    ok, buf = cv2.imencode(ext, _noise(channels), list(params))
    assert ok
    return buf.tobytes()


def _pil(fmt, mode="RGB", **kw):
    buf = io.BytesIO()
    Image.fromarray(_noise(len(mode)) if mode in ("RGB", "RGBA") else _noise(1)[..., 0]).convert(mode).save(
        buf, fmt, **kw)
    return buf.getvalue()


def _tiff_be_gray():
    """A big-endian ("MM") uncompressed 8-bit gray TIFF, written by hand (Pillow and OpenCV write "II")."""
    pixels = bytes((i * 7) % 256 for i in range(W * H))
    entries = [(256, 3, 1, W), (257, 3, 1, H), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, H), (279, 4, 1, len(pixels))]
    ifd_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd_size
    ifd = struct.pack(">H", len(entries))
    for tag, typ, count, value in entries:
        value = data_at if tag == 273 else value
        field = struct.pack(">H", value) + b"\0\0" if typ == 3 else struct.pack(">I", value)
        ifd += struct.pack(">HHI", tag, typ, count) + field
    return b"MM\0*" + struct.pack(">I", 8) + ifd + b"\0\0\0\0" + pixels


REAL_FILES = {
    "png": lambda: _cv2(".png"),
    "png-16bit-rgba": lambda: cv2.imencode(".png", (_noise(4).astype(np.uint16) * 257))[1].tobytes(),
    "jpeg": lambda: _cv2(".jpg"),
    "jpeg-progressive-exif": lambda: _pil("JPEG", progressive=True, exif=b"Exif\0\0" + b"\0" * 30000,
                                          icc_profile=b"\0" * 5000),
    "gif-cv2": lambda: _cv2(".gif"),
    "gif-pil": lambda: _pil("GIF", mode="P", comment=b"x" * 600),
    "bmp-cv2": lambda: _cv2(".bmp"),
    "bmp-pil-gray": lambda: _pil("BMP", mode="L"),
    "webp-lossy-vp8": lambda: _pil("WEBP", quality=50),
    "webp-lossless-vp8l": lambda: _cv2(".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),
    "webp-alpha-vp8x": lambda: _pil("WEBP", mode="RGBA", quality=50),
    "tiff-cv2-le": lambda: _cv2(".tiff"),
    "tiff-pil-le": lambda: _pil("TIFF"),
    "tiff-big": lambda: _pil("TIFF", big_tiff=True),
    "tiff-be": _tiff_be_gray,
}


@pytest.mark.parametrize("kind", sorted(REAL_FILES))
def test_size_of_real_files(kind):
    data = REAL_FILES[kind]()
    assert image_size(data) == (W, H)
    assert image_size(bytearray(data)) == (W, H)
    assert image_size(memoryview(data)) == (W, H)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # a real file of that format
    assert decoded is not None and decoded.shape[:2] == (H, W)


def test_kinds_cover_every_chunk_and_byte_order():
    assert REAL_FILES["webp-lossy-vp8"]()[12:16] == b"VP8 "
    assert REAL_FILES["webp-lossless-vp8l"]()[12:16] == b"VP8L"
    assert REAL_FILES["webp-alpha-vp8x"]()[12:16] == b"VP8X"
    assert REAL_FILES["tiff-be"]()[:4] == b"MM\0*" and REAL_FILES["tiff-pil-le"]()[:4] == b"II*\0"
    assert REAL_FILES["tiff-big"]()[:4] == b"II+\0"
    assert REAL_FILES["jpeg-progressive-exif"]().find(b"\xff\xc2") > 30000  # SOF2 after a 30 kB EXIF segment


@pytest.mark.parametrize("kind", sorted(REAL_FILES))
def test_every_truncation_gives_none_or_the_size(kind):
    data = REAL_FILES[kind]()
    for n in range(min(len(data), 400)):
        assert image_size(data[:n]) in (None, (W, H)), n


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00\x01", b"GIF89a",
                                  b"BM" + b"\0" * 20, b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 20, b"II*\0\xff\xff\xff\x7f",
                                  b"MM\0+\0\x08\0\0" + b"\xff" * 8, b"P6\n5 5\n255\n", b"\0" * 64])
def test_malformed_or_unknown_headers_give_none(data):
    assert image_size(data) is None


def test_jpeg_with_fill_bytes_and_garbage_between_segments():
    data = REAL_FILES["jpeg"]()
    assert data[2:4] == b"\xff\xe0"  # APP0 first
    seg = struct.unpack(">H", data[4:6])[0]
    patched = data[:4 + seg] + b"junk\xff\xff\xff" + data[4 + seg + 1:]  # garbage, then fill bytes before a marker
    assert image_size(patched) == (W, H)


def _png_header(width, height, bit_depth=8, color_type=6):
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sIIBBBBB", 13, b"IHDR", width, height, bit_depth, color_type,
                                                0, 0, 0) + b"\0\0\0\0"


def _jpeg_header(width, height):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda" + b"\0" * 32


def _gif_header(screen, frame):
    body = struct.pack("<HHBBB", *screen, 0, 0, 0)
    ext = b"\x21\xf9\x04\0\0\0\0\0"  # graphic control extension before the image
    return b"GIF89a" + body + ext + b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x44\x01\0\x3b"


def _bmp_header(width, height):
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + b"\0" * 64


def _webp(chunk, payload):
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _tiff_header(width, height, bo):
    entries = [(256, 4, 1, width), (257, 4, 1, height)]
    ifd = struct.pack(bo + "H", len(entries)) + b"".join(struct.pack(bo + "HHII", t, ty, c, v)
                                                          for t, ty, c, v in entries)
    return (b"II*\0" if bo == "<" else b"MM\0*") + struct.pack(bo + "I", 8) + ifd + b"\0" * 4


HOSTILE = {
    "png-8bit-rgba": (_png_header(12000, 12000), (12000, 12000)),
    "png-16bit-rgba": (_png_header(12000, 12000, 16), (12000, 12000)),
    "png-tall": (_png_header(600, 70000, 8, 0), (600, 70000)),
    "jpeg": (_jpeg_header(20000, 20000), (20000, 20000)),
    "gif-screen": (_gif_header((65535, 65535), (1, 1)), (65535, 65535)),
    "gif-frame-beyond-screen": (_gif_header((1, 1), (65535, 65535)), (65535, 65535)),
    "bmp-top-down": (_bmp_header(30000, -30000), (30000, 30000)),
    "bmp-core": (b"BM" + struct.pack("<IHHII", 64, 0, 0, 26, 12) + struct.pack("<HHHH", 65535, 65535, 1, 24)
                 + b"\0" * 38, (65535, 65535)),
    "webp-vp8": (_webp(b"VP8 ", b"\x10\x02\0\x9d\x01\x2a" + struct.pack("<HH", 16383, 16383) + b"\0" * 8),
                 (16383, 16383)),
    "webp-vp8l": (_webp(b"VP8L", b"\x2f" + struct.pack("<I", 16383 | 16383 << 14) + b"\0" * 8), (16384, 16384)),
    "webp-vp8x": (_webp(b"VP8X", b"\0\0\0\0" + (40000 - 1).to_bytes(3, "little") * 2), (40000, 40000)),
    "tiff-le": (_tiff_header(50000, 50000, "<"), (50000, 50000)),
    "tiff-be": (_tiff_header(50000, 50000, ">"), (50000, 50000)),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_headers_are_refused_before_decoding(kind):
    data, size = HOSTILE[kind]
    assert image_size(data) == size
    start = time.perf_counter()
    with pytest.raises(InvalidImageError) as info:
        load_image(data, name="input 0")
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert msg.startswith(f"input 0 (bytes ({len(data)} B)): {size[0]}x{size[1]} (width x height)")
    assert f"{size[0] * size[1]} pixels, above the limit of 40000000" in msg and "PPOCR_TORCH_MAX_IMAGE_PIXELS" in msg


@pytest.mark.parametrize("data", [_png_header(60000, 600, 8, 0), _jpeg_header(4000, 3000)])
def test_a_long_line_and_a_12mp_photo_pass_the_default_limit(data):
    """Their headers pass; the rest of the data is missing, so OpenCV then fails to decode them."""
    with pytest.raises(InvalidImageError) as info:
        load_image(data)
    assert "not a decodable image" in str(info.value) and "limit" not in str(info.value)


@pytest.mark.parametrize("n", [8, 14, 20])
def test_truncated_headers_fall_through_to_the_decoder(n):
    with pytest.raises(InvalidImageError, match="not a decodable image"):
        load_image(_png_header(12000, 12000)[:n])


@pytest.mark.parametrize("kind", sorted(REAL_FILES))
def test_corrupted_header_bytes_never_raise(kind):
    data = bytearray(REAL_FILES[kind]())
    for i in range(min(len(data), 48)):
        for value in (0x00, 0xFF, data[i] ^ 0x80):
            corrupt = bytes(data[:i]) + bytes([value]) + bytes(data[i + 1:])
            size = image_size(corrupt)
            assert size is None or (len(size) == 2 and all(isinstance(v, int) and v >= 0 for v in size)), (i, value)
