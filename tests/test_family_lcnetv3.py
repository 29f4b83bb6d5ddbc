"""PPLCNetV3 recognisers (PP-OCRv4_mobile_rec, PP-OCRv5_mobile_rec and their multilingual siblings).

* the deploy form (LearnableRepLayer branches and BatchNorms folded into ``reparam_conv``) computes the training
  form exactly, checked in float64 with random BatchNorm statistics and random learnable-affine scalars;
* training-checkpoint key names follow PaddleOCR's module definitions (rec_lcnetv3.py, rnn.py, rec_svtrnet.py);
* the two official ONNX exports reachable here convert and read the rendered lines exactly like ONNX Runtime.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import PARITY_SCOPES, parity_select, read_labels
from reference import Official, ctc_decode, resize_norm_img

from ppocr_torch import registry
from ppocr_torch.models import build_model, reparameterize_model
from ppocr_torch.models.backbones.lcnet_v3 import LearnableAffineBlock, LearnableRepLayer, PPLCNetV3

V4, V5 = "PP-OCRv4_mobile_rec", "PP-OCRv5_mobile_rec"
DICTS = Path(__file__).resolve().parent.parent / "ppocr_torch" / "dicts"
MULTILINGUAL_V5 = ["korean", "latin", "eslav", "th", "el", "en", "arabic", "cyrillic", "devanagari", "ta", "te"]


def _randomize(module, seed=0):
    """Random BatchNorm statistics/affines and learnable-affine scalars: folding errors cannot hide behind 0/1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 1)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            elif isinstance(m, LearnableAffineBlock):
                m.scale.copy_(torch.randn(1, generator=g) * 0.3 + 1)
                m.bias.copy_(torch.randn(1, generator=g) * 0.3)
    return module


