"""Lines wider than ``max_width`` are read in overlapping windows merged by CTC time step (ppocr_torch.long_lines).

Long lines are built at test time from the rendered, labelled lines of tests/data/lines: each resized to the
model height, its edge columns repeated for 16 px on both sides (a gap of its own background), then joined
side by side. The reference reading is the same pieces read one by one; characters of the long line's reading
are assigned to pieces by their time step, so accuracy is counted per piece (spaces at the joins ignored).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ppocr_torch import long_lines
from ppocr_torch.decode import decode_steps
from ppocr_torch.errors import InvalidImageError
from ppocr_torch.long_lines import MAX_SPLIT_WIDTH, choose_cut, read_long_line, window_starts

from helpers import ROOT, read_labels

H = 48
PAD = 16


# -- no model: window placement, cut choice and merging on a synthetic "model" -------------------------------

def test_window_starts_cover_the_line_on_the_8px_grid():
    for width in (2401, 4480, 4481, 9999, 50000, 123457):
        starts = window_starts(width, 2400, 320)
        assert starts[0] == 0 and starts[-1] + 2400 >= width > starts[-1] + 2400 - 8
        assert all(s % 8 == 0 for s in starts)
        assert all(320 <= a + 2400 - b < 2400 for a, b in zip(starts, starts[1:]))
    assert window_starts(2000, 2400, 320) == [0]
    with pytest.raises(ValueError):
        window_starts(5000, 2400, 2400)


def test_cut_is_the_middle_of_the_longest_common_blank_run():
    a = np.array([5, 0, 0, 7, 0, 0, 0, 0, 3, 3, 0, 9, 9, 0, 0, 4, 0, 0, 1, 1])
    b = a.copy()
    b[14] = 4  # the two windows disagree there
    assert choose_cut(a, b) == 6  # the run 4..7 (both blank) in the middle half 5..15, cut inside it
    c = choose_cut(np.full(20, 3), np.full(20, 3))  # no blank: a step where both agree, near the middle
    assert c == 10
    assert choose_cut(np.arange(1, 21), np.arange(2, 22)) == 10  # nothing agrees: the middle


def _synthetic_line(rng, steps):
    """A [H, 8 * steps, 3] uint8 line whose 8-px column blocks encode a CTC step sequence (class = pixel value),
    with characters 1-3 steps wide, blanks between them and repeated characters."""
    seq = []
    while len(seq) < steps:
        cls = int(rng.integers(1, 60))
        seq += [cls] * int(rng.integers(1, 4))
        if rng.random() < 0.25:  # the same character again after a one-step blank ("ll")
            seq += [0] + [cls] * int(rng.integers(1, 3))
        seq += [0] * int(rng.integers(0, 3))
    seq = np.array(seq[:steps], dtype=np.uint8)
    return np.repeat(np.repeat(seq, 8)[None, :, None], H, axis=0).repeat(3, axis=2), seq.astype(np.int64)


def _fake_run(edge, rng, calls, n_windows):
    """A "model" reading the class of each 8-px block, wrong within ``edge`` steps of a window edge inside the
    line (edge effects), with the probability 0.5 + class / 1000."""

    def run(x):
        pix = np.rint((x[:, 0, 0, ::8] * 0.5 + 0.5) * 255).astype(np.int64)  # [n, T]
        for j in range(len(x)):
            k = len(calls) + j  # window number
            if k > 0:
                pix[j, :edge] = rng.integers(0, 60, size=edge)
            if k < n_windows - 1:
                pix[j, -edge:] = rng.integers(0, 60, size=edge)
        calls.extend([x.shape] * len(x))
        return pix, (0.5 + pix / 1000).astype(np.float32)

    return run


@pytest.mark.parametrize("steps", [301, 1000, 1001, 6250])
def test_merge_neither_loses_nor_duplicates_a_step(steps):
    rng = np.random.default_rng(steps)
    charset = ["blank"] + [chr(0x4E00 + i) for i in range(1, 60)]
    img, seq = _synthetic_line(rng, steps)
    calls = []
    n = len(window_starts(img.shape[1], 800, 160))
    idx, prob = read_long_line(img, H, img.shape[1], _fake_run(5, rng, calls, n), window=800, overlap=160,
                               batch_px=1600)
    assert len(idx) == steps and len(calls) == n and all(shape[1:] == (3, H, 800) for shape in calls)
    want = decode_steps(seq, (0.5 + seq / 1000).astype(np.float32), charset)
    got = decode_steps(idx, prob, charset)
    assert got.text == want.text and got.chars == want.chars and got.score == want.score


def test_a_character_straddling_a_naive_cut_is_read_once(monkeypatch):
    """Cut in the middle of the overlap whatever is there: with characters several steps wide many cuts fall
    inside a character's run, which the decode collapses across the cut."""
    monkeypatch.setattr(long_lines, "choose_cut", lambda a, b: len(a) // 2)
    charset = ["blank"] + [chr(0x4E00 + i) for i in range(1, 60)]
    straddled = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        img, seq = _synthetic_line(rng, 1500)
        starts = window_starts(img.shape[1], 800, 160)
        idx, prob = read_long_line(img, H, img.shape[1], _fake_run(4, rng, [], len(starts)), window=800,
                                   overlap=160)
        for a, b in zip(starts, starts[1:]):
            cut = b // 8 + (a + 800 - b) // 16  # the middle step of the overlap
            straddled += bool(seq[cut - 1] != 0 and seq[cut - 1] == seq[cut])
        want = decode_steps(seq, (0.5 + seq / 1000).astype(np.float32), charset)
        got = decode_steps(idx, prob, charset)
        assert got.text == want.text and got.chars == want.chars
    assert straddled >= 10


# -- the default model on rendered lines -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pieces():
    """The rendered lines at model height with 16 px of their own edge columns on each side, and labels."""
    import cv2

    out = []
    for path, text in read_labels():
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        w = max(1, int(np.ceil(H * img.shape[1] / img.shape[0])))
        img = cv2.resize(img, (w, H))
        out.append((cv2.copyMakeBorder(img, 0, 0, PAD, PAD, cv2.BORDER_REPLICATE), text))
    return out


def _join(pieces, width):
    """Pieces (cycling) side by side until ``width`` px; returns the line and the pieces used."""
    used, total, k = [], 0, 0
    while total < width:
        img, text = pieces[k % len(pieces)]
        used.append((img, text))
        total += img.shape[1]
        k += 1
    line = np.ascontiguousarray(np.hstack([img for img, _ in used])[:, :width])
    last_w = width - sum(img.shape[1] for img, _ in used[:-1])
    if last_w < used[-1][0].shape[1]:  # the last piece was cut: drop it from the comparison
        used[-1] = (used[-1][0][:, :last_w], None)
    return line, used


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _per_piece(result, used, step_px=8):
    """The long line's characters grouped by the piece their first step lies in (texts stripped)."""
    edges = np.cumsum([img.shape[1] for img, _ in used])
    texts = [""] * len(used)
    for c in result.chars:
        k = int(np.searchsorted(edges, (c.first + 0.5) * step_px, side="right"))
        if k < len(used):
            texts[k] += c.char
    return [t.strip() for t in texts]


def _accuracy(texts, used):
    pairs = [(t, label) for t, (_, label) in zip(texts, used) if label is not None]
    return 1 - sum(_levenshtein(t, label) for t, label in pairs) / sum(len(label) for _, label in pairs)


@pytest.fixture(scope="module")
def rec():
    from ppocr_torch import Recognizer

    return Recognizer()


def test_a_glyph_cut_in_half_is_read_once(rec, pieces, monkeypatch):
    """A 2,000 px line read in 1,200 px windows (starts 0 and 800: one overlap, 800-1,200 px), shifted right so
    that a character's centre (from the one-pass reading) lies on the overlap's middle, where the naive cut is:
    the glyph straddles the cut. Read with the cut rule and with the naive cut, the line reads as in one pass,
    spaces aside (whether a narrow gap is a space depends on the context)."""
    import cv2

    from ppocr_torch import Recognizer

    small = Recognizer(rec.model, max_width=1200)
    line, _ = _join(pieces[40:60], 2000)
    assert window_starts(2000, 1200, 320) == [0, 800]
    middle = 8 * (800 // 8 + (1200 - 800) // 16)  # the naive cut, in px: the overlap's middle step
    centres = [(c.first + c.last + 1) * 4 for c in rec(line).chars if c.char != " "]
    centre = max(x for x in centres if x < middle - 8)
    shifted = cv2.copyMakeBorder(line, 0, 0, middle - centre, 0, cv2.BORDER_REPLICATE)[:, :2000]
    whole = rec(shifted)
    assert min(abs((c.first + c.last + 1) * 4 - middle) for c in whole.chars if c.char != " ") <= 8
    split = small(shifted).text
    with monkeypatch.context() as m:
        m.setattr(long_lines, "choose_cut", lambda a, b: len(a) // 2)
        at_middle = small(shifted).text
    print(f"glyph centred on the cut at {middle} px:\n one pass {whole.text!r}\n split    {split!r}\n "
          f"naive    {at_middle!r}")
    assert split.replace(" ", "") == whole.text.replace(" ", "") == at_middle.replace(" ", "")


@pytest.fixture(scope="module")
def cycle(rec, pieces):
    """The first rendered lines, about 6,000 px together, and their readings one by one."""
    used, total = [], 0
    for img, text in pieces:
        if total >= 6000:
            break
        used.append((img, text))
        total += img.shape[1]
    return used, [r.text.strip() for r in rec([img for img, _ in used])]


@pytest.mark.slow
@pytest.mark.acceptance  # an issue's acceptance run: the CI lane -m acceptance
def test_a_50000_px_line_reads_like_its_pieces_in_little_memory(tmp_path, cycle):
    """The first rendered lines repeated to 48x50,000 px, read in windows in a fresh process: per piece, the
    character accuracy is that of the pieces read one by one (within 1 point); the peak RSS stays low."""
    used_pieces, alone_texts = cycle
    line, used = _join(used_pieces, 50000)
    assert line.shape == (H, 50000, 3)
    np.save(tmp_path / "line.npy", line)
    script = textwrap.dedent(f"""
        import json, time
        import numpy as np
        from ppocr_torch import Recognizer

        def hwm():
            for row in open("/proc/self/status"):
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) // 1024
        rec = Recognizer()
        rec(np.full((48, 320, 3), 255, np.uint8))  # weights packed on first use
        line = np.load({str(tmp_path / "line.npy")!r})
        before = hwm()
        t = time.perf_counter()
        res = rec(line)
        seconds = time.perf_counter() - t
        print(json.dumps({{"before_mib": before, "peak_mib": hwm(), "seconds": seconds, "result": res.to_dict()}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    from ppocr_torch.decode import CharResult, RecResult

    split = RecResult(report["result"]["text"], report["result"]["score"],
                      tuple(CharResult(*c) for c in report["result"]["chars"]))
    split_texts = _per_piece(split, used)
    alone = [alone_texts[k % len(alone_texts)] for k in range(len(used))]
    acc_split, acc_alone = _accuracy(split_texts, used), _accuracy(alone, used)
    same = sum(a == b for a, b, (_, label) in zip(split_texts, alone, used) if label is not None)
    print(f"50000 px: peak RSS {report['peak_mib']} MiB (before the line {report['before_mib']} MiB), "
          f"{report['seconds']:.1f} s; char accuracy split {acc_split:.4f}, pieces {acc_alone:.4f}; "
          f"{same} of {sum(label is not None for _, label in used)} pieces read identically")
    assert abs(acc_split - acc_alone) <= 0.01
    assert report["peak_mib"] - report["before_mib"] < 400
    assert report["peak_mib"] < 1200


# -- options, refusal and the untouched short-line path --------------------------------------------------------

def test_refuse_keeps_the_typed_error_and_the_hard_bound_holds(rec):
    from ppocr_torch import Recognizer

    refusing = Recognizer(rec.model, long_lines="refuse")
    wide = np.full((2, 1400, 3), 255, np.uint8)  # 33,600 px at height 48
    with pytest.raises(InvalidImageError, match="above the limit of 32000; split the text line"):
        refusing(wide)
    out = refusing([wide, np.full((48, 100, 3), 255, np.uint8)], errors="return")
    assert isinstance(out[0], InvalidImageError) and "input 0" in str(out[0]) and out[1].text == ""
    too_wide = np.full((2, MAX_SPLIT_WIDTH // 24 + 1, 3), 255, np.uint8)
    with pytest.raises(InvalidImageError, match="above the limit of 1000000 for a line read in windows"):
        rec(too_wide)
    for bad in (dict(long_lines="cut"), dict(max_width=639), dict(max_width=32001), dict(max_width=2400.0)):
        with pytest.raises(ValueError):
            Recognizer(rec.model, **bad)
    assert Recognizer(rec.model, long_lines="refuse", max_width=100).max_width == 100


def test_lines_up_to_max_width_take_todays_path_bit_for_bit(rec, pieces, monkeypatch):
    from ppocr_torch import Recognizer
    from ppocr_torch.preprocess import prepare_batch

    line, _ = _join(pieces[60:70], 1200)
    images = [line, pieces[0][0]]
    refusing = Recognizer(rec.model, long_lines="refuse")
    monkeypatch.setattr(Recognizer, "_recognize_long", lambda self, img: pytest.fail("split a short line"))
    got, again = rec(images), refusing(images)
    for img, a, b in zip(images, got, again):
        ((_, batch),) = prepare_batch([img], H)
        (want,) = rec._forward_decode(batch)
        assert a.text == b.text == want.text and a.score == b.score == want.score and a.chars == b.chars == want.chars


def test_cli_long_lines_option(tmp_path):
    import os

    import cv2

    cv2.imwrite(str(tmp_path / "wide.png"), np.full((2, 1400, 3), 255, np.uint8))
    env = dict(os.environ, PPOCR_TORCH_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "ppocr_torch", "recognize", "--long-lines", "refuse",
                           str(tmp_path / "wide.png")], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 1 and "split the text line" in proc.stderr
