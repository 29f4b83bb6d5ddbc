"""``--draw``: the page with its detected lines, next to a panel with what was read.

Left: the page, each line's polygon outlined in its own colour and numbered in reading order. Right: a white
panel of the same size where each line's text is written at its polygon's place (outlined in the same colour),
so that text and image can be compared at a glance.

Text needs a font that has its characters. With Pillow installed (``pip install 'ppocr-torch[ocr]'``), the font is
``font=`` / ``$PPOCR_TORCH_FONT`` when given, else the first of a few common system fonts with CJK coverage
(Noto CJK, WenQuanYi, Droid Sans Fallback, Microsoft YaHei, PingFang...), else DejaVu Sans; characters the font
cannot draw are shown as U+25A1 (□), and ``--json`` always has the exact text. Without Pillow, OpenCV draws the
boxes, the numbers and the panel with ASCII only (other characters as ``?``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["FONT_CANDIDATES", "find_font", "draw_result", "save_drawing"]

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
_MISSING = "\u25a1"
_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _colour(i: int) -> tuple[int, int, int]:
    """A distinct, saturated BGR colour per index (golden-angle hues)."""
    import cv2

    hsv = np.uint8([[[int(i * 137.508) % 180, 220, 200]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def find_font(font: str | os.PathLike | None = None) -> str | None:
    """The font file to write text with: ``font``, ``$PPOCR_TORCH_FONT``, or the first system candidate that
    exists; None when there is none. A given ``font`` that does not exist raises FileNotFoundError."""
    given = font if font is not None else (os.environ.get("PPOCR_TORCH_FONT") or None)
    if given is not None:
        if not Path(given).is_file():
            raise FileNotFoundError(f"font file {str(given)!r} not found (font= / $PPOCR_TORCH_FONT)")
        return str(given)
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


class _Glyphs:
    """Which characters a Pillow font can draw (a character drawn as the font's 'missing' box cannot)."""

    def __init__(self, font):
        self.font = font
        self.notdef = self._mask("\U0010fffd")
        self.known: dict[str, bool] = {}

    def _mask(self, ch):
        m = self.font.getmask(ch)
        return (m.size, bytes(m))

    def safe(self, text: str) -> str:
        out = []
        for ch in text:
            if ch not in self.known:
                self.known[ch] = ch.isspace() or self._mask(ch) != self.notdef
            out.append(ch if self.known[ch] else _MISSING)
        return "".join(out)


def draw_result(image: np.ndarray, result, *, font: str | os.PathLike | None = None) -> np.ndarray:
    """uint8 BGR ``[H, 2W, 3]``: ``image`` with ``result``'s polygons (left) and the texts (right)."""
    import cv2

    h, w = image.shape[:2]
    left = image.copy()
    panel = np.full_like(image, 255)
    thick = max(1, round(min(h, w) / 400))
    for i, line in enumerate(result.lines):
        pts = np.round(np.asarray(line.polygon)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(left, [pts], True, _colour(i), thick + 1, cv2.LINE_AA)
        cv2.polylines(panel, [pts], True, _colour(i), thick, cv2.LINE_AA)
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        Image = None
    path = find_font(font) if Image is not None else None
    if path is None:
        _write_cv2(left, panel, result)
    else:
        canvas = Image.fromarray(np.concatenate([left, panel], axis=1)[:, :, ::-1])
        _write_pil(canvas, ImageDraw.Draw(canvas), ImageFont, path, result, w)
        return np.ascontiguousarray(np.asarray(canvas)[:, :, ::-1])
    return np.concatenate([left, panel], axis=1)


def _box_size(poly) -> tuple[int, int, int, int]:
    p = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    return int(x0), int(y0), max(1, int(x1 - x0)), max(1, int(y1 - y0))


def _write_pil(canvas, draw, ImageFont, path, result, w) -> None:
    fonts: dict[int, object] = {}

    def font_of(size):
        if size not in fonts:
            fonts[size] = ImageFont.truetype(path, size)
        return fonts[size]

    glyphs = _Glyphs(font_of(20))
    for i, line in enumerate(result.lines):
        x, y, bw, bh = _box_size(line.polygon)
        vertical = bh >= 1.5 * bw
        text = glyphs.safe(line.text)
        size = max(8, min(int((bw if vertical else bh) * 0.8), 64))
        while size > 8 and draw.textlength(text, font=font_of(size)) > (bh if vertical else bw):
            size -= 1
        colour = _colour(i)[::-1]
        if vertical:  # one character per row, top to bottom
            for k, ch in enumerate(text):
                draw.text((w + x + 1, y + k * size), ch, fill=(0, 0, 0), font=font_of(size))
        else:
            draw.text((w + x + 1, y + max(0, (bh - size) // 2)), text, fill=(0, 0, 0), font=font_of(size))
        label = str(i + 1)
        small = font_of(max(10, min(18, canvas.size[1] // 40)))
        lw = int(draw.textlength(label, font=small)) + 3
        lx, ly = (x - lw - 2, y) if x - lw - 2 >= 0 else (x, max(0, y - small.size - 3))
        draw.rectangle([lx, ly, lx + lw, ly + small.size + 2], fill=colour)
        draw.text((lx + 2, ly), label, fill=(255, 255, 255), font=small)


def _write_cv2(left, panel, result) -> None:
    import cv2

    for i, line in enumerate(result.lines):
        x, y, bw, bh = _box_size(line.polygon)
        text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in line.text)
        scale = max(0.3, min(bh / 30.0, 1.5))
        cv2.putText(panel, text, (x + 1, y + bh - max(1, bh // 5)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(left, str(i + 1), (x, max(12, y - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _colour(i), 1, cv2.LINE_AA)


def save_drawing(path: str | os.PathLike, image: np.ndarray, result, *, font=None) -> None:
    """Draw ``result`` on ``image`` and write it to ``path`` (format from the suffix; written to a temporary
    file first, then renamed, so that a failure leaves nothing half-written)."""
    import cv2

    from ..files import atomic_write

    suffix = Path(path).suffix.lower() or ".png"
    if suffix not in _SUFFIXES:
        raise ValueError(f"cannot write a drawing as {suffix!r}: use one of {', '.join(_SUFFIXES)}")
    drawing = draw_result(image, result, font=font)
    ok, buf = cv2.imencode(suffix, drawing)
    if not ok:
        raise ValueError(f"OpenCV could not encode the drawing as {suffix!r}")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.tobytes()))
