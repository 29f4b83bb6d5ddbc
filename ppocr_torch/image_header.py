"""Image dimensions read from an encoded file's header, without decoding it.

:func:`image_size` knows PNG, JPEG, GIF, BMP, WebP and TIFF (classic and BigTIFF, either byte order). It lets
:func:`ppocr_torch.image_io.load_image` refuse a decompression bomb (a small file that decodes to gigabytes)
before any pixel is allocated. It never raises on bad data: an unknown format or a truncated or inconsistent
header gives ``None``, and the decoder then decides (OpenCV's own pixel limit is the backstop).
"""

from __future__ import annotations

import struct

__all__ = ["image_size"]

_MAX_STEPS = 100_000  # segments / blocks / IFD entries walked at most, so a hostile file cannot stall the walk

# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field: TEM, RST0-7 (SOI and EOI are handled apart)
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def image_size(data) -> tuple[int, int] | None:
    """``(width, height)`` from the header of encoded image ``data`` (bytes-like), or ``None`` when the format
    is not one of PNG, JPEG, GIF, BMP, WebP, TIFF or the header is truncated or malformed."""
    try:
        if isinstance(data, memoryview):
            data = data.cast("B") if data.c_contiguous else data.tobytes()
        head = bytes(data[:16])
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data)
        if head.startswith(b"BM"):
            return _bmp(data)
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return _webp(data)
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            return _tiff(data)
    except (struct.error, IndexError, ValueError, TypeError, OverflowError):
        pass
    return None


def _png(d):
    if bytes(d[12:16]) != b"IHDR":
        return None
    return struct.unpack_from(">II", d, 16)


def _find_ff(d, pos):
    """Index of the next 0xFF byte at or after ``pos``, or -1."""
    if hasattr(d, "find"):
        return d.find(b"\xff", pos)
    while pos < len(d):
        i = bytes(d[pos:pos + 65536]).find(b"\xff")
        if i >= 0:
            return pos + i
        pos += 65536
    return -1


def _jpeg(d):
    pos = 2
    for _ in range(_MAX_STEPS):
        pos = _find_ff(d, pos)  # bytes between segments are skipped, as libjpeg does
        if pos < 0:
            return None
        while d[pos] == 0xFF:  # fill bytes
            pos += 1
        marker = d[pos]
        pos += 1
        if marker in _JPEG_STANDALONE or marker == 0:
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # SOI, EOI, start of scan: no frame header before the data
            return None
        length = struct.unpack_from(">H", d, pos)[0]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", d, pos + 3)  # after length and sample precision
            return width, height
        pos += length
    return None


def _gif(d):
    """The logical screen, widened to the first image's frame (a frame may be larger than the screen)."""
    width, height, flags = struct.unpack_from("<HHB", d, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    for _ in range(_MAX_STEPS):
        if pos >= len(d):
            break
        kind = d[pos]
        if kind == 0x2C:  # image descriptor: left, top, width, height
            left, top, w, h = struct.unpack_from("<HHHH", d, pos + 1)
            return max(width, left + w), max(height, top + h)
        if kind != 0x21:  # only extensions may come before the first image
            break
        pos += 2  # introducer and label, then sub-blocks up to an empty one
        while pos < len(d) and d[pos]:
            pos += d[pos] + 1
        pos += 1
    return width, height


def _bmp(d):
    header = struct.unpack_from("<I", d, 14)[0]
    if header == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        return struct.unpack_from("<HH", d, 18)
    if header < 16:
        return None
    width, height = struct.unpack_from("<ii", d, 18)
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _webp(d):
    chunk = bytes(d[12:16])
    if chunk == b"VP8 ":  # lossy: key frame tag (3 bytes), start code 9d 01 2a, 14-bit sizes
        if bytes(d[23:26]) != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", d, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature 0x2f, then width-1 and height-1 in 14 bits each
        if d[20] != 0x2F:
            return None
        bits = struct.unpack_from("<I", d, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: flags and reserved (4 bytes), canvas width-1 and height-1 in 24 bits
        w = int.from_bytes(bytes(d[24:27]), "little") + 1
        h = int.from_bytes(bytes(d[27:30]), "little") + 1
        return (w, h) if len(d) >= 30 else None
    return None


def _tiff(d):
    """ImageWidth (256) and ImageLength (257) of the first IFD."""
    bo = "<" if bytes(d[:2]) == b"II" else ">"
    if struct.unpack_from(bo + "H", d, 2)[0] == 43:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        ifd = struct.unpack_from(bo + "Q", d, 8)[0]
        count, entry, first, size = struct.unpack_from(bo + "Q", d, ifd)[0], 20, ifd + 8, 8
    else:
        ifd = struct.unpack_from(bo + "I", d, 4)[0]
        count, entry, first, size = struct.unpack_from(bo + "H", d, ifd)[0], 12, ifd + 2, 4
    found = {}
    for i in range(min(count, _MAX_STEPS)):
        pos = first + i * entry
        tag, typ = struct.unpack_from(bo + "HH", d, pos)
        if tag in (256, 257):
            value = pos + 4 + size  # the value field, after the count
            fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
            if fmt is None:
                return None
            found[tag] = struct.unpack_from(bo + fmt, d, value)[0]
            if len(found) == 2:
                return found[256], found[257]
    return None
