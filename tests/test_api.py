"""Tests of the public API (ppocr_torch.api) with the embedded default model.

Expected texts come from ``samples/sample_line.txt`` (the text the sample was rendered from), never from
our own output; other checks compare the API against itself under different call patterns.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import ppocr_torch
from ppocr_torch import api
from ppocr_torch.decode import RecResult
from ppocr_torch.errors import CheckpointError, InvalidImageError, SpecMismatchError, UnknownModelError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "sample_line.png"
SAMPLE_TEXT = (ROOT / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip("\n")


def _narrow_lines(n: int) -> list[str]:
    """``n`` rendered test lines with w/h <= 6.5: all get the base width 320 at height 48, so a list of
    them runs in few forward passes (CPU time); the wide sample line adds a second width group."""
    from PIL import Image

    out = []
    for p in sorted((ROOT / "tests" / "data" / "lines").glob("*.png")):
        with Image.open(p) as im:
            if im.size[0] / im.size[1] <= 6.5:
                out.append(str(p))
        if len(out) == n:
            return out
    raise AssertionError("not enough narrow test lines")


LINES = _narrow_lines(11)


@pytest.fixture(scope="module")
def rec():
    return api.Recognizer()


@pytest.fixture(scope="module")
def default_checkpoint():
    from ppocr_torch.download import resolve_weights
    from ppocr_torch.registry import get_entry

    return resolve_weights(get_entry("PP-OCRv6_small_rec"), download=False)


def _same(a: RecResult, b: RecResult) -> bool:
    """Bit-identical results (same input tensor, same batch composition)."""
    return a.text == b.text and a.score == b.score and a.chars == b.chars


def _close(a: RecResult, b: RecResult, tol: float = 1e-4) -> bool:
    """Same text and character positions, probabilities equal up to float noise. Used where the batch
    composition differs: CPU kernels may pick other algorithms per batch size (last-bit differences)."""
    if a.text != b.text or len(a.chars) != len(b.chars) or abs(a.score - b.score) > tol:
        return False
    return all((x.char, x.first, x.last) == (y.char, y.first, y.last) and abs(x.prob - y.prob) <= tol
               for x, y in zip(a.chars, b.chars))


def test_recognize_sample_path():
    res = ppocr_torch.recognize(str(SAMPLE))
    assert isinstance(res, RecResult)
    assert res.text == SAMPLE_TEXT
    assert 0.9 < res.score <= 1.0
    assert "".join(c.char for c in res.chars) == SAMPLE_TEXT
    assert ppocr_torch.recognize(SAMPLE) is not None  # pathlib.Path works too


def test_input_kinds_agree(rec):
    import cv2
    from PIL import Image

    ref = rec(str(SAMPLE))
    assert ref.text == SAMPLE_TEXT
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    assert _same(rec(SAMPLE.read_bytes()), ref)
    assert _same(rec(bgr), ref)
    assert _same(api.Recognizer(rec.model, channel_order="rgb")(rgb), ref)
    assert _same(ppocr_torch.recognize(rgb, channel_order="rgb"), ref)
    with Image.open(SAMPLE) as im:
        assert _same(rec(im), ref)


def test_white_text_on_transparency_is_read(rec, tmp_path):
    """A PNG export of UI text: white glyphs whose shape is only in the alpha channel."""
    import cv2

    gray = cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE)
    bgra = np.full(gray.shape + (4,), 255, np.uint8)
    bgra[:, :, 3] = 255 - gray  # opaque where the sample's text is dark, transparent where its paper is
    path = tmp_path / "white_on_transparent.png"
    assert cv2.imwrite(str(path), bgra)
    res = rec(str(path))
    assert res.text == SAMPLE_TEXT and res.score > 0.9


def test_list_keeps_order(rec):
    items = LINES[:3] + [str(SAMPLE)] + LINES[3:5]
    singles = [rec(p) for p in items]
    batch = rec(items)
    assert isinstance(batch, list) and len(batch) == len(items)
    assert all(_close(a, b) for a, b in zip(batch, singles))
    assert batch[3].text == SAMPLE_TEXT
    reversed_batch = rec(tuple(reversed(items)))
    assert all(_close(a, b) for a, b in zip(reversed_batch, reversed(singles)))
    assert rec([]) == []


def test_bad_item_names_index(rec, tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(InvalidImageError) as info:
        rec([str(SAMPLE), str(missing), str(SAMPLE)])
    msg = str(info.value)
    assert "input 1" in msg and "missing.png" in msg
    with pytest.raises(InvalidImageError):
        rec(b"definitely not an image")


def test_errors_return_keeps_others(rec, tmp_path):
    out = rec([str(SAMPLE), b"not an image", str(tmp_path / "missing.png"), str(SAMPLE)], errors="return")
    assert out[0].text == SAMPLE_TEXT and out[3].text == SAMPLE_TEXT
    assert isinstance(out[1], InvalidImageError) and "input 1" in str(out[1])
    assert isinstance(out[2], InvalidImageError) and "input 2" in str(out[2])
    again = rec.recognize_with_errors([b"", str(SAMPLE)])
    assert isinstance(again[0], InvalidImageError) and again[1].text == SAMPLE_TEXT


def test_too_wide_image_is_rejected_alone(rec):
    wide = np.full((2, 42000, 3), 255, dtype=np.uint8)  # 21000:1 -> 1,008,000 px at height 48: not even split
    out = rec([wide, str(SAMPLE)], errors="return")
    assert isinstance(out[0], InvalidImageError) and "input 0" in str(out[0])
    assert out[1].text == SAMPLE_TEXT


def test_threads_match_sequential(rec):
    images = LINES[:6] + [str(SAMPLE)] + LINES[6:11]
    sequential = rec(images)
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def worker(k):
        try:
            # different call patterns per thread: whole list, rotated list, two halves
            if k % 3 == 0:
                results[k] = rec(images)
            elif k % 3 == 1:
                rot = images[k:] + images[:k]
                out = rec(rot)
                results[k] = out[len(images) - k:] + out[:len(images) - k]
            else:
                results[k] = rec(images[:5]) + rec(images[5:])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for k in range(4):
        assert len(results[k]) == len(images)
        same = _same if k % 3 == 0 else _close  # threads 0 and 3 repeat the sequential call exactly
        assert all(same(a, b) for a, b in zip(results[k], sequential)), f"thread {k} differs"
    assert sequential[6].text == SAMPLE_TEXT


def test_batch_size_does_not_matter_per_image(rec):
    images = LINES[:8] + [str(SAMPLE)]
    one = api.Recognizer(rec.model, batch_size=1)(images)
    eight = api.Recognizer(rec.model, batch_size=8)(images)
    assert all(_close(a, b) for a, b in zip(one, eight))
    assert eight[-1].text == SAMPLE_TEXT


def test_paddle_mode(rec):
    paddle = api.Recognizer(rec.model, mode="paddle", batch_size=4)
    images = LINES[:6] + [str(SAMPLE)]
    out = paddle(images)
    assert len(out) == len(images) and out[-1].text == SAMPLE_TEXT
    alone = paddle(str(SAMPLE))  # alone, the paddle batch width is the image's own width
    assert alone.text == SAMPLE_TEXT
    assert alone.score == pytest.approx(rec(str(SAMPLE)).score, abs=1e-5)


def test_recognizer_attributes(rec):
    assert rec.spec.name == "PP-OCRv6_small_rec"
    assert rec.charset[0] == "blank" and len(rec.charset) == rec.spec.num_classes
    assert str(rec.device) == "cpu"
    assert not rec.model.training
    with pytest.raises(ValueError):
        api.Recognizer(rec.model, mode="fast")
    with pytest.raises(ValueError):
        api.Recognizer(rec.model, batch_size=0)
    with pytest.raises(ValueError):
        api.Recognizer(rec.model, channel_order="bgra")


def test_recognize_shares_recognizers():
    ppocr_torch.recognize(str(SAMPLE))
    before = dict(api._recognizers)
    ppocr_torch.recognize(str(SAMPLE))
    assert api._recognizers == before


def test_import_does_not_load_torch():
    code = ("import sys, ppocr_torch; ppocr_torch.errors; ppocr_torch.RecResult; "
            "bad = [m for m in ('torch', 'cv2') if m in sys.modules]; print(ppocr_torch.__version__, bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1.0 []"


def test_lazy_exports():
    assert callable(ppocr_torch.load_model) and callable(ppocr_torch.recognize)
    assert ppocr_torch.Recognizer is api.Recognizer
    assert "PP-OCRv6_small_rec" in ppocr_torch.list_models()
    assert ppocr_torch.list_models("ch_PP-OCRv2*") == ["ch_PP-OCRv2_rec"]
    with pytest.raises(AttributeError):
        ppocr_torch.does_not_exist  # noqa: B018


def test_load_model_unknown_name():
    with pytest.raises(UnknownModelError):
        api.load_model("PP-OCRv99_rec")


def test_load_model_not_a_checkpoint(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(CheckpointError):
        api.load_model(str(junk))
    with pytest.raises(CheckpointError):
        api.load_model(tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        api.load_model(garbage)


def test_load_model_fresh_modules(default_checkpoint):
    import torch

    a = api.load_model("PP-OCRv6_small_rec")
    b = api.load_model("PP-OCRv6_small_rec")
    c = api.load_model(default_checkpoint)
    assert a is not b and a is not c
    assert not a.training and a.spec.name == "PP-OCRv6_small_rec"
    p = next(a.parameters())
    with torch.no_grad():
        p.add_(1.0)
    assert not torch.equal(p, next(b.parameters())), "load_model must not hand out shared modules"
    assert torch.equal(next(b.parameters()), next(c.parameters()))


def test_altered_charset_is_spec_mismatch(default_checkpoint, tmp_path):
    import torch

    from ppocr_torch.checkpoint import read_checkpoint

    payload = read_checkpoint(default_checkpoint)
    payload["charset"] = list(payload["charset"])[:-1]
    bad = tmp_path / "bad_charset.pth"
    torch.save(payload, bad)
    with pytest.raises(SpecMismatchError):
        api.load_model(bad)


def test_registry_checkpoint_of_another_model_is_spec_mismatch(default_checkpoint, monkeypatch):
    from ppocr_torch import download

    monkeypatch.setattr(download, "resolve_weights", lambda entry, **kw: default_checkpoint)
    with pytest.raises(SpecMismatchError) as info:
        api.load_model("ch_PP-OCRv2_rec")
    assert "ch_PP-OCRv2_rec" in str(info.value)


def test_torch_hub_local_entrypoint(tmp_path):
    import torch

    root = str(Path(__file__).resolve().parent.parent)
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf_under_test", Path(root) / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert "pp_ocrv6_small_rec" in [n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_")]
    rec = torch.hub.load(root, "pp_ocrv6_small_rec", source="local")
    expected = (Path(root) / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip()
    assert rec(str(Path(root) / "samples" / "sample_line.png")).text == expected
    untrained = torch.hub.load(root, "pp_ocrv6_small_rec", source="local", pretrained=False)
    assert untrained.model.spec.num_classes == 18710


def test_num_threads_sets_torchs_threads_and_is_checked(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        rec = api.Recognizer(num_threads=1)
        assert torch.get_num_threads() == 1 and rec(str(SAMPLE)).text == SAMPLE_TEXT
        monkeypatch.setenv("PPOCR_TORCH_THREADS", "2")
        api.Recognizer()
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("PPOCR_TORCH_THREADS", "many")
        with pytest.raises(ValueError, match="PPOCR_TORCH_THREADS"):
            api.Recognizer()
        with pytest.raises(ValueError, match="num_threads"):
            api.Recognizer(num_threads=0)
    finally:
        torch.set_num_threads(before)
