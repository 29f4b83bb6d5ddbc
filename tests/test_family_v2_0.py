"""PaddleOCR v2.0 recognizers (MobileNetV3 small x0.5 / ResNet34_vd + BiLSTM + CTC), verified component by component.

No official v2.0 recognition weights are reachable here, so each part is checked against what is:

* the MobileNetV3 code against the official ``ch_ppocr_mobile_v2.0_cls`` export (ONNX, republished in
  rapidocr-onnxruntime 1.4.4). PaddleOCR builds that classifier from the same ``rec_mobilenet_v3.py`` (config
  configs/cls/cls_mv3.yml: small, scale 0.35, default small_stride, ClsHead = global average pool + fc).
  Our backbone, loaded with the official weights, must give the tensor that feeds the classifier head to fp32
  precision: this fixes the SE gate (hard-sigmoid slope 0.2, not 1/6), hard-swish, the strides and the
  channel rounding (make_divisible);
* the BiLSTM neck and the CTC head: the same modules as ch_PP-OCRv2_rec, which converts from its official
  ONNX export and passes against ONNX Runtime (tests/test_parity_onnx.py);
* the rest against PaddleOCR's configs, source and published numbers: class counts, output length, training
  checkpoint names and parameter counts vs the published inference model sizes.
"""

import numpy as np
import pytest
import torch

from helpers import read_labels
from reference import resize_norm_img

CLS_SOURCE = {  # official ch_ppocr_mobile_v2.0_cls, as republished (see shared/official-models.md)
    "format": "onnx",
    "wheel": "rapidocr-onnxruntime==1.4.4",
    "wheel_file": "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    "wheel_sha256": "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
    "path": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
}
MOBILE = "ch_ppocr_mobile_v2.0_rec"
SERVER = "ch_ppocr_server_v2.0_rec"


def _v20_entries():
    from ppocr_torch import registry

    return [e for e in registry.entries() if e.name.endswith("_v2.0_rec")]


# ---------------------------------------------------------------------------------------------------------
# MobileNetV3 code vs the official v2.0 direction classifier


@pytest.fixture(scope="module")
def cls_backbone():
    """(our MobileNetV3 small x0.35 in deploy form loaded from the official cls export, its ops, the ONNX path)."""
    from ppocr_torch.mapping import load_pairs, pair_ops, trace_slots
    from conversion.official import fetch_source
    from conversion.readers.onnx_reader import read_onnx_ops
    from ppocr_torch.models.backbones.mobilenet_v3 import MobileNetV3

    path, _ = fetch_source(CLS_SOURCE)
    ops, graph = read_onnx_ops(path)
    backbone = MobileNetV3(model_name="small", scale=0.35).eval().reparameterize()  # cls_mv3.yml
    example = torch.zeros(1, 3, 48, 192)
    n = len(trace_slots(backbone, example)[0])
    load_pairs(backbone, pair_ops(backbone, ops[:n], example))  # checks kinds, shapes, strides, pads, groups
    return backbone, ops[n:], graph, path


def _cls_inputs():
    """PaddleOCR's cls preprocessing (3x48x192, width-ratio resize, [-1, 1], right zero-padding) on every
    10th rendered line, plus random tensors at the cls shape and at a wider 48x320."""
    import cv2

    rng = np.random.default_rng(0)
    out = [(p.name, resize_norm_img(cv2.imread(str(p)), 48, 192 / 48)[None]) for p, _ in read_labels()[::10]]
    out += [("random48x192", rng.uniform(-1, 1, (2, 3, 48, 192)).astype(np.float32)),
            ("random48x320", rng.uniform(-1, 1, (1, 3, 48, 320)).astype(np.float32))]
    return out


