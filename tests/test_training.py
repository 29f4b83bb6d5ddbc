"""Fine-tuning: load_model(charset=...), the training package (data formats, resize, augmentation, loss, schedule,
metrics, checkpoints, resume) and the train/eval command lines.

The real fine-tune trains the embedded PP-OCRv6_small_rec on rendered lines; the resume and command-line checks use
a randomly initialised en_PP-OCRv4_mobile_rec (no weights needed, a fast step) reset to a small character set.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

from helpers import LINES_DIR, read_labels
from ppocr_torch.errors import CheckpointError, DatasetError

HAS_KORNIA = importlib.util.find_spec("kornia") is not None
HAS_LMDB = importlib.util.find_spec("lmdb") is not None
DIGITS = "0123456789.-+()%:/"


# -- helpers -------------------------------------------------------------------------------------------------------

def _short_ascii_lines():
    """Rendered lines with ASCII labels of at most 25 characters that fit 320 px at height 48 (69 lines)."""
    from ppocr_torch.image_io import load_image

    rows = []
    for path, text in read_labels():
        if not text.isascii() or len(text) > 25:
            continue
        h, w = load_image(str(path)).shape[:2]
        if math.ceil(48 * w / h) <= 320:
            rows.append((path.name, text))
    return rows


def _write_list(path, rows):
    path.write_text("".join(f"{name}\t{text}\n" for name, text in rows), encoding="utf-8")
    return str(path)


def _line_image(path, width=60, height=20):
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, "ab", (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)
    return img


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    """A random en_PP-OCRv4_mobile_rec reset to digits, '.-+()%:/' and the space, saved as a checkpoint."""
    from ppocr_torch import load_model
    from ppocr_torch.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = load_model("en_PP-OCRv4_mobile_rec", pretrained=False, charset=list(DIGITS),
                       use_space_char=True)
    path = tmp_path_factory.mktemp("small_model") / "small.pth"
    save_checkpoint(path, model)
    return path


@pytest.fixture(scope="module")
def digit_lists(tmp_path_factory):
    """Label files of 8 training and 4 validation lines whose labels use DIGITS and the space only."""
    rows = [(p.name, t) for p, t in read_labels() if t and set(t) <= set(DIGITS + " ") and len(t) <= 15]
    assert len(rows) >= 12
    folder = tmp_path_factory.mktemp("digit_lists")
    return _write_list(folder / "train.txt", rows[:8]), _write_list(folder / "val.txt", rows[8:12])


# -- load_model(charset=...) ---------------------------------------------------------------------------------------

def test_load_model_with_a_charset_resets_the_head_keeping_common_rows(tmp_path):
    from ppocr_torch import Recognizer, load_model
    from ppocr_torch.checkpoint import save_checkpoint

    base = load_model("PP-OCRv6_small_rec")
    new_chars = ["\ue000", "\ue001"]  # private-use characters: in no PaddleOCR dictionary
    assert not set(new_chars) & set(base.charset)
    chars = ["7", "A", "\ue000", "x", "\ue001", "%"]
    dict_file = tmp_path / "mine.txt"
    dict_file.write_text("\n".join(chars) + "\n", encoding="utf-8")

    model = load_model("PP-OCRv6_small_rec", charset=str(dict_file))
    assert model.charset == ["blank", *chars, " "]  # v6 has use_space_char: blank + chars + space
    assert model.num_classes == model.spec.num_classes == len(chars) + 2
    assert model.spec.dictionary == "mine.txt" and model.spec.use_space_char
    old_fc, fc = base.classifier(), model.classifier()
    where = {c: i for i, c in reversed(list(enumerate(base.charset)))}
    for i, c in enumerate(model.charset):
        if c in where:  # blank, common characters and the space keep their trained rows
            assert torch.equal(fc.weight[i], old_fc.weight[where[c]]), c
            assert torch.equal(fc.bias[i], old_fc.bias[where[c]]), c
        else:  # new characters: nn.Linear's fresh initialisation, bounded by 1/sqrt(fan_in), not any old row
            bound = 1 / math.sqrt(fc.in_features)
            assert fc.weight[i].abs().max() <= bound and fc.bias[i].abs() <= bound
            assert not torch.isclose(old_fc.weight, fc.weight[i]).all(dim=1).any()
    kept = base.state_dict()
    for name, tensor in model.state_dict().items():  # backbone and neck untouched
        if not name.startswith("head.ctc_head.fc"):
            assert torch.equal(tensor, kept[name]), name

    no_space = load_model("PP-OCRv6_small_rec", charset=chars, use_space_char=False)
    assert no_space.charset == ["blank", *chars] and no_space.spec.num_classes == len(chars) + 1
    assert no_space.spec.dictionary == "custom"
    with pytest.raises(ValueError):
        load_model("PP-OCRv6_small_rec", use_space_char=True)

    path = tmp_path / "mine.pth"
    save_checkpoint(path, model)
    reloaded = load_model(path)
    assert reloaded.charset == model.charset and reloaded.spec.num_classes == len(chars) + 2
    assert torch.equal(reloaded.classifier().weight, fc.weight)
    rec = Recognizer(str(path))
    assert rec.charset == model.charset

    # the fresh rows depend on the caller's seed only, not on whether the file was built or taken from the cache
    fresh_path = tmp_path / "again.pth"
    save_checkpoint(fresh_path, model)
    other = ["\ue002", "\ue003", "7"]
    torch.manual_seed(5)
    built = load_model(fresh_path, charset=other)  # first load of this file: the model is built
    torch.manual_seed(5)
    cached = load_model(fresh_path, charset=other)  # deep copy of the cached one
    assert torch.equal(built.classifier().weight, cached.classifier().weight)
    assert set(rec(str(LINES_DIR / "0011.png")).text) <= set(chars + [" "])  # decodes over the new set


# -- data: label files, ratios, skips, LMDB ------------------------------------------------------------------------

def test_parse_sources_ratios_and_paths():
    from ppocr_torch.training.labels import Source, parse_sources

    assert parse_sources("a.txt,b/c.txt:0.5, d.txt:2") == [Source("a.txt"), Source("b/c.txt", 0.5),
                                                           Source("d.txt", 2.0)]
    assert parse_sources(r"C:\data\train.txt") == [Source(r"C:\data\train.txt")]  # a colon of the path
    assert parse_sources(["x.txt:0.25"]) == [Source("x.txt", 0.25)]
    for bad in ("a.txt:0", "a.txt:-1", "a.txt:nan", ":0.5", ""):
        with pytest.raises(DatasetError):
            parse_sources(bad)


def test_label_file_relative_paths_skips_and_counts(tmp_path):
    from ppocr_torch.training import LineDataset

    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png"):
        _line_image(images / name)
    absolute = tmp_path / "abs.png"
    _line_image(absolute)
    lines = [
        "imgs/a.png\tab",                # kept
        "imgs/b.png\tba\textra field",   # kept: PaddleOCR reads the second field only
        "imgs/c.png\tabc\r",             # CRLF: the \r is not part of the label
        "",                              # blank line: ignored
        "no delimiter here",             # malformed
        "imgs/d.png\ta#b",               # '#' is not in the charset: skipped
        "imgs/e.png\t",                  # empty label
        "imgs/f.png\t" + "a" * 26,       # longer than max_text_length
        "imgs/g.png\taaaa",              # needs 4 + 3 = 7 CTC steps, more than max_steps = 6
        "imgs/missing.png\tab",          # image file missing
        f"{absolute}\tcab",              # absolute path kept as it is
    ]
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")

    charset = ["blank", "a", "b", "c", " "]
    ds = LineDataset(str(listing), charset, image_height=48, image_width=320, max_text_length=25, max_steps=6,
                     data_dir=tmp_path)
    assert [s[2] for s in ds.samples] == ["ab", "ba", "abc", "cab"]
    assert [s[3] for s in ds.samples][:3] == [[1, 2], [2, 1], [1, 2, 3]]
    assert ds.samples[0][1] == os.path.join(tmp_path, "imgs/a.png") and ds.samples[3][1] == str(absolute)
    assert ds.skipped == {"malformed": 1, "unknown_chars": 1, "empty": 1, "too_long": 1, "too_long_for_ctc": 1,
                          "missing_image": 1}
    assert ds.per_source == [{"source": str(listing), "lines": 10, "kept": 4, "skipped": dict(ds.skipped)}]

    item = ds[0]
    assert item["image"].shape == (3, 48, 320) and item["image"].dtype == np.float32
    assert item["label"] == [1, 2] and item["text"] == "ab" and item["width"] == math.ceil(48 * 60 / 20)

    # PaddleOCR's way with unknown characters: remove them and keep the sample
    ds = LineDataset(str(listing), charset, image_height=48, max_steps=6, unknown_chars="remove", data_dir=tmp_path)
    assert "ab" in ds.texts and ds.skipped.get("unknown_chars", 0) == 0 and ds.texts.count("ab") == 2

    # relative to the label file's own folder by default: every image is then missing
    with pytest.raises(DatasetError):
        LineDataset(str(tmp_path / "nowhere.txt"), charset, image_height=48)
    ds = LineDataset(str(listing), charset, image_height=48)
    assert len(ds) == 1 and ds.skipped["missing_image"] == 5  # only the absolute path resolves


def test_sampling_ratios_are_seeded_and_sized(tmp_path):
    from ppocr_torch.training import LineDataset

    _line_image(tmp_path / "x.png")
    texts = ["a" + "b" * (i % 5) + "c" * (i // 5) for i in range(10)]
    for name in ("one.txt", "two.txt"):
        _write_list(tmp_path / name, [("x.png", t) for t in texts])
    charset = ["blank", "a", "b", "c"]

    def kept(spec, seed=0):
        return [s[2] for s in LineDataset(spec, charset, image_height=32, seed=seed, max_text_length=None).samples]

    one, two = str(tmp_path / "one.txt"), str(tmp_path / "two.txt")
    assert kept(one) == texts  # ratio 1: everything, in file order
    half = kept(f"{one}:0.5")
    assert len(half) == 5 and len(set(half)) == 5 and set(half) <= set(texts)
    assert kept(f"{one}:0.5") == half  # same seed, same choice
    assert any(kept(f"{one}:0.5", seed=s) != half for s in range(1, 5))
    assert len(kept(f"{one}:0.3,{two}:2")) == 3 + 20
    more = kept(f"{one}:1.5")
    assert len(more) == 15 and more[:10] == texts  # one full copy plus half of it again


def _write_lmdb(folder, samples, num_samples=None):
    import lmdb

    folder.mkdir(parents=True)
    env = lmdb.open(str(folder), map_size=1 << 22)
    with env.begin(write=True) as txn:
        for i, (img, label) in enumerate(samples, 1):  # PaddleOCR's keys count from 1
            ok, png = cv2.imencode(".png", img)
            txn.put(b"image-%09d" % i, png.tobytes())
            txn.put(b"label-%09d" % i, label.encode("utf-8"))
        if num_samples is not False:
            txn.put(b"num-samples", str(len(samples) if num_samples is None else num_samples).encode())
    env.close()


@pytest.mark.skipif(not HAS_LMDB, reason="lmdb is not installed (pip install 'ppocr-torch[train]')")
def test_lmdb_folders_are_read_like_paddleocr(tmp_path):
    from torch.utils.data import DataLoader

    from ppocr_torch.training import LineDataset, collate, read_lmdb_labels

    img = np.full((16, 40, 3), 200, np.uint8)
    img[4:12, 5:35] = 0
    root = tmp_path / "lmdb"
    _write_lmdb(root / "part1", [(img, "ab"), (img, "b#")])
    _write_lmdb(root / "part2" / "inner", [(img, "ba"), (img, "a")], num_samples=3)  # index 3 has no label

    triples, malformed = read_lmdb_labels(root)
    assert [(os.path.relpath(f, root), i, t) for f, i, t in triples] == [
        ("part1", 1, "ab"), ("part1", 2, "b#"), (os.path.join("part2", "inner"), 1, "ba"),
        (os.path.join("part2", "inner"), 2, "a")]
    assert malformed == 1

    ds = LineDataset(str(root), ["blank", "a", "b"], image_height=32, image_width=128)
    assert ds.texts == ["ab", "ba", "a"] and ds.skipped == {"unknown_chars": 1, "malformed": 1}
    assert ds.per_source[0]["lines"] == 5
    # each DataLoader worker opens its own LMDB environment
    batches = list(DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate))
    assert [b["texts"] for b in batches] == [["ab", "ba"], ["a"]]
    assert batches[0]["images"].shape == (2, 3, 32, 80)  # padded to the widest of the batch
    assert torch.equal(batches[0]["targets"], torch.tensor([1, 2, 2, 1]))

    broken = tmp_path / "broken"
    _write_lmdb(broken, [(img, "a")], num_samples=False)
    with pytest.raises(DatasetError, match="num-samples"):
        read_lmdb_labels(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no LMDB database"):
        read_lmdb_labels(tmp_path / "empty")


# -- resize, collate, augmentation, loss, schedule, metrics --------------------------------------------------------

def test_rec_resize_is_paddleocr_resize_norm_img_and_collate_pads():
    from ppocr_torch.training import collate, rec_resize

    rng = np.random.default_rng(0)
    for h, w in ((30, 50), (32, 900), (48, 320)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out, width = rec_resize(img, 48, 320)
        resized_w = min(320, math.ceil(48 * w / h))  # wider lines are squeezed to 320
        ref = cv2.resize(img, (resized_w, 48)).astype(np.float32).transpose(2, 0, 1) / 255
        ref = (ref - 0.5) / 0.5
        assert width == resized_w and out.shape == (3, 48, 320)
        np.testing.assert_allclose(out[:, :, :resized_w], ref, rtol=0, atol=1e-6)
        assert not out[:, :, resized_w:].any()

    a = {"image": np.ones((3, 4, 10), np.float32), "width": 6, "label": [1, 2], "text": "ab"}
    b = {"image": np.ones((3, 4, 10), np.float32), "width": 9, "label": [3], "text": "c"}
    batch = collate([a, None, b])
    assert batch["images"].shape == (2, 3, 4, 9) and batch["dropped"] == 1
    assert batch["targets"].tolist() == [1, 2, 3] and batch["target_lengths"].tolist() == [2, 1]
    assert collate([a, b], pad_width=12)["images"].shape == (2, 3, 4, 12)


@pytest.mark.skipif(not HAS_KORNIA, reason="kornia is not installed (pip install 'ppocr-torch[train]')")
def test_augmentation_is_random_seeded_and_fills_with_the_background():
    from ppocr_torch.image_io import load_image
    from ppocr_torch.training import LineAugment

    img = load_image(str(LINES_DIR / "0018.png"))
    aug = LineAugment(prob=1.0)
    torch.manual_seed(1)
    first = aug(img)
    torch.manual_seed(1)
    assert np.array_equal(aug(img), first)  # torch's generator drives it: seeded runs repeat
    assert first.shape == img.shape and first.dtype == np.uint8
    outs = [aug(img) for _ in range(6)]
    assert sum(not np.array_equal(o, img) for o in outs) >= 5
    assert LineAugment(prob=0.0)(img) is img

    white = np.full((48, 200, 3), 255, np.uint8)
    white[18:30, 20:180] = 0
    geo = LineAugment(prob=1.0, color=False, blur=False, noise=False)
    torch.manual_seed(3)
    for _ in range(5):
        out = geo(white)
        assert out[0, :].min() > 200 and out[-1, :].min() > 200  # uncovered borders are white, not black


def test_ctc_loss_is_paddleocr_mean_over_samples():
    import torch.nn.functional as F

    from ppocr_torch.training import ctc_loss

    torch.manual_seed(0)
    logits = torch.randn(3, 12, 6)
    targets, lengths = torch.tensor([1, 2, 3, 3, 4, 5, 1, 2]), torch.tensor([3, 3, 2])
    ref = F.ctc_loss(logits.log_softmax(2).transpose(0, 1), targets, torch.full((3,), 12), lengths, blank=0,
                     reduction="none")
    assert torch.allclose(ctc_loss(logits, targets, lengths), ref.mean())
    # a confident right alignment costs almost nothing; an impossible one costs 0, not infinity
    good = torch.full((1, 4, 6), -20.0)
    for t, c in enumerate([1, 0, 2, 2]):
        good[0, t, c] = 20.0
    assert float(ctc_loss(good, torch.tensor([1, 2]), torch.tensor([2]))) < 1e-6
    assert float(ctc_loss(good, torch.tensor([1, 1, 1]), torch.tensor([3]))) == 0.0  # needs 5 steps, has 4


def test_warmup_cosine_schedule_values():
    from ppocr_torch.training import warmup_cosine, warmup_cosine_factor

    f = functools.partial(warmup_cosine_factor, total_steps=100, warmup_steps=10)
    assert [f(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]  # linear warm-up: (step + 1) / 10
    assert f(10) == 1.0  # the cosine starts at its top
    assert f(55) == pytest.approx(0.5)  # halfway through the 90 decay steps: (1 + cos(pi / 2)) / 2
    assert f(40) == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))  # 30 / 90 of the way: 0.75
    assert f(100) == 0.0 and f(150) == 0.0
    assert warmup_cosine_factor(55, 100, 10, min_ratio=0.1) == pytest.approx(0.55)
    assert warmup_cosine_factor(0, 10) == 1.0  # no warm-up

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=0.2)
    sched = warmup_cosine(opt, 100, 10)
    seen = []
    for _ in range(56):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(0.02) and seen[9] == pytest.approx(0.2) and seen[55] == pytest.approx(0.1)
    buf = _roundtrip(sched.state_dict())  # plain data: loads with weights_only=True
    assert buf["last_epoch"] == 56


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_metrics_on_hand_computed_cases():
    from ppocr_torch.training import levenshtein, text_metrics

    assert levenshtein("kitten", "sitting") == 3  # k->s, e->i, +g
    assert levenshtein("flaw", "lawn") == 2  # -f, +n
    assert levenshtein("ab", "ba") == 2  # no transpositions: two substitutions
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("abc", "abc") == 0
    assert levenshtein("你好", "你们好") == 1

    # pairs (prediction, truth): distances 0, 1, 0, 3
    m = text_metrics(["abc", "ab", "", "xyz"], ["abc", "abc", "", "a"])
    assert m["n"] == 4 and m["acc"] == 0.5
    # char_acc: 1, 1 - 1/3, 1 (both empty), max(0, 1 - 3/1) = 0 -> (8/3) / 4
    assert m["char_acc"] == pytest.approx(2 / 3)
    # PaddleOCR norm_edit_dis: 1 - mean(0, 1/3, 0, 3/3) = 1 - 1/3
    assert m["norm_edit_dis"] == pytest.approx(2 / 3)
    assert (m["edits"], m["chars"]) == (4, 7) and m["cer"] == pytest.approx(4 / 7)
    assert text_metrics(["a"], [""])["char_acc"] == 0.0
    assert text_metrics([], [])["n"] == 0


# -- training ------------------------------------------------------------------------------------------------------

def test_fine_tune_on_a_new_charset_lowers_the_loss_and_keeps_accuracy(tmp_path, capsys):
    """PP-OCRv6_small_rec reset to the 68 characters of 69 short ASCII lines (+ space), trained 2 epochs on 12 of them
    (batches of 4, augmentation on when kornia is there), validated on 10 others. The pretrained rows of these
    characters are kept, so the model starts right on every line: training must lower the loss further without
    losing any line. The learning of a fully fresh classifier is the slow test below."""
    from ppocr_torch import Recognizer, load_model
    from ppocr_torch.training import TrainConfig, evaluate, train

    rows = _short_ascii_lines()
    assert len(rows) >= 60
    val_rows = rows[::7]
    train_rows = [r for r in rows if r not in val_rows][::5]
    train_list = _write_list(tmp_path / "train.txt", train_rows)
    val_list = _write_list(tmp_path / "val.txt", val_rows)
    chars = sorted(set("".join(t for _, t in rows)) - {" "})

    torch.manual_seed(0)
    model = load_model("PP-OCRv6_small_rec", charset=chars)
    assert model.num_classes == len(chars) + 2

    train_before = evaluate(model, [train_list], data_dir=str(LINES_DIR))
    val_before = evaluate(model, [val_list], data_dir=str(LINES_DIR))
    config = TrainConfig(train=[train_list], val=[val_list], out=str(tmp_path / "run"), epochs=2, batch_size=4,
                         data_dir=str(LINES_DIR), augment=HAS_KORNIA, log_every=1, seed=0)
    result = train(model, config, progress=False)
    train_after = evaluate(model, [train_list], data_dir=str(LINES_DIR))
    val_after = result["history"][-1]["val"]  # validation of the final model, after the last epoch
    with capsys.disabled():
        print(f"\nfine-tune: train loss {train_before['loss']:.5f} -> {train_after['loss']:.5f}, "
              f"train acc {train_before['acc']:.3f} -> {train_after['acc']:.3f}; "
              f"val loss {val_before['loss']:.5f} -> {val_after['loss']:.5f}, "
              f"val acc {val_before['acc']:.3f} -> {val_after['acc']:.3f}, "
              f"char_acc {val_before['char_acc']:.4f} -> {val_after['char_acc']:.4f}; "
              f"epoch losses {[round(h['train_loss'], 5) for h in result['history']]}")

    assert len(train_rows) == 12 and len(val_rows) == 10
    assert result["train_samples"] == 12 and result["step"] == 6 and result["finished"]
    assert train_after["loss"] < 0.7 * train_before["loss"]  # a broken step (no update, wrong labels) fails this
    assert val_after["acc"] >= val_before["acc"] and val_after["char_acc"] >= val_before["char_acc"]

    run = tmp_path / "run"
    for name in ("latest.pth", "best.pth", "resume.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records].count("epoch") == 2 and records[0]["event"] == "start"
    assert records[-1]["event"] == "end" and sum(r["event"] == "step" for r in records) == 6
    assert records[0]["time_steps"] == 40 and records[0]["train_samples"] == 12
    best = load_model(run / "best.pth")
    assert best.charset == model.charset and best.weights_meta["epoch"] in (1, 2)
    name, text = val_rows[0]
    assert Recognizer(best)(str(LINES_DIR / name)).text == text


@pytest.mark.slow
def test_fine_tune_from_a_fresh_classifier_learns(tmp_path, capsys):
    """A fully fresh classifier (keep_common=False) on 55 lines for 3 epochs: the loss must fall by most of its
    value and the held-out lines start being read."""
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, evaluate, train

    rows = _short_ascii_lines()
    val_rows = rows[::5]
    train_rows = [r for r in rows if r not in val_rows]
    train_list = _write_list(tmp_path / "train.txt", train_rows)
    val_list = _write_list(tmp_path / "val.txt", val_rows)
    chars = sorted(set("".join(t for _, t in rows)) - {" "})
    model = load_model("PP-OCRv6_small_rec")
    torch.manual_seed(0)
    model.reset_head(chars, keep_common=False)
    before = evaluate(model, [train_list], data_dir=str(LINES_DIR))
    train(model, TrainConfig(train=[train_list], out=str(tmp_path / "run"), epochs=3, batch_size=8, lr=5e-4,
                             data_dir=str(LINES_DIR), augment=False), progress=False)
    after = evaluate(model, [train_list], data_dir=str(LINES_DIR))
    val = evaluate(model, [val_list], data_dir=str(LINES_DIR))
    with capsys.disabled():
        print(f"\nfresh head: train loss {before['loss']:.2f} -> {after['loss']:.2f}, char_acc "
              f"{before['char_acc']:.3f} -> {after['char_acc']:.3f}; val char_acc {val['char_acc']:.3f}")
    assert after["loss"] < 0.3 * before["loss"]
    assert val["char_acc"] > before["char_acc"] == 0.0


def _state(path):
    from ppocr_torch.checkpoint import read_checkpoint

    return read_checkpoint(path)["state_dict"]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, small_model_file, digit_lists, capsys):
    """Two epochs in one go, against one epoch, a stop, and a resumed second epoch: every epoch re-seeds all
    generators and resume.pt restores model, AdamW moments, schedule and step, so the resumed run takes the same
    steps on the same batches (augmentation included) and ends with identical weights (bit for bit on one
    machine; the assertion allows 1e-6 for a different thread schedule)."""
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, load_train_state, resume_training, train

    train_list, val_list = digit_lists

    def config(out):
        return TrainConfig(train=[train_list], val=[val_list], out=str(out), epochs=2, batch_size=4, lr=1e-3,
                           data_dir=str(LINES_DIR), augment=HAS_KORNIA, aug_prob=0.5, seed=7, log_every=1,
                           image_width=160)  # half the usual width: half the time

    full = train(load_model(small_model_file), config(tmp_path / "full"), progress=False)
    assert full["finished"] and full["step"] == 4

    part = train(load_model(small_model_file), config(tmp_path / "part"), progress=False, stop_after=1)
    assert not part["finished"] and part["epochs_done"] == 1 and part["step"] == 2
    state = load_train_state(tmp_path / "part")  # the folder or its resume.pt; weights_only=True inside
    assert state["epoch"] == 1 and state["step"] == 2 and state["scheduler"]["last_epoch"] == 2
    rest = resume_training(tmp_path / "part" / "resume.pt", progress=False)
    assert rest["finished"] and rest["step"] == 4 and len(rest["history"]) == 1

    a, b = _state(tmp_path / "full" / "latest.pth"), _state(tmp_path / "part" / "latest.pth")
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    with capsys.disabled():
        print(f"\nresume: largest weight difference to the uninterrupted run {worst:g}")
    assert worst <= 1e-6, worst
    assert full["history"][-1]["train_loss"] == pytest.approx(rest["history"][-1]["train_loss"], abs=1e-6)
    events = [json.loads(line)["event"] for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert events.count("resume") == 1 and events[-1] == "end" and "stopped" in events

    with pytest.raises(CheckpointError):
        load_train_state(tmp_path / "full" / "latest.pth")  # a model checkpoint, not a training state
    with pytest.raises(ValueError):
        resume_training(tmp_path / "part", overrides={"lr": 1.0})


def test_mixed_precision_path_runs_on_the_cpu_in_bfloat16(tmp_path, small_model_file, digit_lists):
    """The autocast + GradScaler code path that CUDA takes (float16), exercised on the CPU with bfloat16: the
    classifier computes in bfloat16 during the training steps, the loss stays finite, the weights move, and the
    settings (autocast on, dtype, no GradScaler for bfloat16) are logged. ``amp_settings`` picks float16 with a
    GradScaler on CUDA by default and nothing on the CPU."""
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, train
    from ppocr_torch.training.trainer import amp_settings

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert amp_settings(TrainConfig(), cuda) == (True, torch.float16, True)
    assert amp_settings(TrainConfig(), cpu)[0::2] == (False, False)
    assert amp_settings(TrainConfig(amp=False), cuda)[0::2] == (False, False)
    assert amp_settings(TrainConfig(amp_dtype="bfloat16"), cuda) == (True, torch.bfloat16, False)
    assert amp_settings(TrainConfig(amp_dtype="float16"), cpu) == (True, torch.float16, False)
    with pytest.raises(ValueError, match="amp_dtype"):
        TrainConfig(train=["x.txt"], amp_dtype="float8").check()

    train_list, _ = digit_lists
    model = load_model(small_model_file)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dtypes = []
    model.classifier().register_forward_hook(lambda module, args, out: dtypes.append((module.training, out.dtype)))
    result = train(model, TrainConfig(train=[train_list], out=str(tmp_path / "run"), epochs=1, batch_size=4,
                                      lr=1e-3, data_dir=str(LINES_DIR), augment=False, amp_dtype="bfloat16",
                                      image_width=160, log_every=1), progress=False)
    # the time-step probe (outside autocast), then the two training steps
    assert result["step"] == 2 and [d for training, d in dtypes if training] == [torch.float32] + [torch.bfloat16] * 2
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert (log[0]["amp"], log[0]["amp_dtype"], log[0]["grad_scaler"]) == (True, "bfloat16", False)
    assert all(math.isfinite(r["loss"]) for r in log if r["event"] == "step")
    after = model.state_dict()
    assert all(after[k].dtype == before[k].dtype for k in before)  # the weights stay float32
    # and they moved (the head's: this model's SVTR neck has use_guide, PaddleOCR's stop-gradient before it)
    moved = {k for k in before if not torch.equal(after[k], before[k])}
    assert any(k.endswith("ctc_head.fc.weight") for k in moved), sorted(moved)


def test_training_rejects_unusable_data(tmp_path, small_model_file):
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, train

    model = load_model(small_model_file)
    with pytest.raises(DatasetError, match="does not exist"):
        train(model, TrainConfig(train=[str(tmp_path / "none.txt")], out=str(tmp_path / "o"), augment=False))
    only_letters = _write_list(tmp_path / "letters.txt", [("0002.png", "Keep calm")])
    with pytest.raises(DatasetError, match="no usable training sample"):
        train(model, TrainConfig(train=[only_letters], out=str(tmp_path / "o"), data_dir=str(LINES_DIR),
                                 augment=False))
    with pytest.raises(ValueError):
        TrainConfig(train=["x.txt"], epochs=0).check()


# -- command line --------------------------------------------------------------------------------------------------

def test_cli_train_then_eval(tmp_path, small_model_file, digit_lists, capsys):
    from ppocr_torch.cli import main

    train_list, val_list = digit_lists
    dict_file = tmp_path / "digits.txt"
    dict_file.write_text("\n".join(DIGITS + "#") + "\n", encoding="utf-8")
    out = tmp_path / "run"
    code = main(["train", "--model", str(small_model_file), "--charset", str(dict_file), "--space-char",
                 "--train", f"{train_list}:0.5,{train_list}", "--val", val_list, "--data-dir", str(LINES_DIR),
                 "--epochs", "1", "--batch-size", "4", "--workers", "0", "--out", str(out), "--no-augment", "-q",
                 "--log-every", "1", "--image-width", "160"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 epoch(s), 3 steps, 12 training lines" in captured.out
    for name in ("latest.pth", "best.pth", "resume.pt", "metrics.jsonl"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records] == ["start", "step", "step", "step", "epoch", "end"]
    assert records[0]["classes"] == 21 and records[0]["sources"][0]["kept"] == 4
    assert set(records[4]["val"]) >= {"acc", "char_acc", "norm_edit_dis", "loss"}

    code = main(["eval", "--model", str(out / "best.pth"), "--val", val_list, "--data-dir", str(LINES_DIR),
                 "--json", "-q", "--image-width", "160"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads(captured.out)
    assert metrics["n"] == 4 and 0 <= metrics["char_acc"] <= 1

    code = main(["train", "--resume", "--out", str(out), "--workers", "0", "-q"])  # all epochs done: nothing to do
    assert code == 0, capsys.readouterr().err

    for argv, message in (
            (["eval", "--model", str(out / "best.pth"), "--val", str(tmp_path / "nope.txt")], "does not exist"),
            (["train", "--model", str(small_model_file), "--train", train_list], "--out"),
            (["train", "--model", str(small_model_file), "--train", f"{train_list}:-2", "--out", str(out)], "ratio"),
            (["train", "--model", str(small_model_file), "--charset", str(tmp_path / "no_dict.txt"), "--train",
              train_list, "--out", str(out)], "no_dict.txt"),
            (["train", "--resume", str(tmp_path / "no_run")], "does not exist")):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and message in err, (argv, err)


def test_missing_optional_dependencies_raise_a_typed_error(monkeypatch, tmp_path):
    import sys

    from ppocr_torch.errors import PPOCRTorchError, TrainingDependencyError
    from ppocr_torch.training import LineAugment
    from ppocr_torch.training.labels import read_lmdb_labels

    monkeypatch.setitem(sys.modules, "kornia", None)
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(TrainingDependencyError, match=r"pip install 'ppocr-torch\[train\]'") as info:
        LineAugment()
    assert isinstance(info.value, PPOCRTorchError) and isinstance(info.value, ImportError)
    (tmp_path / "data.mdb").write_bytes(b"")  # a folder with data.mdb: opening it needs the package
    with pytest.raises(TrainingDependencyError, match="lmdb"):
        read_lmdb_labels(tmp_path)


def test_the_neck_gradient_stop_is_lifted_for_training_unless_kept(tmp_path, small_model_file, digit_lists):
    """en_PP-OCRv4_mobile_rec's SVTR neck has PaddleOCR's use_guide stop: with it (guide_stop=True) one step leaves
    every backbone weight as it was; by default the CTC loss reaches the backbone and changes it. Either way the
    module's own setting is restored after training."""
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, train

    train_list, _ = digit_lists
    moved = {}
    for keep in (True, False):
        model = load_model(small_model_file)
        necks = [m for m in model.modules() if type(m).__name__ == "EncoderWithSVTR" and m.use_guide]
        assert necks, "the v4 mobile neck should carry PaddleOCR's use_guide"
        before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        train(model, TrainConfig(train=[train_list], out=str(tmp_path / f"run{keep}"), epochs=1, batch_size=8,
                                 lr=1e-3, data_dir=str(LINES_DIR), augment=False, image_width=160, log_every=0,
                                 guide_stop=keep), progress=False)
        after = model.backbone.state_dict()
        moved[keep] = sum(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
        assert all(m.use_guide for m in necks)
    assert moved[True] == 0, moved
    assert moved[False] > 10, moved


def test_only_the_svtr_neck_loses_its_gradient_stop_while_training(monkeypatch):
    """PP-OCRv6 tiny's CTC head has a use_guide too, which means its guide layer runs: training must leave it on
    (turning it off would skip a layer), and lift only the SVTR neck's stop (en_PP-OCRv4_mobile_rec)."""
    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, trainer

    seen = {}

    def record(model, cfg, state, *, progress, stop_after):
        seen[model.spec.name] = {n: m.use_guide for n, m in model.named_modules() if hasattr(m, "use_guide")}
        return {}

    monkeypatch.setattr(trainer, "_run_steps", record)
    for name in ("PP-OCRv6_tiny_rec", "en_PP-OCRv4_mobile_rec"):
        model = load_model(name, pretrained=False)
        trainer._run(model, TrainConfig(), None, progress=False, stop_after=None)
    assert seen["PP-OCRv6_tiny_rec"] == {"head.ctc_head": True}
    assert seen["en_PP-OCRv4_mobile_rec"] == {"head.ctc_encoder.encoder": False, "head.ctc_head": False}
    assert {n: m.use_guide for n, m in model.named_modules() if hasattr(m, "use_guide")} == {
        "head.ctc_encoder.encoder": True, "head.ctc_head": False}  # restored after training
