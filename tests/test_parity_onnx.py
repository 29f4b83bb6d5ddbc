"""Parity of the converted models with the official models under ONNX Runtime, on the rendered line set.

The official side is driven by tests/reference.py (PaddleOCR's predict_rec preprocessing and decoding,
written independently of ppocr_torch) and decoded with the dictionary shipped *with the official file*.
"""

import shutil

import cv2
import numpy as np
import pytest
import torch

from helpers import PARITY_SCOPES, parity_select, read_labels
from reference import Official, ctc_decode, paddle_batch, resize_norm_img

MODELS = ["PP-OCRv6_small_rec", "ch_PP-OCRv2_rec"]


@pytest.fixture(scope="module")
def prepared(weights_home, converted_dir, convert_official, official_source):
    """For each model: (Recognizer on the converted weights, official session, official charset, model)."""
    from ppocr_torch import Recognizer, registry

    out = {}
    for name in MODELS:
        entry = registry.get_entry(name)
        model, pairs, onnx_path, ckpt, digest = convert_official(name, converted_dir)
        if not entry.weights.embedded:  # the registry's download target, reproduced here from the official file
            assert digest == entry.weights.sha256, f"{name}: conversion does not reproduce the registry sha256"
            shutil.copy(ckpt, weights_home / entry.weights.file)
        _, source_chars = official_source(name)
        source_chars = [c for c in source_chars if c != ""] if source_chars[-1:] == [""] else source_chars
        charset = ["blank"] + list(source_chars) + ([" "] if entry.spec.use_space_char else [])
        assert len(charset) == entry.spec.num_classes
        out[name] = (Recognizer(name), Official(onnx_path), charset, model, pairs, onnx_path,
                     Official(onnx_path, optimize=False))
    return out


@pytest.mark.parametrize("scope", PARITY_SCOPES)
@pytest.mark.parametrize("name", MODELS)
def test_recognize_matches_official_runtime(prepared, labelled_lines, name, scope):
    """recognize() reads every line (every 5th and the hard ones by default) exactly like the official model;
    scores agree within 1e-4, or, on the few lines where ONNX Runtime's optimized and plain graphs disagree with each other by more than
    1e-5, within 10x that disagreement (fp32 rounding differs between any two implementations)."""
    rec, official, charset, *_, plain = prepared[name]
    h = rec.spec.input_height
    labelled_lines = parity_select(labelled_lines, name, scope, step=5)
    results = rec([p for p, _ in labelled_lines])
    mismatches, score_diffs, out_of_bounds = [], [], []
    for (path, _label), ours in zip(labelled_lines, results):
        img = cv2.imread(str(path))
        x = resize_norm_img(img, h, max(320 / h, img.shape[1] / img.shape[0]))[None]
        (text, score), = ctc_decode(official(x), charset)
        (_, plain_score), = ctc_decode(plain(x), charset)
        if text != ours.text:
            mismatches.append((path.name, text, ours.text))
        diff, spread = abs(score - ours.score), abs(score - plain_score)
        score_diffs.append(diff)
        if diff > 1e-4 and not (spread > 1e-5 and diff <= 10 * spread):
            out_of_bounds.append((path.name, diff, spread))
    assert mismatches == [], f"{name}: {len(mismatches)} lines read differently: {mismatches[:5]}"
    assert out_of_bounds == [], f"{name}: score differences out of bounds: {out_of_bounds[:5]}"
    score_diffs = np.array(score_diffs)
    assert np.median(score_diffs) <= 1e-5
    # at most 1% of the 250 lines (2) over 1e-4, each within the bounds above; the subset holds the hard lines
    assert (score_diffs > 1e-4).sum() <= (0.01 * len(score_diffs) if scope == "full" else 2)