def test_cls_export_is_backbone_plus_pool_fc(cls_backbone):
    """After the backbone's 53 parametric ops the official graph holds exactly the ClsHead: one fc 200 -> 2
    (200 = make_divisible(0.35 * 576)), fed by a global average pool of the backbone's max-pool output."""
    _, rest, graph, _ = cls_backbone
    assert [op.kind for op in rest] == ["linear"] and rest[0].params["weight"].shape == (2, 200)
    import onnx

    pools = [n for n in graph.nodes if n.op_type == "MaxPool"]
    assert len(pools) == 1
    attrs = {a.name: list(onnx.helper.get_attribute_value(a)) for a in pools[0].attribute
             if a.name in ("kernel_shape", "strides")}
    assert attrs == {"kernel_shape": [2, 2], "strides": [2, 2]}  # the backbone's final ``pool``
    gap = graph.only_consumer(pools[0].output[0])
    assert gap is not None and gap.op_type in ("GlobalAveragePool", "ReduceMean", "Pool2d")


def test_cls_export_se_gate_is_slope_0_2(cls_backbone):
    """The official graph's SE gates are HardSigmoid(alpha=0.2, beta=0.5), one per SE block (9 in "small")."""
    import onnx

    *_, path = cls_backbone
    gates = [n for n in onnx.load(str(path)).graph.node if n.op_type == "HardSigmoid"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in gates]
    assert len(gates) == 9
    assert all(abs(a["alpha"] - 0.2) < 1e-7 and abs(a["beta"] - 0.5) < 1e-7 for a in attrs)


def test_mobilenet_v3_matches_official_cls_backbone(cls_backbone):
    """Our backbone's output equals the tensor feeding the official cls head to fp32 precision (relative
    max |diff| < 1e-4) on real lines and random inputs; with the default 1/6 slope in the SE gates it does
    not (the check can see the slope); the whole classifier (mean pool + fc + softmax) agrees too."""
    from ppocr_torch.mapping import load_pairs, pair_ops, trace_slots
    from conversion.parity import OnnxRunner
    from conversion.readers.onnx_reader import read_onnx_ops
    from ppocr_torch.models.backbones.mobilenet_v3 import MobileNetV3

    backbone, rest, graph, path = cls_backbone
    feat_name = next(n for n in graph.nodes if n.op_type == "MaxPool").output[0]
    runner = OnnxRunner(path, extra_outputs=[feat_name])
    out_name = runner.output_names[0]
    fc_w = torch.from_numpy(rest[0].params["weight"])
    fc_b = torch.from_numpy(rest[0].params["bias"])

    wrong = MobileNetV3(model_name="small", scale=0.35, se_slope=1 / 6).eval().reparameterize()
    ops, _ = read_onnx_ops(path)
    ex = torch.zeros(1, 3, 48, 192)
    load_pairs(wrong, pair_ops(wrong, ops[:len(trace_slots(wrong, ex)[0])], ex))

    rel, prob_diff, wrong_rel = [], [], []
    for label, x in _cls_inputs():
        ref = runner.run(x)
        with torch.inference_mode():
            feat = backbone(torch.from_numpy(x))
            probs = torch.softmax(feat.mean(dim=(2, 3)) @ fc_w.T + fc_b, dim=1).numpy()
            feat_wrong = wrong(torch.from_numpy(x)).numpy()
        r = ref[feat_name]
        assert feat.shape == r.shape, label
        scale = float(np.abs(r).max())
        rel.append(float(np.abs(r - feat.numpy()).max()) / scale)
        wrong_rel.append(float(np.abs(r - feat_wrong).max()) / scale)
        prob_diff.append(float(np.abs(ref[out_name] - probs).max()))
    assert max(rel) < 1e-4, f"backbone relative max |diff| {max(rel):.3g}"
    assert max(prob_diff) < 1e-5, f"classifier probabilities max |diff| {max(prob_diff):.3g}"
    assert min(wrong_rel) > 1e-2, "a slope-1/6 SE gate should be visibly wrong"


# ---------------------------------------------------------------------------------------------------------
# Registry entries vs PaddleOCR's configs and official facts


