"""``python -m conversion release``: every registry model with a reachable official source rebuilt into a folder
ready to upload, with each file's URL, sha256 and parity recorded in the registry (a copy of it here)."""

import hashlib
import json
import shutil

import pytest

from helpers import ROOT

from conversion import convert as cv
from conversion.cli import main

ZOO = ROOT / "ppocr_torch" / "zoo"


def _entry(zoo, name):
    for f in sorted(zoo.glob("*.json")):
        for e in json.loads(f.read_text(encoding="utf-8"))["models"]:
            if e["name"] == name:
                return e
    raise KeyError(name)


@pytest.fixture()
def zoo_copy(tmp_path):
    before = {f.name: f.read_bytes() for f in ZOO.glob("*.json")}
    shutil.copytree(ZOO, tmp_path / "zoo")
    yield tmp_path / "zoo"
    assert {f.name: f.read_bytes() for f in ZOO.glob("*.json")} == before  # the package registry is untouched


def test_release_rebuilds_records_and_reproduces_the_registered_checkpoint(tmp_path, zoo_copy, capsys):
    out = tmp_path / "release"
    entry = _entry(zoo_copy, "en_PP-OCRv3_rec")
    entry_before = json.dumps(_entry(zoo_copy, "ch_ppocr_server_v2.0_rec"), sort_keys=True)
    rc = main(["release", "--out", str(out), "--models", "en_PP-OCRv3_rec", "ch_ppocr_server_v2.0_rec",
               "--limit", "6", "--zoo-dir", str(zoo_copy), "--base-url", "https://example.org/ppocr-torch/v1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "1 converted" in err and "1 without a reachable official source" in err
    pth, = out.glob("*.pth")
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    # conversion is deterministic: the released file is the checkpoint the registry already records
    assert digest == entry["weights"]["sha256"] and pth.name == entry["weights"]["file"]
    new = _entry(zoo_copy, "en_PP-OCRv3_rec")
    assert new["weights"]["url"] == f"https://example.org/ppocr-torch/v1/{pth.name}"
    assert new["weights"]["sha256"] == digest and new["weights"]["size"] == pth.stat().st_size
    # the content digest is recorded, and is the one the registry already holds for these weights
    from ppocr_torch.checkpoint import checkpoint_digest

    assert new["weights"]["digest"] == checkpoint_digest(pth) == entry["weights"]["digest"]
    assert new["parity"]["runtime"] == "onnxruntime" and new["parity"]["inputs"] == 8
    assert new["parity"]["text_agreement"] == 1.0 and new["parity"]["median_abs_prob"] <= 1e-5
    assert json.dumps(_entry(zoo_copy, "ch_ppocr_server_v2.0_rec"), sort_keys=True) == entry_before

    from ppocr_torch import load_model

    assert load_model(pth).spec.num_classes == 97


def test_a_model_that_fails_writes_nothing_and_fails_the_release(tmp_path, zoo_copy, capsys, monkeypatch):
    def broken(name, **_):
        raise cv.ConversionError(f"{name}: source unreachable (simulated)")

    monkeypatch.setattr(cv, "convert_registry_model", broken)
    out = tmp_path / "release"
    before = {f.name: f.read_bytes() for f in zoo_copy.glob("*.json")}
    rc = main(["release", "--out", str(out), "--models", "en_PP-OCRv3_rec", "--zoo-dir", str(zoo_copy)])
    err = capsys.readouterr().err
    assert rc == 1 and "FAILED en_PP-OCRv3_rec: en_PP-OCRv3_rec: source unreachable (simulated)" in err
    assert not out.exists() or not any(out.iterdir())
    assert {f.name: f.read_bytes() for f in zoo_copy.glob("*.json")} == before


@pytest.mark.paddle
def test_official_urls_release_models_without_a_pinned_source(tmp_path, zoo_copy, capsys, monkeypatch, official_source):
    """``--official-urls``: a model whose registry entry has no pinned wheel is fetched from PaddleOCR's download
    (a local mirror here, serving the official PP-OCRv5 inference files as PaddleOCR packs them)."""
    import dataclasses

    from ppocr_torch import registry
    from test_official_url import TAR, _tar


    entry = registry.get_entry("PP-OCRv5_mobile_rec")
    index = next(i for i, s in enumerate(entry.official["sources"]) if s["format"] == "paddle_inference")
    folder = official_source(entry.name, index)[0].parent
    data = _tar({f"PP-OCRv5_mobile_rec_infer/{n}": (folder / n).read_bytes()
                 for n in ("inference.json", "inference.pdiparams", "inference.yml")})
    unpinned = dataclasses.replace(entry, official={k: v for k, v in entry.official.items() if k != "sources"})
    monkeypatch.setattr(registry, "entries", lambda: [unpinned])
    monkeypatch.setattr(registry, "get_entry", lambda name: unpinned)
    monkeypatch.setattr(registry, "reload", lambda: None)
    monkeypatch.setenv("PPOCR_TORCH_OFFICIAL_CACHE", str(tmp_path / "cache"))
    from test_download import WeightsServer

    out = tmp_path / "release"
    assert main(["release", "--out", str(out), "--limit", "2", "--zoo-dir", str(zoo_copy)]) == 0
    assert "0 converted" in capsys.readouterr().err and not out.exists()  # skipped without the flag
    with WeightsServer({TAR: data}) as server:
        monkeypatch.setenv("PPOCR_TORCH_OFFICIAL_MIRROR", server.url.rstrip("/"))
        rc = main(["release", "--out", str(out), "--limit", "2", "--zoo-dir", str(zoo_copy), "--official-urls"])
    err = capsys.readouterr().err
    assert rc == 0, err
    pth, = out.glob("PP-OCRv5_mobile_rec-*.pth")
    new = _entry(zoo_copy, "PP-OCRv5_mobile_rec")
    assert new["weights"]["file"] == pth.name and new["parity"]["runtime"] == "paddle_inference"
    assert new["parity"]["source"] == entry.official["inference_url"]
