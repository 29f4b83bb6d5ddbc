"""Tests of ppocr_torch.decode (greedy CTC) and ppocr_torch.charset, on hand-built inputs."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from ppocr_torch.charset import build_charset, check_num_classes, read_dict_file
from ppocr_torch.decode import CharResult, RecResult, ctc_greedy_decode
from ppocr_torch.errors import SpecMismatchError

CHARSET = ["blank", "a", "b", " "]  # C = 4


def _probs(steps: list[tuple[int, float]], num_classes: int = 4, floor: float = 0.01) -> np.ndarray:
    """[T, C] float32 array whose maximum at step t is ``p`` at class ``i`` for ``(i, p)``."""
    arr = np.full((len(steps), num_classes), floor, dtype=np.float32)
    for t, (i, p) in enumerate(steps):
        arr[t, i] = p
    return arr


def test_repeats_collapsed_but_blank_separates() -> None:
    # steps: a a _ a b -> kept t=0 (a), t=3 (a), t=4 (b)
    probs = _probs([(1, 0.9), (1, 0.8), (0, 0.7), (1, 0.6), (2, 0.5)])
    (res,) = ctc_greedy_decode(probs, CHARSET)
    assert res.text == "aab"
    # mean of the kept maxima: (0.9 + 0.6 + 0.5) / 3
    assert res.score == pytest.approx(2.0 / 3.0, rel=1e-6)
    assert isinstance(res.score, float)
    assert [(c.char, c.first, c.last) for c in res.chars] == [("a", 0, 1), ("a", 3, 3), ("b", 4, 4)]
    assert res.chars[0].prob == pytest.approx(0.9, rel=1e-6)
    assert res.chars[1].prob == pytest.approx(0.6, rel=1e-6)
    assert res.chars[2].prob == pytest.approx(0.5, rel=1e-6)


def test_long_run_and_blanks_dropped() -> None:
    # _ _ a a a _ b b -> "ab"; a spans 2..4, b spans 6..7 (run reaches the end)
    probs = _probs([(0, 0.9), (0, 0.9), (1, 0.4), (1, 0.9), (1, 0.9), (0, 0.8), (2, 0.8), (2, 0.2)])
    (res,) = ctc_greedy_decode(probs, CHARSET)
    assert res.text == "ab"
    assert [(c.first, c.last) for c in res.chars] == [(2, 4), (6, 7)]
    # only the first step of each run counts: (0.4 + 0.8) / 2
    assert res.score == pytest.approx(0.6, rel=1e-6)


def test_adjacent_different_chars() -> None:
    # a b a without blanks -> "aba", each its own run
    (res,) = ctc_greedy_decode(_probs([(1, 0.5), (2, 0.5), (1, 0.5)]), CHARSET)
    assert res.text == "aba"
    assert [(c.first, c.last) for c in res.chars] == [(0, 0), (1, 1), (2, 2)]
    assert res.score == pytest.approx(0.5, rel=1e-6)


def test_space_decoded() -> None:
    (res,) = ctc_greedy_decode(_probs([(1, 0.9), (3, 0.9), (3, 0.9), (2, 0.9)]), CHARSET)
    assert res.text == "a b"
    assert res.chars[1] == CharResult(" ", res.chars[1].prob, 1, 2)


def test_empty_result() -> None:
    (res,) = ctc_greedy_decode(_probs([(0, 0.99), (0, 0.98)]), CHARSET)
    assert res.text == ""
    assert res.score == 0.0
    assert res.chars == ()


def test_zero_timesteps() -> None:
    (res,) = ctc_greedy_decode(np.zeros((1, 0, 4), np.float32), CHARSET)
    assert res == RecResult("", 0.0, ())


def test_tie_breaking_first_max() -> None:
    probs = np.array(
        [
            [0.4, 0.4, 0.2, 0.0],  # tie blank/a -> blank
            [0.1, 0.45, 0.45, 0.0],  # tie a/b -> a
            [0.0, 0.3, 0.3, 0.3],  # tie a/b/space -> a, but same as previous -> collapsed
        ],
        dtype=np.float32,
    )
    (res,) = ctc_greedy_decode(probs, CHARSET)
    assert res.text == "a"
    assert (res.chars[0].first, res.chars[0].last) == (1, 2)
    assert res.score == pytest.approx(0.45, rel=1e-6)


def test_batch_of_two() -> None:
    row0 = _probs([(2, 0.8), (0, 0.9), (1, 0.6)])  # "ba"
    row1 = _probs([(0, 0.9), (0, 0.9), (0, 0.9)])  # ""
    results = ctc_greedy_decode(np.stack([row0, row1]), CHARSET)
    assert [r.text for r in results] == ["ba", ""]
    assert results[0].score == pytest.approx(0.7, rel=1e-6)
    assert results[1].score == 0.0
    assert [(c.first, c.last) for c in results[0].chars] == [(0, 0), (2, 2)]


def test_2d_input_returns_one_result() -> None:
    results = ctc_greedy_decode(_probs([(1, 0.9)]), CHARSET)
    assert isinstance(results, list) and len(results) == 1
    assert results[0].text == "a"


def test_torch_tensor_input() -> None:
    probs = np.stack([_probs([(1, 0.9), (1, 0.9), (2, 0.7)]), _probs([(3, 0.6), (0, 0.9), (3, 0.5)])])
    tensor = torch.from_numpy(probs).requires_grad_(True)
    results = ctc_greedy_decode(tensor, CHARSET)
    assert [r.text for r in results] == ["ab", "  "]
    assert results[0].score == pytest.approx(0.8, rel=1e-6)
    assert results[1].score == pytest.approx(0.55, rel=1e-6)
    assert ctc_greedy_decode(tensor.to(torch.bfloat16), CHARSET)[0].text == "ab"


def test_float64_input_score_is_float32_mean() -> None:
    probs = _probs([(1, 0.9), (2, 0.3)]).astype(np.float64)
    (res,) = ctc_greedy_decode(probs, CHARSET)
    # (float32(0.9) + float32(0.3)) / 2, within float32 precision of 0.6
    assert res.score == pytest.approx(0.6, rel=1e-6)
    assert res.chars[0].prob == float(np.float32(0.9))


def test_charset_length_mismatch() -> None:
    with pytest.raises(SpecMismatchError) as info:
        ctc_greedy_decode(_probs([(1, 0.9)]), ["blank", "a", "b"])
    msg = str(info.value)
    assert "3" in msg and "4" in msg
    assert isinstance(info.value, ValueError)


def test_bad_rank() -> None:
    with pytest.raises(ValueError):
        ctc_greedy_decode(np.zeros((4,), np.float32), CHARSET)


def test_to_dict_and_repr() -> None:
    (res,) = ctc_greedy_decode(_probs([(1, 0.5), (0, 0.9), (2, 0.25)]), CHARSET)
    d = res.to_dict()
    assert d == {"text": "ab", "score": 0.375, "chars": [["a", 0.5, 0, 0], ["b", 0.25, 2, 2]]}
    assert json.loads(json.dumps(d)) == d
    r = repr(res)
    assert "'ab'" in r and "0.375" in r and len(r) < 80


def test_results_are_frozen() -> None:
    (res,) = ctc_greedy_decode(_probs([(1, 0.5)]), CHARSET)
    with pytest.raises(AttributeError):
        res.text = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- charset


def test_build_charset_order() -> None:
    assert build_charset(["a", "b"], True) == ["blank", "a", "b", " "]
    assert build_charset(["a", "b"], False) == ["blank", "a", "b"]
    assert build_charset([], False) == ["blank"]


def test_read_dict_file_crlf_and_space(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "dict.txt"
    p.write_bytes("a\r\nb\r\n \r\n中\r\nz".encode("utf-8"))
    assert read_dict_file(p) == ["a", "b", " ", "中", "z"]


def test_read_dict_file_lf_and_empty_line(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "dict.txt"
    p.write_bytes(b"a\n\nb\n \n")
    # PaddleOCR keeps the empty line as an empty-string class; the single space stays a space
    assert read_dict_file(str(p)) == ["a", "", "b", " "]


def test_read_dict_then_decode(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "dict.txt"
    p.write_bytes("x\ny\n".encode("utf-8"))
    charset = build_charset(read_dict_file(p), use_space_char=True)
    assert charset == ["blank", "x", "y", " "]
    (res,) = ctc_greedy_decode(_probs([(2, 0.9), (3, 0.9), (1, 0.9)]), charset)
    assert res.text == "y x"


def test_check_num_classes() -> None:
    check_num_classes(["blank", "a", "b", " "], 4)  # no error
    with pytest.raises(SpecMismatchError) as info:
        check_num_classes(["blank", "a", "b"], 4)
    msg = str(info.value)
    assert "3" in msg and "4" in msg and "use_space_char" in msg
    with pytest.raises(SpecMismatchError) as info:
        check_num_classes(["blank", "a", "b", " "], 3)
    assert "use_space_char" in str(info.value)
    with pytest.raises(SpecMismatchError, match="6625"):
        check_num_classes(["blank", "a"], 6625)


def test_reverse_rtl_keeps_latin_and_digit_runs():
    from ppocr_torch.decode import reverse_rtl

    # Arabic letters reversed one by one, the run "12.5 kg" kept in reading order (PaddleOCR pred_reverse)
    assert reverse_rtl("\u0627\u0628 12.5 kg\u062a") == "\u062a 12.5 kg\u0628\u0627"
    assert reverse_rtl("abc") == "abc"
    assert reverse_rtl("\u0627\u0628\u062a") == "\u062a\u0628\u0627"
    assert reverse_rtl("") == ""


def test_decode_reverse_flag_reverses_text_not_chars():
    import numpy as np

    from ppocr_torch.decode import ctc_greedy_decode

    charset = ["blank", "\u0627", "\u0628", "1", "2"]
    p = np.full((4, 5), 0.01, np.float32)
    for t, c in enumerate([1, 2, 3, 4]):
        p[t, c] = 0.96
    r, = ctc_greedy_decode(p, charset, reverse=True)
    assert r.text == "12\u0628\u0627"
    assert [c.char for c in r.chars] == ["\u0627", "\u0628", "1", "2"]
