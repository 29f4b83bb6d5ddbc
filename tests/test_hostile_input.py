"""Hostile inputs cost bounded memory and time, and every failure is typed: decompression bombs, the pixel and
file-size limits, special files (FIFOs, devices, sockets, directories) and path strings the OS cannot take."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ppocr_torch.errors import ConfigurationError, InvalidImageError, PPOCRTorchError, UnsupportedFileError
from ppocr_torch.image_io import load_image

ROOT = Path(__file__).resolve().parents[1]


def png_bomb(width: int, height: int, bit_depth: int) -> bytes:
    """A real PNG of ``width x height`` transparent black RGBA pixels, small on disk.

    Its zlib stream repeats one deflate block of zero rows: each block ends with a full flush, so that it
    depends on nothing before it, and all the data is zeros, whose Adler-32 is known in closed form."""
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(  # noqa: E731
        ">I", zlib.crc32(kind + data))
    row = 1 + width * 4 * bit_depth // 8  # filter byte + pixels
    per_block = max(1, (4 << 20) // row)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(row * per_block)) + comp.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(height, per_block)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = comp.compress(bytes(row * rest)) + comp.flush()  # ends with the final block
    adler = (row * height % 65521) << 16 | 1
    idat = b"\x78\xda" + block * full + last + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENCV_IO_MAX_IMAGE_PIXELS", "PPOCR_TORCH_MAX_IMAGE_PIXELS", "PPOCR_TORCH_MAX_FILE_BYTES")}
    env.update(extra)
    return env


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_bomb_builder_makes_real_pngs(bit_depth):
    data = png_bomb(300, 200, bit_depth)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr.shape == (200, 300, 4) and arr.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    assert not arr.any()
    idat = data[8 + 25 + 8:-12 - 4]
    assert len(zlib.decompress(idat)) == 200 * (1 + 300 * 4 * bit_depth // 8)  # Adler-32 checked here


BOMB_SCRIPT = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # should the guard regress: fail, not eat the host
import cv2  # before ppocr_torch: OpenCV's own limit stays its default (2**30 pixels), only the header guard is tested
from ppocr_torch.errors import InvalidImageError
from ppocr_torch.image_io import load_image

def peak_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024

before = peak_mb()
start = time.perf_counter()
try:
    load_image(sys.argv[1])
    outcome = "loaded"
except InvalidImageError as exc:
    outcome = str(exc)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "before_mb": before,
                  "outcome": outcome}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is read from /proc")
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_bomb_is_refused_with_bounded_memory_and_time(tmp_path, bit_depth):
    """12000x12000 RGBA: 576 MB (8-bit) or 1.15 GB (16-bit) of pixels in a file of under 1.2 MB; decoding it
    took 3.7 GB / 8 GB and up to 74 s. It must be refused from its header."""
    path = tmp_path / f"bomb{bit_depth}.png"
    path.write_bytes(png_bomb(12000, 12000, bit_depth))
    assert path.stat().st_size < 1_200_000
    proc = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(path)], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    print(f"\n{bit_depth}-bit bomb: {res}")
    assert "12000x12000 (width x height) is 144000000 pixels, above the limit of 40000000" in res["outcome"]
    assert res["seconds"] < 5
    assert res["peak_mb"] < 600


LIMIT_SCRIPT = r"""
import json, sys
from ppocr_torch.image_io import load_image  # before cv2, so that OpenCV's own limit is ours
assert "cv2" not in sys.modules
import cv2, numpy as np
from PIL import Image

def outcome(obj):
    try:
        return list(load_image(obj).shape)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

res = {}
for w in (100, 101):
    img = np.full((100, w, 3), 200, np.uint8)
    res[f"png-{w}"] = outcome(cv2.imencode(".png", img)[1].tobytes())
    res[f"ppm-{w}"] = outcome(cv2.imencode(".ppm", img)[1].tobytes())  # no header parser: OpenCV's own limit
    res[f"array-{w}"] = outcome(img)
    res[f"pil-{w}"] = outcome(Image.fromarray(img))
