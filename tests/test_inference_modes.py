"""The deploy form's oneDNN modules, the throughput batching mode and the opt-in optimisations.

Speed is measured in benchmarks/, not here; these tests hold what the speed must not cost: the same state_dict,
results that do not depend on call history or companions, and the parity figures docs/speed.md states. The
parity against the official runtime of the oneDNN deploy form is in the parity tests (it is the default form).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import LINES_DIR, ROOT
from ppocr_torch import Recognizer, load_model
from ppocr_torch.checkpoint import state_dict_digest
from ppocr_torch.models.onednn import OneDNNConv2d, OneDNNLinear, onednn_available, plain_modules, to_plain
from ppocr_torch.models.optimize import OptimizationError, parse_optimize
from ppocr_torch.preprocess import bucket_width, prepare_batch

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN fused ops")


@pytest.fixture(scope="module")
def model():
    return load_model("PP-OCRv6_small_rec")


@pytest.fixture(scope="module")
def lines():
    import cv2

    files = sorted(LINES_DIR.glob("*.png"))
    return [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]


@needs_onednn
def test_deploy_form_uses_onednn_and_keeps_the_state_dict(model):
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert convs and all(isinstance(m, OneDNNConv2d) for m in convs)
    assert linears and all(isinstance(m, OneDNNLinear) for m in linears)
    fused = [m for m in convs if m._act_slot is not None]
    assert len(fused) >= 10  # ConvBNAct activations and the channel mixers' GELUs
    plain = to_plain(copy.deepcopy(model))
    assert not any(isinstance(m, (OneDNNConv2d, OneDNNLinear)) for m in plain.modules())
    assert list(plain.state_dict()) == list(model.state_dict())
    assert state_dict_digest(plain.state_dict()) == state_dict_digest(model.state_dict())
    assert model.weights_meta.get("digest", state_dict_digest(model.state_dict())) == \
        state_dict_digest(model.state_dict())


@needs_onednn
@pytest.mark.parametrize("shape", [(1, 3, 48, 320), (3, 3, 48, 517), (2, 3, 48, 1203)])
def test_onednn_matches_plain_modules_within_fp32_noise(model, shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
    plain = to_plain(copy.deepcopy(model))
    with torch.inference_mode():
        fast, ref = model(x), plain(x)
    assert fast.shape == ref.shape
    assert float((fast - ref).abs().max()) < 2e-5
    assert torch.equal(fast.argmax(-1), ref.argmax(-1))


@needs_onednn
def test_a_result_does_not_depend_on_call_history(model):
    """A shape's first call packs its weights; every later call reuses them: all give identical output."""
    m = copy.deepcopy(model)
    x = torch.rand(1, 3, 48, 411, generator=torch.Generator().manual_seed(7)) * 2 - 1
    other = torch.rand(2, 3, 48, 640, generator=torch.Generator().manual_seed(8)) * 2 - 1
    with torch.inference_mode():
        first = m(x)
        m(other)
        again = m(x)
    assert torch.equal(first, again)


@needs_onednn
def test_training_and_autograd_take_the_plain_path(model):
    m = copy.deepcopy(model).train()
    x = torch.rand(2, 3, 48, 320, generator=torch.Generator().manual_seed(3)) * 2 - 1
    out = m(x)
    out.sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    # the fused activations still apply on the plain path: train-mode logits equal plain modules' logits
    plain = to_plain(copy.deepcopy(m)).train()
    with torch.no_grad():
        assert torch.allclose(m(x), plain(x), atol=1e-4, rtol=1e-5)  # logits up to ~20


@needs_onednn
def test_plain_modules_restores_the_activations_for_hooks(model):
    m = copy.deepcopy(model)
    with plain_modules(m):
        assert not any(isinstance(x, (OneDNNConv2d, OneDNNLinear)) for x in m.modules())
        gelus = [x for x in m.modules() if isinstance(x, torch.nn.GELU)]
        assert len(gelus) >= 10
    assert any(isinstance(x, OneDNNConv2d) for x in m.modules())


def test_onednn_can_be_turned_off():
    code = ("import torch; from ppocr_torch import load_model; from ppocr_torch.models.onednn import OneDNNConv2d;"
            "m = load_model('PP-OCRv6_small_rec');"
            "print(sum(isinstance(x, OneDNNConv2d) for x in m.modules()))")
    env = dict(os.environ, PPOCR_TORCH_ONEDNN="0")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("width, expected", [(12, 12), (320, 320), (321, 384), (384, 384), (385, 448),
                                             (511, 512), (1023, 1024), (1025, 1152), (2049, 2304),
                                             (31999, 32768)])
