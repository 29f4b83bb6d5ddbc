"""Loading user images into the uint8 BGR arrays the recognisers work on.

PaddleOCR works on OpenCV-style ``HxWx3`` uint8 arrays in **BGR** order. :func:`load_image` turns every
input kind we accept (a path, encoded bytes, a numpy array or a ``PIL.Image.Image``) into exactly that,
and raises :class:`~ppocr_torch.errors.InvalidImageError` (a ``ValueError``) with a message that names
the input for anything it cannot use.

Conversion rules (the same for every input kind, since decoded files and PIL images go through the
numpy path):

* gray ``HxW`` / ``HxWx1`` is replicated to three channels; ``HxWx2`` is gray + alpha;
* ``HxWx4`` has an alpha channel: the colour is composited over the background that contrasts with the
  alpha-weighted colour of what is shown, white for dark text and black for light text (UI text is often
  exported white on transparency); OpenCV/PaddleOCR would just drop alpha and show whatever colour the
  transparent pixels happen to hold, often black;
* ``uint16`` is scaled to ``uint8`` as ``round(x / 257)``; ``bool`` becomes 0/255; floats must lie in
  ``[0, 1]`` and become ``round(x * 255)``; every other dtype is rejected.

Images with a zero dimension are rejected; any positive size (even 1x1) is accepted.

Limits (hostile inputs cost bounded memory and time):

* an image of more than ``$PPOCR_TORCH_MAX_IMAGE_PIXELS`` pixels (default 40,000,000), width x height, is
  refused: an encoded file by the dimensions in its header, before anything is decoded (PNG, JPEG, GIF, BMP,
  WebP, TIFF: :mod:`ppocr_torch.image_header`), arrays and PIL images before they are converted. For the other
  formats OpenCV refuses on its own: importing this module sets ``$OPENCV_IO_MAX_IMAGE_PIXELS`` to the limit
  (unless already set). OpenCV reads that variable once per process, as early as when ``cv2`` is imported
  (OpenCV 5.0 does), so this backstop holds when this module is imported before ``cv2`` (the package itself
  imports ``cv2`` only after it); child processes inherit the variable;
* a file is read only when it is a regular file (never a FIFO, a device, a socket) of at most
  ``$PPOCR_TORCH_MAX_FILE_BYTES`` bytes (default 256 MiB).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from .errors import ConfigurationError, InvalidImageError
from .files import env_limit, read_regular_file
from .image_header import image_size

__all__ = ["load_image", "describe_input", "max_image_pixels", "max_file_bytes"]

MAX_PIXELS_ENV = "PPOCR_TORCH_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 40_000_000  # a 12 MP photo and a 60000x600 line pass
MAX_FILE_BYTES_ENV = "PPOCR_TORCH_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 256 << 20

_CHANNEL_ORDERS = ("bgr", "rgb")
_JPEG_MAGIC = b"\xff\xd8\xff"
# PIL modes converted to RGBA (they carry transparency); every other mode is converted to RGB.
_PIL_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA", "P"})


def max_image_pixels() -> int:
    """The pixel limit: ``$PPOCR_TORCH_MAX_IMAGE_PIXELS`` or 40,000,000 (ConfigurationError when invalid)."""
    return env_limit(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def max_file_bytes() -> int:
    """The size limit of image files: ``$PPOCR_TORCH_MAX_FILE_BYTES`` or 256 MiB (ConfigurationError when
    invalid)."""
    return env_limit(MAX_FILE_BYTES_ENV, DEFAULT_MAX_FILE_BYTES)


def _set_opencv_limit() -> None:
    """OpenCV's own pixel limit as the backstop for formats image_header does not know; OpenCV reads it once,
    when cv2 is loaded, so it must be in the environment before that (an invalid limit is reported by
    load_image)."""
    try:
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max_image_pixels()))
    except ConfigurationError:
        pass


_set_opencv_limit()


def _is_pil_image(obj: Any) -> bool:
    """Whether ``obj`` is a ``PIL.Image.Image``, without importing PIL when it is not loaded."""
    pil_image = sys.modules.get("PIL.Image")
    return pil_image is not None and isinstance(obj, pil_image.Image)


def describe_input(obj: Any, index: int | None = None) -> str:
    """Short human description of an input, for error messages.

    Examples: ``"path 'x.png'"``, ``"bytes (1234 B)"``, ``"ndarray uint16 (32, 100)"``,
    ``"PIL.Image mode RGBA 100x32"`` (PIL sizes are width x height). With ``index`` the description is
    wrapped as ``"input 3 (path 'x.png')"``.
    """
    if isinstance(obj, (str, os.PathLike)):
        desc = f"path {os.fspath(obj)!r}"
    elif isinstance(obj, (bytes, bytearray)):
        desc = f"{type(obj).__name__} ({len(obj)} B)"
    elif isinstance(obj, memoryview):
        desc = f"memoryview ({obj.nbytes} B)"
    elif isinstance(obj, np.ndarray):
        desc = f"ndarray {obj.dtype} {obj.shape}"
    elif _is_pil_image(obj):
        desc = f"PIL.Image mode {obj.mode} {obj.size[0]}x{obj.size[1]}"
    else:
        desc = f"object of type {type(obj).__module__}.{type(obj).__qualname__}"
    return desc if index is None else f"input {index} ({desc})"


def load_image(obj: Any, *, channel_order: str = "bgr", name: str | None = None) -> np.ndarray:
    """Load ``obj`` as a C-contiguous ``uint8`` ``HxWx3`` **BGR** array.

    Args:
        obj: a path (``str`` / ``os.PathLike``), encoded image bytes (``bytes``, ``bytearray``,
            ``memoryview``), a numpy array (``HxW``, ``HxWx1``, ``HxWx2``, ``HxWx3``, ``HxWx4``) or a
            ``PIL.Image.Image`` of any mode.
        channel_order: ``"bgr"`` (default, like OpenCV) or ``"rgb"``: the order of the colour channels of
            a 3- or 4-channel numpy array. Ignored for paths/bytes (decoded by OpenCV, so BGR) and PIL
            images (always RGB), but it must still be one of the two values.
        name: label of the input in error messages, e.g. ``"input 3"``; the message then reads
            ``"input 3 (path 'a.png'): empty file"``.

    Returns:
        A new array (never a view of the caller's array; the caller's array is never modified).
        Transparent pixels are composited over white, or black for light content (see the module docstring).

    Raises:
        InvalidImageError: the input cannot be used; the message names it and says why.
    """
    prefix = describe_input(obj) if name is None else f"{name} ({describe_input(obj)})"
    if channel_order not in _CHANNEL_ORDERS:
        raise InvalidImageError(
            f"{prefix}: channel_order must be 'bgr' or 'rgb', got {channel_order!r}"
        )
    limit = max_image_pixels()
    if isinstance(obj, (str, os.PathLike)):
        arr = _decode(_read_file(obj, prefix), prefix, "empty file", limit)
        order = "bgr"
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        arr = _decode(obj, prefix, "empty bytes", limit)
        order = "bgr"
    elif isinstance(obj, np.ndarray):
        arr = obj
        order = channel_order
    elif _is_pil_image(obj):
        _check_pixels(obj.size[0], obj.size[1], limit, prefix)
        arr = _pil_to_array(obj, prefix)
        order = "rgb"
    else:
        raise InvalidImageError(
            f"{prefix}: unsupported input type; expected a path, encoded image bytes, "
            "a numpy array or a PIL.Image.Image"
        )
    if arr.ndim >= 2:
        _check_pixels(arr.shape[1], arr.shape[0], limit, prefix)
    out = _array_to_bgr(arr, order, prefix)
    if isinstance(obj, np.ndarray) and np.may_share_memory(out, obj):
        out = out.copy()
    return out


def _check_pixels(width: int, height: int, limit: int, prefix: str) -> None:
    if width * height > limit:
        raise InvalidImageError(
            f"{prefix}: {width}x{height} (width x height) is {width * height} pixels, above the limit of {limit}; "
            f"crop the text line or scale it down first (or raise ${MAX_PIXELS_ENV})"
        )


def _read_file(path: str | os.PathLike, prefix: str) -> bytes:
    """Read a regular file of at most max_file_bytes(), turning every OS-level failure into InvalidImageError."""
    limit = max_file_bytes()
    try:
        return read_regular_file(path, limit, name=prefix, error=InvalidImageError,
                                 limit_env=MAX_FILE_BYTES_ENV)
    except InvalidImageError:
        raise
    except FileNotFoundError:
        raise InvalidImageError(f"{prefix}: file not found") from None
    except OSError as exc:
        if os.path.isdir(path):  # Windows reports directories as PermissionError
            raise InvalidImageError(f"{prefix}: is a directory, not an image file") from None
        raise InvalidImageError(f"{prefix}: cannot read file: {exc.strerror or exc}") from exc
    except ValueError as exc:  # the OS cannot take this string: a NUL character, a lone surrogate
        why = f"it cannot be encoded for the file system ({exc.reason})" if isinstance(exc, UnicodeError) \
            else "it contains a NUL character"
        raise InvalidImageError(f"{prefix}: not a usable file path: {why}; check the name") from None


def _decode(data: bytes | bytearray | memoryview, prefix: str, empty_msg: str, limit: int) -> np.ndarray:
    """Decode an encoded image with OpenCV.

    JPEG is decoded with ``IMREAD_COLOR`` so that the EXIF orientation is applied exactly as
    PaddleOCR's ``cv2.imread`` does (JPEG has no alpha and is 8-bit, so nothing is lost). Every other
    format is decoded with ``IMREAD_UNCHANGED`` so that 16-bit depth, alpha and gray are converted by our
    own rules instead of OpenCV's (which truncates 16-bit and drops alpha).

    The dimensions in the header are checked against ``limit`` before anything is decoded.
    """
    import cv2

    if isinstance(data, memoryview) and not data.c_contiguous:
        data = data.tobytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InvalidImageError(f"{prefix}: {empty_msg}")
    size = image_size(data)
    if size is not None:
        _check_pixels(size[0], size[1], limit, prefix)
    flags = cv2.IMREAD_COLOR if bytes(buf[:3]) == _JPEG_MAGIC else cv2.IMREAD_UNCHANGED
    try:
        arr = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):  # OpenCV's own limit, see _set_opencv_limit
            raise InvalidImageError(
                f"{prefix}: image too large: above OpenCV's limit of "
                f"{os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS', 'its default')} pixels "
                f"($OPENCV_IO_MAX_IMAGE_PIXELS, set from ${MAX_PIXELS_ENV} when ppocr_torch.image_io is imported)"
            ) from None
        raise InvalidImageError(f"{prefix}: not a decodable image ({exc})") from None
    if arr is None or arr.size == 0:
        raise InvalidImageError(f"{prefix}: not a decodable image")
    return arr


def _pil_to_array(img: Any, prefix: str) -> np.ndarray:
    """Convert a PIL image to a numpy array in RGB(A)/gray order, keeping 16-bit and float data."""
    mode = img.mode
    try:
        if mode.startswith("I;16") or mode in ("I", "F"):
            arr = np.asarray(img)
            return _int32_to_uint16(arr, prefix) if mode == "I" else arr
        if mode == "La":  # premultiplied gray+alpha: Pillow converts it to "LA" only
            return np.asarray(img.convert("LA"))
        target = "RGBA" if mode in _PIL_ALPHA_MODES else "RGB"
        return np.asarray(img if mode == target else img.convert(target))
    except InvalidImageError:
        raise
    except (OSError, ValueError) as exc:  # truncated file, unsupported conversion
        raise InvalidImageError(f"{prefix}: cannot convert PIL image: {exc}") from exc


def _int32_to_uint16(arr: np.ndarray, prefix: str) -> np.ndarray:
    """PIL mode "I" (32-bit signed) holds 16-bit images; accept values in [0, 65535] only."""
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise InvalidImageError(
            f"{prefix}: 32-bit integer values must lie in [0, 65535] (16-bit image data), "
            f"got range [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.uint16)


def _to_uint8(arr: np.ndarray, prefix: str) -> np.ndarray:
    """Convert the dtype to uint8 (may return ``arr`` itself when it already is uint8)."""
    dt = arr.dtype
    if dt == np.uint8:
        return arr
    if dt == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if dt.kind == "u" and dt.itemsize == 2:
        # round(x / 257) == floor((x + 128) / 257) for integers (x / 257 is never exactly .5 off)
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if dt.kind == "f":
        if arr.size:
            finite = np.isfinite(arr)
            if not finite.all():
                raise InvalidImageError(
                    f"{prefix}: floats must be in [0, 1], but the array contains NaN or inf"
                )
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0.0 or hi > 1.0:
                raise InvalidImageError(
                    f"{prefix}: floats must be in [0, 1], got range [{lo:g}, {hi:g}]; "
                    "divide by 255 (or convert to uint8) first"
                )
        return np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    raise InvalidImageError(
        f"{prefix}: unsupported dtype {dt}; use uint8, uint16, bool or float in [0, 1]"
    )


def _background(color: np.ndarray, alpha: np.ndarray) -> int:
    """The background that contrasts with what the alpha channel shows: 255 (white) for dark content, 0 (black)
    when the alpha-weighted luminance of the visible pixels is light (white text exported on transparency)."""
    a = alpha.reshape(alpha.shape[:2]).astype(np.float64)
    total = a.sum()
    if total == 0:
        return 255
    lum = color.astype(np.float64)
    if lum.ndim == 3 and lum.shape[2] == 3:  # BGR: ITU-R BT.601 weights, as cv2's gray conversion
        lum = lum @ np.array([0.114, 0.587, 0.299])
    lum = lum.reshape(a.shape)
    return 0 if float((lum * a).sum() / total) > 127.5 else 255


def _composite(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``round(color * a/255 + bg * (1 - a/255))`` in integer arithmetic, ``bg`` from :func:`_background`;
    uint8 in and out."""
    bg = _background(color, alpha)
    a = alpha.astype(np.uint32)
    c = color.astype(np.uint32)
    return ((c * a + bg * (255 - a) + 127) // 255).astype(np.uint8)


def _array_to_bgr(arr: np.ndarray, channel_order: str, prefix: str) -> np.ndarray:
    """Validate shape/size, convert dtype and channels; returns C-contiguous uint8 HxWx3 BGR."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 1
        arr = arr[:, :, None]
    else:
        raise InvalidImageError(
            f"{prefix}: unsupported array shape {arr.shape}; expected HxW (gray), HxWx1, "
            "HxWx2 (gray+alpha), HxWx3 or HxWx4 (with alpha)"
        )
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise InvalidImageError(f"{prefix}: empty image {w}x{h} (width x height)")
    arr = _to_uint8(arr, prefix)
    if channels <= 2:
        gray = arr[:, :, 0]
        if channels == 2:
            gray = _composite(gray, arr[:, :, 1])
        out = np.empty((h, w, 3), dtype=np.uint8)
        out[...] = gray[:, :, None]
        return out
    color = arr[:, :, 2::-1] if channel_order == "rgb" else arr[:, :, :3]
    if channels == 4:
        color = _composite(color, arr[:, :, 3:4])
    return np.ascontiguousarray(color)
