"""Every registry model: its entry is complete, its dictionary matches its class count, and it builds and
runs a forward pass of the right shape (random weights where no checkpoint exists yet)."""

from pathlib import Path

import pytest
import torch

from ppocr_torch import load_model, registry
from ppocr_torch.charset import packaged_charset

ALL = registry.list_models()


def test_a_duplicate_name_or_alias_is_refused_naming_the_file(tmp_path):
    import json

    from ppocr_torch.errors import RegistryError

    zoo = Path(registry.__file__).parent / "zoo"
    doc = json.loads((zoo / "pplcnetv4.json").read_text(encoding="utf-8"))
    (tmp_path / "a.json").write_text(json.dumps(doc), encoding="utf-8")
    by_name, aliases = registry.load_zoo(tmp_path)
    assert sorted(by_name) == sorted(e["name"] for e in doc["models"])
    (tmp_path / "b.json").write_text(json.dumps({"models": doc["models"][:1]}), encoding="utf-8")
    with pytest.raises(RegistryError, match=f"zoo/b.json: duplicate model '{doc['models'][0]['name']}'"):
        registry.load_zoo(tmp_path)
    clash = dict(doc["models"][0], name="another_rec", aliases=[doc["models"][1]["name"]])
    (tmp_path / "b.json").write_text(json.dumps({"models": [clash]}), encoding="utf-8")
    with pytest.raises(RegistryError, match="duplicate alias"):
        registry.load_zoo(tmp_path)
    (tmp_path / "b.json").write_text(json.dumps({"models": [{"name": "x"}]}), encoding="utf-8")
    with pytest.raises(RegistryError, match="zoo/b.json: invalid registry entry"):
        registry.load_zoo(tmp_path)


def test_every_alias_resolves_to_its_model():
    for e in registry.entries():
        for a in e.aliases:
            with pytest.warns(UserWarning, match="alias"):
                registry._warn_alias.cache_clear()
                assert registry.get_entry(a) is e


@pytest.mark.parametrize("name", ALL)
def test_entry_is_complete(name):
    e = registry.get_entry(name)
    assert e.spec.name == name
    assert e.architecture and e.languages and e.license
    assert e.official.get("inference_url") or e.official.get("train_url"), "official download URL"
    assert e.official.get("config"), "PaddleOCR config the spec was taken from"
    assert e.verification, "which check this model passed"
    charset = packaged_charset(e.spec)  # raises SpecMismatchError on a class-count mismatch
    assert len(charset) == e.spec.num_classes
    if e.weights is not None:
        assert len(e.weights.sha256) == 64 and e.weights.file.startswith(f"{name}-{e.weights.sha256[:8]}")


def _architecture_key(name):
    d = registry.get_entry(name).spec.to_dict()
    return tuple(sorted((k, str(v)) for k, v in d.items() if k not in ("name", "num_classes", "dictionary",
                                                                       "use_space_char", "extra")))


# one model per distinct architecture in the default run; the rest differ only in dictionary and class count
_FIRST = {}
for _n in ALL:
    _FIRST.setdefault(_architecture_key(_n), _n)
REPRESENTATIVE = sorted(_FIRST.values())


@pytest.mark.parametrize("name", [n if n in REPRESENTATIVE else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ALL])
def test_builds_and_runs_with_random_weights(name):
    model = load_model(name, pretrained=False)
    spec = model.spec
    width = 2 * spec.base_width // 2
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, spec.input_height, width))
    assert out.ndim == 3 and out.shape[0] == 1 and out.shape[2] == spec.num_classes
    assert torch.allclose(out.sum(-1), torch.ones_like(out.sum(-1)), atol=1e-4)


def test_pretrained_false_builds_random_weights_not_the_official_ones():
    from ppocr_torch.checkpoint import state_dict_digest

    entry = registry.get_entry("PP-OCRv6_small_rec")
    random = load_model("PP-OCRv6_small_rec", pretrained=False)
    official = load_model("PP-OCRv6_small_rec")
    assert state_dict_digest(official.state_dict()) == entry.weights.digest
    assert state_dict_digest(random.state_dict()) != entry.weights.digest
    assert random.weights_meta == {} and official.weights_meta["name"] == "PP-OCRv6_small_rec"


def test_generated_model_docs_are_up_to_date():
    from conversion.model_table import expected_docs

    for path, text in expected_docs().items():
        assert path.is_file() and path.read_text(encoding="utf-8") == text, \
            f"{path.name} is stale: run python -m conversion.model_table --write"


def test_readme_stays_short_and_its_links_resolve():
    import re

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) <= 8192
    links = re.findall(r"\]\(([^)#]+)", readme)
    assert links and all((root / link).exists() for link in links if not link.startswith("http")), links


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
    test = set(re.findall(r'"([a-z0-9_-]+)[^"]*"', setup.split('"test": [')[1].split("],")[0]))  # "x[extra]" kept
    assert reqs - runtime == test