print(json.dumps(res))
"""


def test_images_at_the_limit_load_and_one_pixel_column_more_is_refused():
    proc = subprocess.run([sys.executable, "-c", LIMIT_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          env=_clean_env(PPOCR_TORCH_MAX_IMAGE_PIXELS="10000"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    for kind in ("png", "ppm", "array", "pil"):
        assert res[f"{kind}-100"] == [100, 100, 3], (kind, res)
        refused = res[f"{kind}-101"]
        assert refused.startswith("InvalidImageError: "), (kind, res)
        if kind == "ppm":
            assert "image too large: above OpenCV's limit of 10000 pixels" in refused
        else:
            assert "101x100 (width x height) is 10100 pixels, above the limit of 10000" in refused


@pytest.mark.parametrize("var", ["PPOCR_TORCH_MAX_IMAGE_PIXELS", "PPOCR_TORCH_MAX_FILE_BYTES"])
@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_invalid_limit_variables_raise_a_typed_error_naming_them(tmp_path, monkeypatch, var, raw):
    path = tmp_path / "a.png"
    assert cv2.imwrite(str(path), np.zeros((2, 2, 3), np.uint8))
    monkeypatch.setenv(var, raw)
    with pytest.raises(ConfigurationError) as info:
        load_image(path)
    assert f"${var} must be a positive integer, got {raw!r}" in str(info.value)
    assert not isinstance(info.value, InvalidImageError)  # a setting, not one bad image: errors="return" raises it
    monkeypatch.setenv(var, " 100000 ")
    assert load_image(path).shape == (2, 2, 3)


def test_numpy_and_pil_above_the_limit_are_refused(monkeypatch):
    monkeypatch.setenv("PPOCR_TORCH_MAX_IMAGE_PIXELS", "5999")
    with pytest.raises(InvalidImageError, match=r"ndarray uint16 \(40, 150, 4\): 150x40 .* 6000 pixels"):
        load_image(np.zeros((40, 150, 4), np.uint16))
    with pytest.raises(InvalidImageError, match=r"PIL.Image mode I;16 150x40: 150x40 .* 6000 pixels"):
        load_image(Image.new("I;16", (150, 40)))
    assert load_image(np.zeros((40, 149), np.uint8)).shape == (40, 149, 3)


# ---------------------------------------------------------------- special files and file sizes


def _load_with_timeout(obj, seconds=5.0):
    """``load_image(obj)``'s exception (or result) from a daemon thread, so that a hang fails the test instead of
    blocking it forever."""
    box = {}

    def target():
        try:
            box["result"] = load_image(obj)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["result"] = exc

    start = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load_image({obj!r}) still blocked after {seconds} s"
    return box["result"], time.perf_counter() - start


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    err, seconds = _load_with_timeout(str(fifo))
    assert isinstance(err, InvalidImageError), err
    assert str(err) == f"path {str(fifo)!r}: is a FIFO (named pipe), not a regular file; only regular files are read"
    assert seconds < 1.0


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_character_devices_are_refused(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    err, seconds = _load_with_timeout(device)
    assert isinstance(err, InvalidImageError), err
    assert f"path '{device}': is a character device, not a regular file" in str(err)
    assert seconds < 1.0


def test_symlink_to_a_device_directory_and_socket_are_refused(tmp_path):
    if os.path.exists("/dev/zero"):
        link = tmp_path / "zero.png"
        link.symlink_to("/dev/zero")
        assert "is a character device" in str(_load_with_timeout(link)[0])
    assert "is a directory, not a regular file" in str(_load_with_timeout(tmp_path)[0])
    if hasattr(socket, "AF_UNIX"):
        sock_path = tmp_path / "s.png"
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.bind(str(sock_path))
            except OSError:
                pytest.skip("cannot bind a unix socket here")
            err = _load_with_timeout(sock_path)[0]
        assert isinstance(err, InvalidImageError) and "is a socket, not a regular file" in str(err)


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    """A sparse 10 GB file: refused from its size in well under a second (reading it would take minutes)."""
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(10 ** 10)
    err, seconds = _load_with_timeout(big)
    assert isinstance(err, InvalidImageError), err
    assert f"file is {10 ** 10} bytes, above the limit of {256 << 20} bytes; set $PPOCR_TORCH_MAX_FILE_BYTES" in str(err)
    assert seconds < 1.0


def test_file_size_limit_from_the_environment(tmp_path, monkeypatch):
    data = cv2.imencode(".png", np.full((3, 4, 3), 9, np.uint8))[1].tobytes()
    path = tmp_path / "small.png"
    path.write_bytes(data)
    monkeypatch.setenv("PPOCR_TORCH_MAX_FILE_BYTES", str(len(data)))
    assert load_image(path)[0, 0].tolist() == [9, 9, 9]
    monkeypatch.setenv("PPOCR_TORCH_MAX_FILE_BYTES", str(len(data) - 1))
    with pytest.raises(InvalidImageError, match=f"file is {len(data)} bytes, above the limit of {len(data) - 1}"):
        load_image(path)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs a /proc file")
def test_a_file_larger_than_its_reported_size_is_read_to_the_limit_only():
    """/proc files report size 0: the read stops at limit + 1 bytes."""
    from ppocr_torch.files import read_regular_file

    assert os.stat("/proc/self/status").st_size == 0
    assert b"VmHWM" in read_regular_file("/proc/self/status", 1 << 20, name="status", error=UnsupportedFileError)
    with pytest.raises(UnsupportedFileError, match="status: file grew while being read, above the limit of 10 bytes"):
        read_regular_file("/proc/self/status", 10, name="status", error=UnsupportedFileError)


def test_dictionary_files_must_be_regular_and_small(tmp_path, monkeypatch):
    from ppocr_torch import charset

    good = tmp_path / "dict.txt"
    good.write_bytes(b"a\r\nb\n \n\nc")
    assert charset.read_dict_file(good) == ["a", "b", " ", "", "c"]
    specials = [tmp_path]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.txt")
        specials.append(tmp_path / "fifo.txt")
    if os.path.exists("/dev/zero"):
        specials.append(Path("/dev/zero"))
    for path in specials:
        with pytest.raises(UnsupportedFileError) as info:
            charset.read_dict_file(path)
        assert isinstance(info.value, OSError) and isinstance(info.value, PPOCRTorchError)
        assert str(info.value).startswith(f"dictionary file {str(path)!r}: is a ")
    monkeypatch.setattr(charset, "MAX_DICT_BYTES", good.stat().st_size - 1)
    with pytest.raises(UnsupportedFileError, match="above the limit of"):
        charset.read_dict_file(good)
    with pytest.raises(FileNotFoundError):  # missing files keep their builtin error
        charset.read_dict_file(tmp_path / "missing.txt")


# ---------------------------------------------------------------- path strings the OS cannot take


@pytest.mark.parametrize("path, why", [
    ("a\x00.png", "it contains a NUL character"),
    ("a\ud800.png", "it cannot be encoded for the file system (surrogates not allowed)"),
])
def test_unusable_path_strings_are_typed_errors(path, why):
    with pytest.raises(InvalidImageError) as info:
        load_image(path, name="input 2")
    msg = str(info.value)
    assert msg == f"input 2 (path {path!r}): not a usable file path: {why}; check the name"
    msg.encode("utf-8")  # printable: the path is shown by its repr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_paddle_file_readers_refuse_a_fifo_without_blocking(tmp_path):
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats import _pir_parameter_names
    from ppocr_torch.formats.lod_tensor import read_tensor_file
    from ppocr_torch.formats.pdparams import read_pdparams
    from ppocr_torch.formats.pir_json import graph_from_pir_json

    fifo = tmp_path / "inference.json"
    os.mkfifo(fifo)
    readers = [read_tensor_file, read_pdparams, lambda p: graph_from_pir_json(p, {}), _pir_parameter_names]
    for read in readers:
        box = {}
        thread = threading.Thread(target=lambda: box.update(err=pytest.raises(SourceFormatError, read, fifo)),
                                  daemon=True)
        thread.start()
        thread.join(5)
        assert not thread.is_alive(), f"{read} blocked on a FIFO"
        assert str(box["err"].value) == f"{fifo}: is a FIFO (named pipe), not a regular file; only regular files are read"