def test_v2_0_registry_covers_paddleocr_model_list():
    """ch mobile/server, en_number, the 25 multilingual models of PaddleOCR's v2.0 model list (2020-12) and the
    4 script models added after it (latin/arabic/cyrillic/devanagari)."""
    names = {e.name for e in _v20_entries()}
    langs = ("french german korean japan it xi pu ru ar hi chinese_cht ug fa ur rs oc mr ne rsc bg uk be te ka "
             "ta").split()
    want = {MOBILE, SERVER, "en_number_mobile_v2.0_rec"} | {f"{lang}_mobile_v2.0_rec" for lang in langs} | {
        f"{s}_ppocr_mobile_v2.0_rec" for s in ("latin", "arabic", "cyrillic", "devanagari")}
    assert len(langs) == 25 and names == want


def test_class_counts_agree_with_official_exports_sharing_the_dictionary():
    """Same dictionary + space => same class count as official models we can read (shared/official-models.md):
    ppocr_keys_v1 -> 6625 (ch_PP-OCRv2_rec), en_dict -> 97 (en_PP-OCRv3_rec), japan_dict -> 4401 and
    chinese_cht_dict -> 8423 (japan/chinese_cht_PP-OCRv3_rec)."""
    from ppocr_torch import registry

    for name, n in ((MOBILE, 6625), (SERVER, 6625), ("en_number_mobile_v2.0_rec", 97),
                    ("japan_mobile_v2.0_rec", 4401), ("chinese_cht_mobile_v2.0_rec", 8423)):
        assert registry.get_entry(name).spec.num_classes == n, name


def test_specs_follow_the_training_configs():
    """rec_chinese_lite_train_v2.0.yml and the multi_language configs: MobileNetV3 small x0.5,
    small_stride [1, 2, 2, 2], rnn hidden 48, CTCHead, 3x32x320, use_space_char True;
    rec_chinese_common_train_v2.0.yml: ResNet layers 34, rnn hidden 256."""
    for e in _v20_entries():
        s = e.spec
        assert (s.input_height, s.base_width, s.use_space_char, s.head) == (32, 320, True, {"name": "CTCHead"})
        if e.name == SERVER:
            assert s.backbone == {"name": "ResNet", "layers": 34} and s.neck == {"name": "rnn", "hidden_size": 256}
        else:
            assert s.backbone == {"name": "MobileNetV3", "model_name": "small", "scale": 0.5,
                                  "small_stride": [1, 2, 2, 2]}
            assert s.neck == {"name": "rnn", "hidden_size": 48}
        assert e.official["inference_url"].startswith("https://paddleocr.bj.bcebos.com/dygraph_v2.0/")


def test_reverse_text_follows_paddleocr_rule():
    """PaddleOCR's BaseRecLabelDecode reverses the decoded text iff "arabic" is in the dictionary path: only
    arabic_dict.txt here (ar/fa/ur/ug use their own dictionaries and are not reversed by PaddleOCR)."""
    for e in _v20_entries():
        assert bool(e.spec.extra.get("reverse_text", False)) == ("arabic" in e.dictionary), e.name


def test_neck_and_head_are_the_ch_pp_ocrv2_modules():
    """The v2.0 BiLSTM neck and CTC head are built by the same classes as ch_PP-OCRv2_rec, whose official export
    converts and passes against ONNX Runtime (tests/test_parity_onnx.py); only the widths differ."""
    from ppocr_torch import load_model

    v2 = load_model("ch_PP-OCRv2_rec", pretrained=False)
    for name in (MOBILE, SERVER):
        m = load_model(name, pretrained=False)
        assert type(m.neck) is type(v2.neck) and type(m.neck.encoder) is type(v2.neck.encoder)
        assert type(m.head) is type(v2.head) and m.head.mid_channels is None  # plain fc, as CTCHead's default


# ---------------------------------------------------------------------------------------------------------
# Shapes, train == deploy, training-checkpoint names, parameter counts


