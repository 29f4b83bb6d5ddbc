"""Every registry model: its entry is complete, its dictionary matches its class count, and it builds and
runs a forward pass of the right shape (random weights where no checkpoint exists yet)."""

from pathlib import Path

import pytest
import torch

from ppocr_torch import load_model, registry
from ppocr_torch.charset import packaged_charset

ALL = registry.list_models()


def test_registry_names_and_aliases_are_unique_and_resolve():
    seen = set()
    for e in registry.entries():
        for n in (e.name, *e.aliases):
            assert n not in seen, n
            seen.add(n)
            assert registry.get_entry(n) is e or n in e.aliases


@pytest.mark.parametrize("name", ALL)
def test_entry_is_complete(name):
    e = registry.get_entry(name)
    assert e.spec.name == name
    assert e.family and e.languages and e.license
    assert e.official.get("inference_url") or e.official.get("train_url"), "official download URL"
    assert e.official.get("config"), "PaddleOCR config the spec was taken from"
    assert e.verification, "which check this model passed"
    charset = packaged_charset(e.spec)  # raises SpecMismatchError on a class-count mismatch
    assert len(charset) == e.spec.num_classes
    if e.weights is not None:
        assert len(e.weights.sha256) == 64 and e.weights.file.startswith(f"{name}-{e.weights.sha256[:8]}")


@pytest.mark.parametrize("name", ALL)
def test_builds_and_runs_with_random_weights(name):
    model = load_model(name, pretrained=False)
    spec = model.spec
    width = 2 * spec.base_width // 2
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, spec.input_height, width))
    assert out.ndim == 3 and out.shape[0] == 1 and out.shape[2] == spec.num_classes
    assert torch.allclose(out.sum(-1), torch.ones_like(out.sum(-1)), atol=1e-4)


def test_pretrained_false_is_never_silent_about_weights():
    model = load_model("PP-OCRv6_small_rec", pretrained=False)
    assert model.weights_meta == {}


def test_readme_model_table_is_up_to_date():
    from conversion.model_table import README, render

    text = README.read_text(encoding="utf-8")
    assert render() in text, "README model table is stale: run python -m conversion.model_table --write"


# PaddleX's official model list (paddlex/inference/utils/official_models.py, ALL_MODELS): its CTC text
# recognizers of the PP-OCR series. PaddleX downloads each as <base>/paddle3.0.0/<name>_infer.tar.
PADDLEX_REC_MODELS = """PP-OCRv3_mobile_rec en_PP-OCRv3_mobile_rec korean_PP-OCRv3_mobile_rec japan_PP-OCRv3_mobile_rec
chinese_cht_PP-OCRv3_mobile_rec te_PP-OCRv3_mobile_rec ka_PP-OCRv3_mobile_rec ta_PP-OCRv3_mobile_rec
latin_PP-OCRv3_mobile_rec arabic_PP-OCRv3_mobile_rec cyrillic_PP-OCRv3_mobile_rec devanagari_PP-OCRv3_mobile_rec
en_PP-OCRv4_mobile_rec PP-OCRv4_server_rec_doc PP-OCRv4_mobile_rec PP-OCRv4_server_rec PP-OCRv5_server_rec
PP-OCRv5_mobile_rec eslav_PP-OCRv5_mobile_rec latin_PP-OCRv5_mobile_rec korean_PP-OCRv5_mobile_rec
th_PP-OCRv5_mobile_rec el_PP-OCRv5_mobile_rec en_PP-OCRv5_mobile_rec arabic_PP-OCRv5_mobile_rec
te_PP-OCRv5_mobile_rec ta_PP-OCRv5_mobile_rec devanagari_PP-OCRv5_mobile_rec cyrillic_PP-OCRv5_mobile_rec""".split()
PADDLEX_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0.0/{}_infer.tar"


@pytest.mark.parametrize("name", PADDLEX_REC_MODELS)
def test_every_paddlex_recognizer_name_resolves_with_its_paddlex_url(name):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an alias warns
        entry = registry.get_entry(name)
    assert name == entry.name or name in entry.aliases
    urls = {entry.official.get("inference_url"), entry.official.get("paddlex_inference_url")}
    assert PADDLEX_URL.format(name) in urls


def test_the_test_extra_matches_the_test_requirements():
    """setup.py's ``test`` extra holds every non-runtime requirement of requirements-test.txt."""
    import re

    root = Path(__file__).resolve().parent.parent
    reqs = [line.split("#")[0].strip() for line in (root / "requirements-test.txt").read_text().splitlines()]
    reqs = {re.split(r"[<>=!\[ ]", r)[0].lower() for r in reqs if r}
    setup = (root / "setup.py").read_text()
    runtime = set(re.findall(r'"([a-z0-9_-]+)[^"]*"', setup.split("install_requires=[")[1].split("]")[0]))
    test = set(re.findall(r'"([a-z0-9_-]+)[^"]*"', setup.split('"test": [')[1].split("]")[0]))
    assert reqs - runtime == test