# ---------------------------------------------------------------------------------------------------------
# Deploy form == training form (float64: only the algebra of the folding is tested, not fp32 rounding)
@pytest.mark.parametrize("kwargs", [{"scale": 0.95}, {"scale": 0.5, "conv_kxk_num": 2}, {"scale": 0.5, "det": True}])
def test_backbone_deploy_equals_training_form_float64(kwargs):
    net = _randomize(PPLCNetV3(**kwargs)).double().eval()
    x = torch.randn(2, 3, 48, 96, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ref = net(x)
        net.reparameterize()
        net.reparameterize()  # idempotent
        out = net(x)
    ref, out = (ref, out) if isinstance(ref, list) else ([ref], [out])
    for r, o in zip(ref, out):
        assert r.shape == o.shape
        assert (r - o).abs().max() / r.abs().max() < 1e-12
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    reps = [m for m in net.modules() if isinstance(m, LearnableRepLayer)]
    assert reps and all(m.reparam_conv is not None and not hasattr(m, "conv_kxk") for m in reps)


def test_full_model_deploy_equals_training_form_float64():
    spec = registry.get_entry(V4).spec.replace(num_classes=97, dictionary="en_dict.txt")  # small classifier
    model = _randomize(build_model(spec, form="train")).double().eval()
    x = torch.randn(1, 3, 48, 80, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ref = model(x, return_stages=True)
        reparameterize_model(model)
        out = model(x, return_stages=True)
    for stage in ("backbone", "neck", "head"):
        assert (ref[stage] - out[stage]).abs().max() <= 1e-12 * ref[stage].abs().max(), stage
    assert model.form == "deploy"


def test_stride_rules_of_learnable_rep_layer():
    # identity BN only with in == out and stride 1; conv_1x1 only for k > 1; no activation for an integer stride 2
    assert LearnableRepLayer(8, 8, 3, 1, groups=8).identity is not None
    assert LearnableRepLayer(8, 8, 3, (2, 1), groups=8).identity is None
    assert LearnableRepLayer(8, 16, 1).identity is None and LearnableRepLayer(8, 16, 1).conv_1x1 is None
    assert LearnableRepLayer(8, 8, 3, 2, groups=8).use_act is False
    assert LearnableRepLayer(8, 8, 3, (2, 1), groups=8).use_act is True


# ---------------------------------------------------------------------------------------------------------
# Names and shapes of a PaddleOCR training checkpoint (``_mean``/``_variance`` are torch's running stats)
TRAIN_KEYS = {
    # stem ConvBNLayer: conv 3x3 stride 2, 3 -> make_divisible(16 * 0.95) = 16
    "backbone.conv1.conv.weight": (16, 3, 3, 3),
    "backbone.conv1.bn.running_mean": (16,),
    # blocks2.0: [3, 16, 32, 1, False] -> depthwise 16 ch with identity BN, 4 kxk branches and a 1x1 branch
    "backbone.blocks2.0.dw_conv.identity.weight": (16,),
    "backbone.blocks2.0.dw_conv.conv_kxk.3.conv.weight": (16, 1, 3, 3),
    "backbone.blocks2.0.dw_conv.conv_1x1.bn.running_var": (16,),
    "backbone.blocks2.0.pw_conv.conv_kxk.0.conv.weight": (32, 16, 1, 1),
    "backbone.blocks3.0.dw_conv.lab.scale": (1,),
    "backbone.blocks3.0.dw_conv.act.lab.bias": (1,),
    # blocks5.1: [5, 256, 256, 1, False] at scale 0.95 -> 240 channels, 5x5 depthwise
    "backbone.blocks5.1.dw_conv.conv_kxk.0.conv.weight": (240, 1, 5, 5),
    # blocks6.0: [5, 256, 512, (2, 1), True] -> SE on 240 channels, 240 -> 480 pointwise
    "backbone.blocks6.0.se.conv1.weight": (60, 240, 1, 1),
    "backbone.blocks6.0.se.conv2.bias": (240,),
    "backbone.blocks6.3.pw_conv.identity.running_mean": (480,),
    # CTC branch of MultiHead: SVTR neck (ConvBNLayer conv/norm) + fc
    "head.ctc_encoder.encoder.conv1.conv.weight": (60, 480, 1, 3),
    "head.ctc_encoder.encoder.conv1.norm.weight": (60,),
    "head.ctc_encoder.encoder.svtr_block.0.mixer.qkv.weight": (360, 120),
    "head.ctc_encoder.encoder.svtr_block.1.mlp.fc2.weight": (120, 240),
    "head.ctc_encoder.encoder.norm.weight": (120,),
    "head.ctc_encoder.encoder.conv4.conv.weight": (60, 960, 1, 3),
    "head.ctc_encoder.encoder.conv1x1.conv.weight": (120, 60, 1, 1),
    "head.ctc_head.fc.weight": (6625, 120),
}
ABSENT_KEYS = [
    "backbone.blocks2.0.pw_conv.identity.weight",  # 16 -> 32: no identity branch
    "backbone.blocks2.0.pw_conv.conv_1x1.conv.weight",  # kernel 1: no extra 1x1 branch
    "backbone.blocks4.0.dw_conv.identity.weight",  # stride (2, 1): no identity branch
    "backbone.blocks5.0.se.conv1.weight",  # use_se False
]


def test_training_checkpoint_names_and_shapes():
    state = build_model(registry.get_entry(V4).spec, form="train").state_dict()
    for key, shape in TRAIN_KEYS.items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, (key, tuple(state[key].shape))
    for key in ABSENT_KEYS:
        assert key not in state, key
    assert sum(k.endswith(".lab.scale") for k in state) == 56  # 14 blocks x 2 rep layers x (lab + act.lab)


@pytest.mark.parametrize("name", [V4, V5, *[f"{lang}_PP-OCRv5_mobile_rec" for lang in MULTILINGUAL_V5],
                                  "en_PP-OCRv4_mobile_rec"])
def test_class_counts_follow_dictionaries_and_configs(name):
    spec = registry.get_entry(name).spec
    lines = (DICTS / spec.dictionary).read_bytes().count(b"\n")
    assert spec.use_space_char  # use_space_char: true in every config of this family
    assert spec.num_classes == lines + 2
    assert spec.backbone == {"name": "PPLCNetV3", "scale": 0.95}
    assert spec.head == registry.get_entry(V4).spec.head


def test_dictionary_sizes():
    # PaddleOCR: ppocr_keys_v1 6623 chars, en_dict 95, ppocrv5_dict 18383, ppocrv5_korean_dict 11945
    expected = {V4: 6625, "en_PP-OCRv4_mobile_rec": 97, V5: 18385, "korean_PP-OCRv5_mobile_rec": 11947}
    for name, classes in expected.items():
        assert registry.get_entry(name).spec.num_classes == classes


def test_korean_dictionary_is_byte_exact():
    import hashlib

    # sha256 of ppocr/utils/dict/ppocrv5_korean_dict.txt in PaddleOCR (47,451 bytes)
    data = (DICTS / "ppocrv5_korean_dict.txt").read_bytes()
    assert len(data) == 47451
    assert hashlib.sha256(data).hexdigest() == "a88071c68c01707489baa79ebe0405b7beb5cca229f4fc94cc3ef992328802d7"


# ---------------------------------------------------------------------------------------------------------
# The official exports
def test_parameter_count_matches_the_official_export(converted_dir, convert_official):
    import onnx
    from onnx import numpy_helper

    model, pairs, onnx_path, *_ = convert_official(V4, converted_dir)
    graph = onnx.load(str(onnx_path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    tensors.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"})
    weights = sum(t.size for t in tensors.values() if t.dtype == np.float32 and t.size > 1)
    affine = [op for _, op in pairs if op.kind == "affine"]
    assert len(affine) == 56  # LearnableAffineBlocks: scale and bias, two scalars each
    stored = weights + 2 * len(affine)
    bn_channels = sum(tensors[n.input[1]].size for n in graph.node if n.op_type == "BatchNormalization")
    # The export keeps six BatchNorms unfolded (stem + the five SVTR-neck ConvBNLayers: 16+60+120+480+60+120
    # channels) with four vectors each; the deploy form folds each into one conv bias: 3 vectors fewer per channel.
    # Scalar constants of the decomposed HardSwish/Swish/LayerNorm/attention scale are not weights (size 1 and
    # not paired); the learnable-affine scalars are counted through their paired ops.
    assert bn_channels == 856
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == stored - 3 * bn_channels == 2687653


@pytest.fixture(scope="module")
def converted(converted_dir, convert_official, official_source):
    out = {}
    for name in (V4, V5):
        model, pairs, onnx_path, _, _ = convert_official(name, converted_dir)
        _, source_chars = official_source(name)
        source_chars = source_chars[:-1] if source_chars[-1:] == [""] else source_chars
        charset = ["blank"] + list(source_chars) + [" "]
        assert len(charset) == model.spec.num_classes
        out[name] = (model, pairs, onnx_path, charset)
    return out


@pytest.mark.parametrize("scope", PARITY_SCOPES)
@pytest.mark.parametrize("name", [pytest.param(V4, marks=pytest.mark.slow), V5])  # v4: also tests/test_paddle_inference
def test_lines_read_like_the_official_runtime(converted, name, scope):
    """Every 10th rendered line and the model's hard lines (every line under -m slow) read through
    tests/reference.py: identical text, scores within 1e-4, probabilities within the parity bar of
    conversion.parity (1e-5, or 10x ONNX Runtime's own spread, or the float64 clause)."""
    from conversion.parity import output_parity

    model, _, onnx_path, charset = converted[name]
    rows = parity_select(read_labels(), name, scope)
    official = Official(onnx_path)
    inputs, mismatches = [], []
    for path, _label in rows:
        img = cv2.imread(str(path))
        x = resize_norm_img(img, 48, max(320 / 48, img.shape[1] / img.shape[0]))[None]
        (text, score), = ctc_decode(official(x), charset)
        with torch.inference_mode():
            (ours, our_score), = ctc_decode(model(torch.from_numpy(x)).numpy(), charset)
        if text != ours or abs(score - our_score) > 1e-4:
            mismatches.append((path.name, text, ours, score, our_score))
        inputs.append((path.name, x))
    assert mismatches == []
    report = output_parity(model, onnx_path, inputs, charset)
    assert report["text_agreement"] == 1.0
    assert report["median_abs_prob"] <= 1e-5
    bad = [i for i in report["items"] if not i["within"]]
    assert report["passed"], bad[:3]


@pytest.mark.parametrize("name", [V4, V5])
def test_layer_by_layer_parity(converted, name):
    from conversion.convert import parity_inputs
    from conversion.parity import layer_parity, summarize_layers

    model, pairs, onnx_path, _ = converted[name]
    assert sum(op.kind == "affine" for _, op in pairs) == 56
    x = parity_inputs(model.spec, limit=1)[-1][1]
    rows = layer_parity(model, pairs, onnx_path, x)
    assert len(rows) == len(pairs)
    summary = summarize_layers(rows)
    assert summary["first_divergent_op"] is None, summary["first_divergent_op"]
    assert set(summary["stages"]) == {"backbone", "neck", "head"}


def test_the_official_graph_in_float64_separates_rounding_from_a_conversion_error(converted):
    """PP-OCRv4 line 0166 amplifies fp32 rounding (ours and ONNX Runtime both ~1e-4 from float64 there). With
    rounding taken out of both sides, the official graph (onnx.reference, float64) and our model (float64)
    agree to 1e-10; a model with LayerNorm eps 1e-6 instead of 1e-5 does not, and parity clause 3 fails it."""
    import copy

    from conversion.convert import parity_inputs
    from conversion.parity import output_parity
    from conversion.reference64 import Float64Reference

    model, _, onnx_path, charset = converted[V4]
    inputs = dict(parity_inputs(model.spec))
    x = inputs["0166.png"]
    official64 = Float64Reference(onnx_path).run(x)
    model64 = copy.deepcopy(model).double()
    wrong64 = copy.deepcopy(model64)
    for m in wrong64.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6
    with torch.inference_mode():
        ours = model64(torch.from_numpy(x).double()).numpy()
        wrong = wrong64(torch.from_numpy(x).double()).numpy()
    # exact: Paddle's float32 constants in our modules, the unrounded folded BatchNorms in the float64 model
    from conversion.parity import _float64_outputs

    exact, = _float64_outputs(model, [x])
    assert np.abs(official64 - exact).max() <= 1e-10
    assert np.abs(official64 - ours).max() <= 1e-5  # the saved float32 weights: folded BatchNorms rounded
    assert np.abs(official64 - wrong).max() > 1e-4

    wrong32 = copy.deepcopy(model)
    for m in wrong32.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6
    lines = [(k, inputs[k]) for k in ("0166.png", "0100.png", "0019.png", "random0-w320")]
    good, bad = output_parity(model, onnx_path, lines, charset), output_parity(wrong32, onnx_path, lines, charset)
    assert good["passed"], [i for i in good["items"] if not i["within"]]
    assert not bad["passed"]
    assert any(i.get("float64_vs_official_float64", 0) > 1e-5 for i in bad["items"])


@pytest.mark.parametrize("name", [V4, V5])
def test_float64_conversion_computes_the_official_graph_exactly(converted, name):
    """PP-OCRv4's export decomposes hard-swish, PP-OCRv5's uses the ONNX HardSwish operator: both agree with
    the converted model in float64 to rounding level on a real line and a random tensor."""
    from conversion.convert import parity_inputs
    from conversion.parity import _float64_outputs
    from conversion.reference64 import Float64Reference

    model, _, onnx_path, _ = converted[name]
    inputs = dict(parity_inputs(model.spec, limit=10))
    xs = [inputs["0009.png"], inputs["random0-w320"]]
    reference = Float64Reference(onnx_path)
    for x, exact in zip(xs, _float64_outputs(model, xs)):
        assert np.abs(reference.run(x) - exact).max() <= 1e-10