@pytest.mark.parametrize("name,channels", [(MOBILE, 288), (SERVER, 512)])
def test_output_length_is_width_over_4(name, channels):
    """Both backbones end at height 1 with W/4 steps for a 32-high input: MobileNetV3 (conv1 s2, strides (s,1),
    2x2 pool) with small_stride [1,2,2,2]; ResNet34_vd (3x3/2 max-pool, (2,1) stages, 2x2 pool)."""
    from ppocr_torch import load_model

    m = load_model(name, pretrained=False)
    for w in (320, 100, 48):
        with torch.inference_mode():
            st = m(torch.zeros(1, 3, 32, w), return_stages=True)
        assert tuple(st["backbone"].shape) == (1, channels, 1, w // 4)
        assert tuple(st["head"].shape) == (1, w // 4, m.spec.num_classes)


@pytest.mark.parametrize("name", [MOBILE, SERVER, "arabic_ppocr_mobile_v2.0_rec"])
def test_train_equals_deploy(name):
    """Deploy form (BatchNorm folded) computes the training form's function: float64, random BN statistics."""
    from ppocr_torch import registry
    from ppocr_torch.models import build_model, reparameterize_model

    spec = registry.get_entry(name).spec
    torch.manual_seed(0)
    train = build_model(spec, form="train").double()
    with torch.no_grad():
        for mod in train.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
    deploy = build_model(spec, form="train").double()
    deploy.load_state_dict(train.state_dict())
    reparameterize_model(deploy)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deploy.modules())
    x = torch.randn(2, 3, 32, 160, dtype=torch.float64)
    with torch.inference_mode():
        a, b = train(x, return_stages=True), deploy(x, return_stages=True)
    assert torch.allclose(a["backbone"], b["backbone"], rtol=1e-9, atol=1e-9)
    assert torch.allclose(a["head"], b["head"], rtol=0, atol=1e-12)


def _paddle_keys(model):
    """Training-form tensor names as PaddleOCR's checkpoints spell them (BatchNorm stats ``_mean``/``_variance``),
    with PaddleOCR's shapes (Linear weights [in, out])."""
    modules = dict(model.named_modules())
    out = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            continue
        shape = tuple(v.shape)
        if isinstance(modules.get(k.rsplit(".", 1)[0]), torch.nn.Linear) and k.endswith(".weight"):
            shape = shape[::-1]
        out[k.replace(".running_mean", "._mean").replace(".running_var", "._variance")] = shape
    return out


# Full names and shapes written from PaddleOCR's module definitions (rec_mobilenet_v3.py/det_mobilenet_v3.py:
# conv1, blocks.N.{expand_conv,bottleneck_conv,mid_se,linear_conv}.{conv,bn}, conv2; rnn.py SequenceEncoder ->
# encoder.lstm; rec_ctc_head.py fc) for small x0.5 (channels 8, 16, 24, 48; expand 8..288; last conv 288).
MOBILE_KEYS = {
    "backbone.conv1.conv.weight": (8, 3, 3, 3),
    "backbone.conv1.bn._mean": (8,),
    "backbone.blocks.0.expand_conv.conv.weight": (8, 8, 1, 1),
    "backbone.blocks.0.bottleneck_conv.conv.weight": (8, 1, 3, 3),
    "backbone.blocks.0.mid_se.conv1.weight": (2, 8, 1, 1),
    "backbone.blocks.0.mid_se.conv2.bias": (8,),
    "backbone.blocks.1.expand_conv.conv.weight": (40, 8, 1, 1),
    "backbone.blocks.3.bottleneck_conv.conv.weight": (48, 1, 5, 5),
    "backbone.blocks.8.mid_se.conv1.weight": (36, 144, 1, 1),
    "backbone.blocks.10.linear_conv.bn._variance": (48,),
    "backbone.conv2.conv.weight": (288, 48, 1, 1),
    "backbone.conv2.bn.weight": (288,),
    "neck.encoder.lstm.weight_ih_l0": (192, 288),
    "neck.encoder.lstm.weight_hh_l1_reverse": (192, 48),
    "neck.encoder.lstm.bias_ih_l1": (192,),
    "head.fc.weight": (96, 6625),
    "head.fc.bias": (6625,),
}
# rec_resnet_vd.py: conv1_1..conv1_3 and bb_<stage>_<block>.{conv0,conv1,short}.{_conv,_batch_norm}
SERVER_KEYS = {
    "backbone.conv1_1._conv.weight": (32, 3, 3, 3),
    "backbone.conv1_3._batch_norm._variance": (64,),
    "backbone.bb_0_0.short._conv.weight": (64, 64, 1, 1),
    "backbone.bb_0_2.conv1._conv.weight": (64, 64, 3, 3),
    "backbone.bb_1_0.conv0._conv.weight": (128, 64, 3, 3),
    "backbone.bb_1_0.short._conv.weight": (128, 64, 1, 1),
    "backbone.bb_2_5.conv1._batch_norm.bias": (256,),
    "backbone.bb_3_2.conv1._conv.weight": (512, 512, 3, 3),
    "neck.encoder.lstm.weight_ih_l0": (1024, 512),
    "neck.encoder.lstm.weight_ih_l1_reverse": (1024, 512),
    "head.fc.weight": (512, 6625),
}


@pytest.mark.parametrize("name,expected,absent,count", [
    # 1 stem + 11 blocks (9 with SE: 19 tensors, 2 without: 15) + conv2 = 5 + 201 + 5 backbone tensors,
    # 2 LSTM layers x 2 directions x 4 tensors, fc weight + bias
    (MOBILE, MOBILE_KEYS, ["backbone.blocks.1.mid_se.conv1.weight", "backbone.blocks.2.mid_se.conv2.bias"],
     5 + 9 * 19 + 2 * 15 + 5 + 16 + 2),
    # 3 stem convs + 16 BasicBlocks x 2 convs + 4 projection shortcuts (first block of each stage), 5 tensors each
    (SERVER, SERVER_KEYS, ["backbone.bb_0_1.short._conv.weight", "backbone.bb_1_1.short._conv.weight"],
     (3 + 16 * 2 + 4) * 5 + 16 + 2),
])
def test_training_checkpoint_names(name, expected, absent, count):
    from ppocr_torch import registry
    from ppocr_torch.models import build_model

    keys = _paddle_keys(build_model(registry.get_entry(name).spec, form="train"))
    assert {k: keys.get(k) for k in expected} == expected
    assert not set(absent) & set(keys)
    assert len(keys) == count


def test_structure_details_from_paddleocr_source():
    """Two behaviours of PaddleOCR's code kept on purpose: a residual add only where ``stride == 1`` (the first
    small block has the tuple stride (1, 1): no add) and the vd shortcut of a downsampling ResNet block
    (ceil-mode 2x1 average pool, then a stride-1 1x1 conv), except in the very first block (plain 1x1)."""
    from ppocr_torch import load_model

    mob = load_model(MOBILE, pretrained=False).backbone
    # (stride == 1 and in == out) per PaddleOCR's small table at x0.5
    assert [b.if_shortcut for b in mob.blocks] == [False, False, True, False, True, True, True, True, False,
                                                   True, True]
    res = load_model(SERVER, pretrained=False).backbone
    assert not res.bb_0_0.short.is_vd_mode and res.bb_0_0.short._conv.stride == (1, 1)
    for stage in (1, 2, 3):
        short = getattr(res, f"bb_{stage}_0").short
        assert short.is_vd_mode and short._conv.stride == (1, 1)
        assert short._pool2d_avg.kernel_size == (2, 1) and short._pool2d_avg.ceil_mode


# Published inference model sizes in MiB ("推理模型大小"), PaddleOCR doc/doc_ch/models_list.md (v2.0 list,
# 2020-12-12) and doc/doc_en/models_list_en.md (v2.1 list, 2021-09-06: ch mobile 5.2M, the four script models
# 2.6M, cls 1.38M). The early list's 3.71M for ch_ppocr_mobile_v2.0_rec is below the 4.15 MiB that its
# 6625-class fc + LSTM + backbone alone take in float32 whatever the backbone, so it is left out.
# The server model's published 94.8M is also below its parameter bytes (106.3 MiB: ResNet34_vd 21.3M, BiLSTM-256
# 3.15M, fc 3.4M) and is not used; the architecture is the one of rec_chinese_common_train_v2.0.yml, whose
# training checkpoint third-party converters load by these names (frotms/PaddleOCR2Pytorch,
# converter/ch_ppocr_server_v2.0_rec_converter.py: ResNet layers 34 + rnn hidden 256).
PUBLISHED_MIB = {
    "ch_ppocr_mobile_v2.0_rec": 5.2, "en_number_mobile_v2.0_rec": 2.56, "french_mobile_v2.0_rec": 2.65,
    "german_mobile_v2.0_rec": 2.65, "korean_mobile_v2.0_rec": 3.9, "japan_mobile_v2.0_rec": 4.23,
    "it_mobile_v2.0_rec": 2.53, "xi_mobile_v2.0_rec": 2.53, "pu_mobile_v2.0_rec": 2.63, "ru_mobile_v2.0_rec": 2.63,
    "ar_mobile_v2.0_rec": 2.53, "hi_mobile_v2.0_rec": 2.63, "chinese_cht_mobile_v2.0_rec": 5.63,
    "ug_mobile_v2.0_rec": 2.63, "fa_mobile_v2.0_rec": 2.63, "ur_mobile_v2.0_rec": 2.63, "rs_mobile_v2.0_rec": 2.53,
    "oc_mobile_v2.0_rec": 2.53, "mr_mobile_v2.0_rec": 2.63, "ne_mobile_v2.0_rec": 2.63, "rsc_mobile_v2.0_rec": 2.63,
    "bg_mobile_v2.0_rec": 2.63, "uk_mobile_v2.0_rec": 2.63, "be_mobile_v2.0_rec": 2.63, "te_mobile_v2.0_rec": 2.63,
    "ka_mobile_v2.0_rec": 2.63, "ta_mobile_v2.0_rec": 2.63, "latin_ppocr_mobile_v2.0_rec": 2.6,
    "arabic_ppocr_mobile_v2.0_rec": 2.6, "cyrillic_ppocr_mobile_v2.0_rec": 2.6,
    "devanagari_ppocr_mobile_v2.0_rec": 2.6,
}
CLS_PUBLISHED_MIB = 1.38


def _float_bytes(module):
    """float32 bytes of everything an inference model stores (weights, biases, BatchNorm statistics)."""
    return 4 * sum(v.numel() for v in module.state_dict().values() if v.is_floating_point())


def test_parameter_bytes_vs_published_model_sizes():
    """Published inference sizes = float32 tensors + the program file. (1) For all 31 mobile models and the cls
    model, published size - our float32 bytes is the same small program overhead (0.7-1.2 MiB); (2) the sizes
    grow with the class count at 4 * (2 * 48 + 1) bytes per class (the fc on the 96-wide BiLSTM output), fitted
    over the four large-dictionary models against the small ones, within 10% (hidden 64 would give 516)."""
    from ppocr_torch import registry
    from ppocr_torch.models import build_model
    from ppocr_torch.models.backbones.mobilenet_v3 import MobileNetV3

    mib = 2 ** 20
    ours, overhead = {}, {}
    for name, published in PUBLISHED_MIB.items():
        spec = registry.get_entry(name).spec
        ours[name] = _float_bytes(build_model(spec, form="train")) / mib
        overhead[name] = published - ours[name]
    cls_bytes = (_float_bytes(MobileNetV3(model_name="small", scale=0.35)) + 4 * (200 * 2 + 2)) / mib
    overhead["ch_ppocr_mobile_v2.0_cls"] = CLS_PUBLISHED_MIB - cls_bytes
    bad = {k: round(v, 3) for k, v in overhead.items() if not 0.7 <= v <= 1.2}
    assert not bad, f"published size - float32 bytes outside the program-file overhead band: {bad}"

    small = [n for n in PUBLISHED_MIB if registry.get_entry(n).spec.num_classes < 200]
    base_c = np.mean([registry.get_entry(n).spec.num_classes for n in small])
    base_s = np.mean([PUBLISHED_MIB[n] for n in small])
    for name in (MOBILE, "korean_mobile_v2.0_rec", "japan_mobile_v2.0_rec", "chinese_cht_mobile_v2.0_rec"):
        per_class = (PUBLISHED_MIB[name] - base_s) * mib / (registry.get_entry(name).spec.num_classes - base_c)
        assert abs(per_class / (4 * 97) - 1) < 0.10, f"{name}: {per_class:.0f} bytes per class"
