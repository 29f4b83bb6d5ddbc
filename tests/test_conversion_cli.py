"""``python -m conversion``: own training checkpoints and ONNX exports, verify, --charset, failure modes.
Every conversion either succeeds with a passing parity report or fails naming the problem, leaving nothing."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

from helpers import ROOT
from paddle_ckpt import paddle_state, save_pdparams, unfuse
from test_convert_training import V2_CONFIG


def run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "conversion", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def v2(converted_dir, tmp_path_factory, convert_official):
    d = tmp_path_factory.mktemp("cli")
    model, _, onnx_path, *_ = convert_official("ch_PP-OCRv2_rec", converted_dir)
    ckpt = save_pdparams(paddle_state(unfuse(model), prefix="Student."), d / "best_accuracy.pdparams")
    cfg = d / "cfg.yml"
    cfg.write_text(yaml.safe_dump(V2_CONFIG), encoding="utf-8")
    return {"ckpt": ckpt, "cfg": cfg, "onnx": onnx_path, "dir": d}


def test_training_checkpoint_converts_with_a_passing_report_and_reproducibly(v2, tmp_path):
    out = tmp_path / "out"
    args = ["convert", "--checkpoint", v2["ckpt"], "--config", v2["cfg"], "--against", v2["onnx"], "--limit", "8",
            "--out", out]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    pth, = out.glob("*.pth")
    entry = json.loads(pth.with_suffix(".json").read_text(encoding="utf-8"))
    assert entry["parity"]["passed"] and entry["parity"]["runtime"] == "onnxruntime"
    assert entry["spec"]["num_classes"] == 6625 and entry["weights"]["sha256"].startswith(pth.stem.rsplit("-", 1)[1])
    digest = pth.read_bytes()
    pth.unlink()
    second = run(*args)
    assert second.returncode == 0
    assert next(out.glob("*.pth")).read_bytes() == digest  # byte-identical re-run

    from ppocr_torch import load_model

    assert load_model(next(out.glob("*.pth"))).spec.num_classes == 6625


@pytest.mark.parametrize("problem", ["dictionary", "family", "truncated"])
def test_failures_name_the_problem_and_write_nothing(v2, tmp_path, problem):
    out = tmp_path / "out"
    ckpt, cfg, extra = v2["ckpt"], v2["cfg"], []
    if problem == "dictionary":
        d = tmp_path / "en.txt"
        d.write_text("\n".join("abcdefghijklmnopqrstuvwxyz0123456789") + "\n", encoding="utf-8")
        extra = ["--dict", d]
        want = "6625"
    elif problem == "family":
        c = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        c["Architecture"]["Models"]["Student"]["Backbone"] = {"name": "PPLCNetV4", "model_size": "small"}
        cfg = tmp_path / "wrong.yml"
        cfg.write_text(yaml.safe_dump(c), encoding="utf-8")
        want = "family"
    else:
        ckpt = tmp_path / "cut.pdparams"
        ckpt.write_bytes(v2["ckpt"].read_bytes()[:5000])
        want = "truncated"
    proc = run("convert", "--checkpoint", ckpt, "--config", cfg, "--out", out, *extra)
    assert proc.returncode == 1
    assert want in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_verify_passes_for_the_right_model_and_fails_for_a_perturbed_one(v2, converted_dir, tmp_path, convert_official):
    import torch

    _, _, _, ckpt, _ = convert_official("ch_PP-OCRv2_rec", converted_dir)
    ok = run("verify", ckpt, "--against", v2["onnx"], "--limit", "6", "--report", tmp_path / "r.json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "r.json").read_text())["passed"]
    payload = torch.load(ckpt, weights_only=True)
    payload["state_dict"]["head.fc2.bias"][1:100] += 0.5  # not all classes: softmax ignores a uniform shift
    bad = tmp_path / "bad.pth"
    torch.save(payload, bad)
    proc = run("verify", bad, "--against", v2["onnx"], "--limit", "6")
    assert proc.returncode == 1 and "FAIL" in proc.stderr
    assert "first divergent layer" in proc.stderr and "head.fc2" in proc.stderr  # names where it diverged


def test_own_onnx_export_and_new_charset(v2, tmp_path):
    out = tmp_path / "out"
    proc = run("convert", "my_rec", "--onnx", v2["onnx"], "--model", "ch_PP-OCRv2_rec", "--limit", "4", "--out", out)
    assert proc.returncode == 0, proc.stderr
    new_dict = tmp_path / "digits.txt"
    new_dict.write_text("\n".join("0123456789") + "\n", encoding="utf-8")
    out2 = tmp_path / "out2"
    proc = run("convert", "my_digits", "--checkpoint", v2["ckpt"], "--config", v2["cfg"], "--charset", new_dict,
               "--out", out2)
    assert proc.returncode == 0, proc.stderr
    pth, = out2.glob("*.pth")
    entry = json.loads(pth.with_suffix(".json").read_text(encoding="utf-8"))
    assert entry["spec"]["num_classes"] == 11 and any("needs fine-tuning" in n for n in entry["notes"])
    assert entry["parity"]["status"].startswith("not verified")
    from ppocr_torch import load_model

    m = load_model(pth)
    assert m.charset[1:] == list("0123456789") and m.head.fc2.out_features == 11


def test_charset_on_an_official_model_keeps_its_backbone_and_neck(tmp_path, converted_dir, convert_official):
    """``convert NAME --charset`` : parity of the official weights first, then a new classifier; a new model
    (``NAME_<dict>``), never a registry entry."""
    d = tmp_path / "digits.txt"
    d.write_text("\n".join("0123456789") + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run("convert", "en_PP-OCRv3_rec", "--charset", d, "--limit", "4", "--out", out)
    assert proc.returncode == 0, proc.stderr
    pth, = out.glob("en_PP-OCRv3_rec_digits-*.pth")
    from ppocr_torch import load_model

    model = load_model(pth)
    assert model.spec.num_classes == 11 and model.charset == ["blank", *"0123456789"]
    official = convert_official("en_PP-OCRv3_rec", converted_dir)[0].state_dict()
    ours = model.state_dict()
    classifier = {k for k, v in official.items() if v.shape[:1] == (97,)}
    assert classifier == {"head.ctc_head.fc.weight", "head.ctc_head.fc.bias"}
    assert all(torch.equal(ours[k], official[k]) for k in official if k not in classifier)  # backbone + neck
    assert ours["head.ctc_head.fc.weight"].shape == (11, 64)
    # blank and the ten digits are in the official set: their rows start trained
    from ppocr_torch.charset import packaged_charset
    from ppocr_torch.registry import get_entry

    old = packaged_charset(get_entry("en_PP-OCRv3_rec").spec)
    rows = [old.index(c) for c in model.charset]
    for key in classifier:
        assert torch.equal(ours[key], official[key][rows])
    entry = json.loads(pth.with_suffix(".json").read_text(encoding="utf-8"))
    assert "needs fine-tuning" in entry["notes"][0] and entry["source"]["base_model"] == "en_PP-OCRv3_rec"
    bad = run("convert", "en_PP-OCRv3_rec", "--charset", d, "--update-registry", "--out", out)
    assert bad.returncode == 1 and "cannot replace the registry" in bad.stderr
