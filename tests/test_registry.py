"""Every registry model: its entry is complete, its dictionary matches its class count, and it builds and
runs a forward pass of the right shape (random weights where no checkpoint exists yet)."""

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
