"""Tests of the torch.hub entrypoints (hubconf.py, ppocr_torch/hub.py).

Expected texts come from ``samples/sample_line.txt``; downloads go to the local test server of
test_download.py (127.0.0.1 only); the network-free test runs in a subprocess whose sockets refuse to
connect (and inside ``unshare -rn``, a namespace without network, where that is available).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import keyword
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ppocr_torch import hub, registry
from ppocr_torch.errors import RegistryError, WeightsNotCachedError
from test_download import cache, checkpoint, served, state_digest, use_registry  # noqa: F401

from ppocr_torch.page.presets import PRESETS, hub_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TEXT = (ROOT / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip("\n")
PIPELINES = {hub_name(p) for p in PRESETS}  # whole-page OCR entrypoints (tests/test_ocr_pipeline.py)
EXTRA = {"list_models", "load_model", "load_recognizer", *PIPELINES}


def _import_hubconf(name="hubconf_under_test"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_hub_list(module) -> list[str]:
    """What ``torch.hub.list`` returns for a hubconf module (its rule: public callables)."""
    return [f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")]


def _example(doc: str) -> str:
    """The code block after ``Example::`` in a docstring."""
    lines = doc.split("Example::", 1)[1].splitlines()[1:]
    block = []
    for line in lines:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line)
    import textwrap

    return textwrap.dedent("\n".join(block)).strip() + "\n"


def _local(code: str, root: Path) -> str:
    """The docstring example with the GitHub repository replaced by the local checkout."""
    github = f'"{hub.HUB_REPO}:{hub.HUB_REF}"'
    assert github in code and "trust_repo=True" in code
    return code.replace(github, repr(str(root))).replace("trust_repo=True", 'source="local"')


def test_entrypoint_name_rule():
    assert hub.entrypoint_name("PP-OCRv6_small_rec") == "pp_ocrv6_small_rec"
    assert hub.entrypoint_name("PP-OCRv5_mobile_rec") == "pp_ocrv5_mobile_rec"
    assert hub.entrypoint_name("ch_ppocr_mobile_v2.0_rec") == "ch_ppocr_mobile_v2_0_rec"
    assert hub.entrypoint_name("ch_PP-OCRv2_rec") == "ch_pp_ocrv2_rec"
    assert hub.entrypoint_name("latin 2-rec") == "latin_2_rec"
    assert hub.entrypoint_name("2x_rec").isidentifier()
    assert hub.entrypoint_name("class") == "class_"


def test_every_registry_model_has_one_unique_entrypoint():
    eps = hub.entrypoints()
    assert sorted(eps.values()) == registry.list_models(), "one entrypoint per registry model"
    assert len(set(eps)) == len(eps)
    for ep, name in eps.items():
        assert ep == hub.entrypoint_name(name)
        assert ep.isidentifier() and ep == ep.lower() and not keyword.iskeyword(ep)
        assert ep not in EXTRA
    assert eps["pp_ocrv6_small_rec"] == "PP-OCRv6_small_rec"


def test_entrypoint_collision_is_an_error():
    e = registry.get_entry("PP-OCRv6_small_rec")
    with pytest.raises(RegistryError, match="both map"):
        hub.entrypoints([e, dataclasses.replace(e, name="PP-OCRv6.small-rec")])
    with pytest.raises(RegistryError, match="shadow"):
        hub.entrypoints([dataclasses.replace(e, name="load-model")])


def test_hubconf_entrypoints_signatures_and_docs():
    module = _import_hubconf()
    eps = hub.entrypoints()
    assert set(_torch_hub_list(module)) == set(eps) | EXTRA, "torch.hub.list must show exactly these"
    for dep in module.dependencies:
        assert importlib.util.find_spec(dep) is not None, dep
    for ep, name in eps.items():
        fn = getattr(module, ep)
        assert fn.__name__ == ep and fn.__module__ == module.__name__
        params = inspect.signature(fn).parameters
        assert list(params) == ["pretrained", "device", "kwargs"]
        assert params["pretrained"].default is True and params["device"].default == "cpu"
        assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
        doc = fn.__doc__
        assert doc.startswith(name) and "Example::" in doc
        example = _example(doc)
        compile(example, ep, "exec")  # valid Python
        assert f'torch.hub.load("{hub.HUB_REPO}:{hub.HUB_REF}", "{ep}"' in example
        entry = registry.get_entry(name)
        # every registry model has weights or an official download: the example loads them
        assert "pretrained=False" not in example and (entry.weights is not None or entry.official["inference_url"])
    for fn in (module.list_models, module.load_model, module.load_recognizer):
        assert "Example::" in fn.__doc__
        compile(_example(fn.__doc__), fn.__name__, "exec")


def test_hubconf_import_is_light():
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('hubconf', 'hubconf.py')\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "heavy = sorted(n for n in ('torch', 'cv2', 'numpy', 'requests', 'tqdm', 'PIL') if n in sys.modules)\n"
            "print(len([f for f in dir(m) if not f.startswith('_') and callable(getattr(m, f))]), heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.split(" ", 1)
    assert int(count) == len(registry.list_models()) + len(EXTRA)
    assert heavy.strip() == "[]", f"hubconf imported {heavy.strip()}"


def _no_network_prefix() -> list[str]:
    """``unshare -rn`` (a user + network namespace: no network at all) when it works here."""
    exe = shutil.which("unshare")
    if exe is None:
        return []
    try:
        ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return [exe, "-rn"] if ok else []


_OFFLINE_SCRIPT = r"""
import json, os, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = refuse
root, code = sys.argv[1], sys.argv[2]
import torch
os.chdir(root)
exec(compile(code, "docstring example", "exec"))            # prints text and score
rec = torch.hub.load(root, "pp_ocrv6_small_rec", source="local")
by_name = torch.hub.load(root, "load_recognizer", "PP-OCRv6_small_rec", source="local", batch_size=2)
net = torch.hub.load(root, "load_model", "PP-OCRv6_small_rec", source="local")
names = torch.hub.load(root, "list_models", source="local")
print(json.dumps({"entry": rec("samples/sample_line.png").text, "load_model": by_name("samples/sample_line.png").text,
                  "type": type(rec).__name__, "module": isinstance(rec.model, torch.nn.Module),
                  "batch_size": by_name.batch_size, "listed": "PP-OCRv6_small_rec" in names,
                  "net": type(net).__name__, "same": all(torch.equal(a, b) for a, b in
                                                         zip(net.state_dict().values(), rec.model.state_dict().values()))},
                 ensure_ascii=False))