@pytest.mark.parametrize("scope", PARITY_SCOPES)
@pytest.mark.parametrize("name", MODELS)
def test_probabilities_match_official_runtime(prepared, name, scope):
    """Per line: max |diff| <= 1e-5, or, where ONNX Runtime disagrees with itself (optimized vs plain graph)
    by more, within 10x that self-disagreement; text identical everywhere (see conversion/parity.py)."""
    from conversion.convert import parity_inputs
    from conversion.parity import output_parity

    rec, _, charset, model, _, onnx_path, _ = prepared[name]
    report = output_parity(model, onnx_path, parity_select(parity_inputs(model.spec), name, scope), charset)
    bad = [i for i in report["items"] if not i["within"] or not i["text_equal"]]
    assert report["passed"], f"{name}: {len(bad)} inputs out of bounds: {bad[:3]}"
    assert report["text_agreement"] == 1.0
    assert report["median_abs_prob"] <= 1e-5
    assert report["inputs_over_tolerance"] <= 0.3 * report["inputs"]


@pytest.mark.parametrize("name", MODELS)
def test_paddle_batch_mode_matches_official_batches(prepared, labelled_lines, name):
    """mode="paddle": PaddleOCR's batching (sorted by aspect ratio, padded to the widest), same numbers."""
    from ppocr_torch import Recognizer

    _, official, charset, model, *_ = prepared[name]
    rows = labelled_lines[::9][:24]
    imgs = [cv2.imread(str(p)) for p, _ in rows]
    rec = Recognizer(model, mode="paddle", batch_size=6)
    ours = rec(imgs)
    order = np.argsort([im.shape[1] / im.shape[0] for im in imgs])
    ref = [None] * len(imgs)
    for start in range(0, len(order), 6):
        chunk = order[start:start + 6]
        x = paddle_batch([imgs[i] for i in chunk], model.spec.input_height)
        for i, r in zip(chunk, ctc_decode(official(x), charset)):
            ref[i] = r
    assert [r[0] for r in ref] == [o.text for o in ours]
    assert max(abs(r[1] - o.score) for r, o in zip(ref, ours)) <= 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_layer_by_layer_parity(prepared, name):
    """Every paired parametric op's output matches the official graph's tensor (relative error < 1e-3)."""
    from conversion.convert import parity_inputs
    from conversion.parity import layer_parity, summarize_layers

    *_, model, pairs, onnx_path, _ = prepared[name]
    x = parity_inputs(model.spec, limit=1)[-1][1]
    rows = layer_parity(model, pairs, onnx_path, x)
    assert len(rows) >= len(pairs) - 1  # only the inner LSTM layer has no torch-side tensor
    summary = summarize_layers(rows)
    assert summary["first_divergent_op"] is None, summary["first_divergent_op"]
    assert set(summary["stages"]) == {"backbone", "neck", "head"}


def test_two_official_exports_of_v6_small_hold_the_same_weights(converted_dir, convert_official):
    a = convert_official("PP-OCRv6_small_rec", converted_dir, 0)[0].state_dict()
    b = convert_official("PP-OCRv6_small_rec", converted_dir, 1)[0].state_dict()
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-30  # identical up to denormals


def test_shipped_default_checkpoint_is_the_official_model(converted_dir, convert_official):
    """Re-running the conversion from the official file reproduces the shipped checkpoint tensor for tensor."""
    from ppocr_torch import registry
    from ppocr_torch.checkpoint import read_checkpoint, sha256_file

    entry = registry.get_entry(registry.DEFAULT_MODEL)
    assert entry.weights.embedded
    from importlib import resources

    shipped = resources.files("ppocr_torch").joinpath("weights").joinpath(entry.weights.file)
    with resources.as_file(shipped) as path:
        assert sha256_file(path) == entry.weights.sha256
        payload = read_checkpoint(path)
    model, _, _, ckpt, digest = convert_official(entry.name, converted_dir, 0)
    fresh = model.state_dict()
    assert payload["state_dict"].keys() == fresh.keys()
    for k, v in fresh.items():
        assert torch.equal(payload["state_dict"][k], v), k
    assert payload["charset"] == model.charset
    assert payload["spec"] == model.spec.to_dict()
    assert digest == entry.weights.sha256  # byte-identical file as well