def test_bucket_width(width, expected):
    assert bucket_width(width) == expected
    assert expected - width < max(64, expected / 8)


def test_throughput_mode_result_depends_only_on_its_own_image(model, lines):
    """A line batched with lines of other widths (same bucket) gives exactly what it gives alone."""
    rec = Recognizer(model, mode="throughput", batch_size=8)
    widths = [rec._own_width(img) for img in lines]
    by_bucket = {}
    for i, w in enumerate(widths):
        by_bucket.setdefault(bucket_width(w), []).append(i)
    bucket, members = max(by_bucket.items(), key=lambda kv: len(set(widths[i] for i in kv[1])))
    assert len({widths[i] for i in members}) >= 2, "need lines of different own widths in one bucket"
    group = [lines[i] for i in members[:6]]
    together = rec.recognize(group)
    for img, res in zip(group, together):
        alone = rec.recognize([img])[0]
        assert alone.text == res.text and alone.score == res.score and alone.chars == res.chars
    ((_, arr),) = prepare_batch(group, 48, mode="throughput")
    assert arr.shape[-1] == bucket


def test_throughput_mode_reads_what_per_image_reads(model, lines):
    """docs/speed.md: on the 250 rendered lines the throughput mode reads the same text as per_image (measured);
    held here on every sixth line (CPU time)."""
    lines = lines[::6]
    per_image = Recognizer(model, mode="per_image").recognize(lines)
    bucketed = Recognizer(model, mode="throughput", batch_size=16).recognize(lines)
    agree = sum(a.text == b.text for a, b in zip(per_image, bucketed))
    assert agree >= len(lines) - 1, agree
    assert max(abs(a.score - b.score) for a, b in zip(per_image, bucketed)) < 0.05


def test_parse_optimize():
    assert parse_optimize(None) == ()
    assert parse_optimize("int8, compile") == ("compile", "int8")
    assert parse_optimize(["INT8"]) == ("int8",)
    with pytest.raises(OptimizationError, match="unknown optimisation 'fast'"):
        parse_optimize("fast")
    with pytest.raises(OptimizationError, match="CPU only"):
        Recognizer(load_model("PP-OCRv6_small_rec"), device="meta", optimize="int8")


@pytest.mark.parametrize("step", [pytest.param(1, marks=pytest.mark.slow), 6])
def test_int8_classifier_parity_cost(model, lines, step):
    """docs/speed.md states the int8 classifier's cost on the rendered lines: text agreement >= 98% (all 250 lines
    under -m slow, every sixth by default)."""
    lines = lines[::step]
    exact = Recognizer(model).recognize(lines)
    rec8 = Recognizer(copy.deepcopy(model), optimize="int8")
    assert type(rec8.model.head.ctc_head.fc).__name__ == "Linear" and "quantized" in type(
        rec8.model.head.ctc_head.fc).__module__
    fast = rec8.recognize(lines)
    agree = sum(a.text == b.text for a, b in zip(exact, fast))
    assert agree >= 0.98 * len(lines), agree
    assert float(np.median([abs(a.score - b.score) for a, b in zip(exact, fast)])) < 0.01


@pytest.mark.slow
def test_compile_parity_cost(model, lines):
    """torch.compile (inductor, freezing): the same text as the default path on the rendered lines."""
    exact = Recognizer(model).recognize(lines[:40])
    fast = Recognizer(copy.deepcopy(model), optimize="compile").recognize(lines[:40])
    assert [a.text for a in exact] == [b.text for b in fast]
    assert max(abs(a.score - b.score) for a, b in zip(exact, fast)) < 1e-3


def test_per_image_companions_change_probabilities_within_the_stated_bound(model, lines):
    """docs/limits-and-errors.md: a line batched with copies of itself reads the same text, probabilities within 1e-6."""
    rec = Recognizer(model, mode="per_image", batch_size=8)
    worst = 0.0
    for img in lines[::20]:
        alone = rec.recognize([img])[0]
        for n in (2, 5):
            other = rec.recognize([img] * n)[0]
            assert other.text == alone.text
            worst = max([worst, abs(other.score - alone.score)]
                        + [abs(a.prob - b.prob) for a, b in zip(alone.chars, other.chars)])
    assert worst <= 1e-6, worst