"""


def test_torch_hub_load_local_without_network(tmp_path):
    """torch.hub.load(<checkout>, "pp_ocrv6_small_rec", source="local") works with the network disabled;
    the entrypoint's docstring example runs as written (GitHub repository replaced by the checkout)."""
    module = _import_hubconf()
    code = _local(_example(module.pp_ocrv6_small_rec.__doc__), ROOT)
    env = dict(os.environ, PPOCR_TORCH_HOME=str(tmp_path / "empty_cache"), TORCH_HOME=str(tmp_path / "th"),
               PYTHONIOENCODING="utf-8")
    for var in ("PPOCR_TORCH_OFFLINE", "PPOCR_TORCH_WEIGHTS_DIR", "PPOCR_TORCH_WEIGHTS_URL"):
        env.pop(var, None)  # nothing but the missing network keeps it from downloading
    cmd = [*_no_network_prefix(), sys.executable, "-c", _OFFLINE_SCRIPT, str(ROOT), code]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=600)
    stdout, stderr = out.stdout.decode("utf-8"), out.stderr.decode("utf-8", "replace")
    assert out.returncode == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0].startswith(SAMPLE_TEXT + " ") and 0.9 < float(lines[0].rsplit(" ", 1)[1]) <= 1.0
    report = json.loads(lines[-1])
    assert report == {"entry": SAMPLE_TEXT, "load_model": SAMPLE_TEXT, "type": "Recognizer", "module": True,
                      "batch_size": 2, "listed": True, "net": "RecModel", "same": True}
    assert not (tmp_path / "empty_cache").exists(), "the embedded model needs no cache"


def test_entrypoint_downloads_on_first_use(served, cache, checkpoint, monkeypatch):  # noqa: F811
    import torch

    entry = checkpoint.entry(served.url + checkpoint.file)
    use_registry(monkeypatch, entry, registry.get_entry("PP-OCRv6_small_rec"))
    rec = torch.hub.load(str(ROOT), "ch_pp_ocrv2_rec", source="local", batch_size=3)
    assert type(rec).__name__ == "Recognizer" and rec.batch_size == 3
    assert state_digest(rec.model) == checkpoint.digest
    assert [r["status"] for r in served.log] == [200]
    again = torch.hub.load(str(ROOT), "ch_pp_ocrv2_rec", source="local")
    assert state_digest(again.model) == checkpoint.digest
    assert len(served.log) == 1, "the second load uses the cache"

    own = torch.hub.load(str(ROOT), "ch_pp_ocrv2_rec", source="local", weights=str(checkpoint.path))
    assert state_digest(own.model) == checkpoint.digest
    untrained = torch.hub.load(str(ROOT), "ch_pp_ocrv2_rec", source="local", pretrained=False)
    assert state_digest(untrained.model) != checkpoint.digest
    assert untrained.model.spec.num_classes == entry.spec.num_classes
    by_path = torch.hub.load(str(ROOT), "load_recognizer", str(checkpoint.path), source="local")
    assert state_digest(by_path.model) == checkpoint.digest
    assert state_digest(torch.hub.load(str(ROOT), "load_model", str(checkpoint.path), source="local")) == \
        checkpoint.digest
    assert len(served.log) == 1

    (cache / checkpoint.file).unlink()
    with pytest.raises(WeightsNotCachedError):
        torch.hub.load(str(ROOT), "ch_pp_ocrv2_rec", source="local", download=False)
    assert len(served.log) == 1


def test_unconverted_model_entrypoint(checkpoint, cache, monkeypatch):  # noqa: F811
    """A model without converted weights: pretrained=True says how to get them, pretrained=False builds
    the architecture with random weights."""
    module_name = "not_converted_rec"
    entry = dataclasses.replace(checkpoint.entry(), name="Not-Converted_rec", aliases=(), weights=None)
    use_registry(monkeypatch, entry)
    module = _import_hubconf()
    assert _torch_hub_list(module) == sorted([module_name, *EXTRA])
    fn = getattr(module, module_name)
    assert "not converted yet and no official download" in fn.__doc__ and "pretrained=False" in _example(fn.__doc__)
    with pytest.raises(WeightsNotCachedError) as info:
        fn()
    assert "python -m conversion convert Not-Converted_rec" in str(info.value)
    rec = fn(pretrained=False, mode="paddle")
    assert rec.model.spec.num_classes == entry.spec.num_classes and rec.mode == "paddle"
    assert not cache.exists()
