"""PP-HGNet server recognisers (PP-OCRv4_server_rec, PP-OCRv4_server_rec_doc, PP-OCRv5_server_rec).

No official weights of these models are reachable here, so the architecture is checked component by component
against what PaddleOCR publishes: the stage shapes its configs imply, the inference-model sizes in its model
list, the parameter names/shapes its module definitions give a training checkpoint, and the exactness of the
deploy form (BatchNorm folding) in float64.
"""

import hashlib
import re
from pathlib import Path

import pytest
import torch

from ppocr_torch import registry
from ppocr_torch.models import build_model, reparameterize_model
from ppocr_torch.models.backbones.hgnet_v2 import UNUSED_CHECKPOINT_KEYS, PPHGNetV2
from model_utils import randomize

V4, V4_DOC, V5 = "PP-OCRv4_server_rec", "PP-OCRv4_server_rec_doc", "PP-OCRv5_server_rec"
DICTS = Path(__file__).resolve().parent.parent / "ppocr_torch" / "dicts"


def _spec(name):
    return registry.get_entry(name).spec


_randomize = randomize


# ---------------------------------------------------------------------------------------------------------
# Shapes: a 3 x 48 x 320 line through the strides of the configs (stem /2; stages (2,1), (1,2), (2,1), (2,1);
# eval pooling [3, 2]) -> T = 40 for both backbones.
STAGE_SHAPES = {
    # stem, stage1..4 (C, H, W) -- channels from PaddleOCR's stage_config_rec tables
    "PPHGNet_small": [(128, 24, 160), (256, 12, 160), (512, 12, 80), (768, 6, 80), (1024, 3, 80)],
    "PPHGNetV2_B4": [(48, 24, 160), (128, 12, 160), (512, 12, 80), (1024, 6, 80), (2048, 3, 80)],
}


def test_class_counts_follow_the_configs():
    # dictionary lines + blank + space (use_space_char: true in all three configs)
    for name, dict_lines, classes in [(V4, 6623, 6625), (V4_DOC, 15629, 15631), (V5, 18383, 18385)]:
        spec = _spec(name)
        assert spec.use_space_char and spec.num_classes == classes == dict_lines + 2
        assert (DICTS / spec.dictionary).read_bytes().count(b"\n") == dict_lines
    assert _spec(V4_DOC).backbone == _spec(V4).backbone and _spec(V4_DOC).head == _spec(V4).head


@pytest.mark.parametrize("name, classes", [(V4, 6625), (V5, 18385)])
def test_stage_shapes_and_sequence_length(name, classes):
    spec = _spec(name)
    assert spec.num_classes == classes and spec.input_height == 48
    model = build_model(spec, form="deploy")
    seen = []
    hooks = [model.backbone.stem.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))]
    hooks += [s.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:]))) for s in model.backbone.stages]
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 48, 320), return_stages=True)
    for h in hooks:
        h.remove()
    expected = STAGE_SHAPES[spec.backbone["name"]]
    assert seen == expected
    assert tuple(out["backbone"].shape) == (1, expected[-1][0], 1, 40)
    assert tuple(out["neck"].shape) == (1, 40, 120)  # svtr neck dims 120
    assert tuple(out["head"].shape) == (1, 40, classes)


@pytest.mark.parametrize("backbone", [{"name": "PPHGNet_small"}, {"name": "PPHGNetV2_B4", "text_rec": True}])
def test_training_mode_pools_to_40_steps(backbone):
    from ppocr_torch.models.backbones import get_backbone

    bb = get_backbone(backbone["name"])(**{k: v for k, v in backbone.items() if k != "name"}).train()
    with torch.no_grad():
        assert bb(torch.zeros(1, 3, 32, 160)).shape[2:] == (1, 40)  # adaptive_avg_pool2d([1, 40])


# ---------------------------------------------------------------------------------------------------------
# Deploy form == training form. Exact algebra is checked in float64 on small networks built from the same blocks
# (float64 grouped convolutions are very slow on CPU), the full models in float32.
def _check_deploy(model, x, tol):
    model = _randomize(model).to(x.dtype).eval()
    with torch.no_grad():
        ref = model(x, return_stages=True) if hasattr(model, "spec") else {"backbone": model(x)}
        deploy = reparameterize_model(model)
        out = deploy(x, return_stages=True) if hasattr(model, "spec") else {"backbone": deploy(x)}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deploy.modules())
    for stage, r in ref.items():
        rel = (r - out[stage]).abs().max() / r.abs().max()
        assert rel < tol, (stage, rel.item())
    return deploy


@pytest.mark.parametrize("name", [V4, V5])
def test_deploy_form_equals_training_form(name):
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    deploy = _check_deploy(build_model(_spec(name), form="train"), x, 1e-5)
    assert deploy.form == "deploy"
    n = sum(p.numel() for p in deploy.parameters())
    reparameterize_model(deploy)  # idempotent
    assert sum(p.numel() for p in deploy.parameters()) == n


def test_deploy_form_is_exact_in_float64_hgnet_blocks():
    from ppocr_torch.models.backbones.hgnet import HG_Stage

    # PPHGNet_small's blocks with small channels: depthwise strided downsample, identity blocks, ESE
    net = torch.nn.Sequential(HG_Stage(16, 8, 32, 1, 3, True, (2, 1)), HG_Stage(32, 8, 32, 2, 3, True, (1, 2)))
    _check_deploy(net, torch.randn(2, 16, 12, 20, generator=torch.Generator().manual_seed(2)).double(), 1e-12)


def test_deploy_form_is_exact_in_float64_hgnetv2_with_lab():
    # PPHGNetV2_B4 has use_lab=False; the smaller PP-HGNetV2 sizes put a LAB after every activation. A small
    # LAB network with the rec strides checks that folding the BN never touches the LAB.
    cfg = {"stage1": (16, 16, 32, 1, True, False, 3, 2, (2, 1)), "stage2": (32, 16, 64, 1, True, False, 3, 2, (1, 2)),
           "stage3": (64, 16, 64, 2, True, True, 5, 2, (2, 1)), "stage4": (64, 32, 96, 1, True, True, 5, 2, (2, 1))}
    net = PPHGNetV2(cfg, (3, 16, 16), use_lab=True)
    labs = [n for n, _ in net.named_parameters() if ".lab." in n]
    assert "stem.stem1.lab.scale" in labs and "stages.2.blocks.1.layers.0.conv2.lab.bias" in labs
    assert not any(".conv1.lab." in n or "downsample.lab" in n for n in labs)  # no activation, no LAB
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(3)).double()
    deploy = _check_deploy(net, x, 1e-12)
    assert len([n for n, _ in deploy.named_parameters() if ".lab." in n]) == len(labs)


# ---------------------------------------------------------------------------------------------------------
# Size: PaddleOCR's model list gives the inference model's storage size in M (MiB, rounded up): the Paddle
# inference export stores every conv weight and the four BatchNorm vectors unfused (Paddle Inference fuses at
# load time), i.e. our training-form state dict. The classifier tail of PPHGNetV2 (last_conv, fc) is unused
# by the recognition forward and absent from inference exports; the NRTR head is training-only.
PUBLISHED_SIZE_M = {V4: 87, V4_DOC: 91, V5: 81}  # docs/version3.x/module_usage/text_recognition.en.md


@pytest.mark.parametrize("name", [V4, V4_DOC, V5])
def test_parameter_bytes_match_the_published_model_size(name):
    assert registry.get_entry(name).official["published_size_M"] == PUBLISHED_SIZE_M[name]
    sd = build_model(_spec(name), form="train").state_dict()
    values = sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    mib = values * 4 / 2**20
    assert PUBLISHED_SIZE_M[name] - 1 < mib <= PUBLISHED_SIZE_M[name], mib


# ---------------------------------------------------------------------------------------------------------
# Training-checkpoint names: what PaddleOCR's module definitions put in a .pdparams (Paddle spelling: BatchNorm
# _mean/_variance, Linear weights [in, out]); written down from rec_hgnet.py / rec_pphgnetv2.py /
# rec_multi_head.py (CTC branch) / rnn.py EncoderWithSVTR.
NECK_KEYS = {  # in = backbone channels C: conv1 C -> C/8 (1x3), conv4 2C -> C/8 (1x3)
    "head.ctc_encoder.encoder.conv2.conv.weight": "[120, C8, 1, 1]",
    "head.ctc_encoder.encoder.svtr_block.1.mixer.qkv.weight": [120, 360],
    "head.ctc_encoder.encoder.svtr_block.0.mlp.fc1.weight": [120, 240],
    "head.ctc_encoder.encoder.norm.weight": [120],
    "head.ctc_encoder.encoder.conv1x1.norm._variance": [120],
}
CHECKPOINT_KEYS = {
    V4: {
        "backbone.stem.0.conv.weight": [64, 3, 3, 3],
        "backbone.stem.0.bn._mean": [64],
        "backbone.stem.2.bn._variance": [128],
        "backbone.stages.0.downsample.conv.weight": [128, 1, 3, 3],
        "backbone.stages.0.blocks.0.layers.0.conv.weight": [128, 128, 3, 3],
        "backbone.stages.1.blocks.0.layers.5.conv.weight": [160, 160, 3, 3],
        "backbone.stages.0.blocks.0.aggregation_conv.conv.weight": [256, 128 + 6 * 128, 1, 1],
        "backbone.stages.2.blocks.1.att.conv.bias": [768],
        "backbone.stages.3.blocks.0.aggregation_conv.conv.weight": [1024, 768 + 6 * 224, 1, 1],
        "backbone.stages.3.blocks.0.att.conv.weight": [1024, 1024, 1, 1],
        "head.ctc_encoder.encoder.conv1.conv.weight": [128, 1024, 1, 3],
        "head.ctc_encoder.encoder.conv4.conv.weight": [128, 2048, 1, 3],
        "head.ctc_head.fc.weight": [120, 6625],
        "head.ctc_head.fc.bias": [6625],
    },
    V5: {
        "backbone.stem.stem1.conv.weight": [32, 3, 3, 3],
        "backbone.stem.stem2a.conv.weight": [16, 32, 2, 2],
        "backbone.stem.stem2b.conv.weight": [32, 16, 2, 2],
        "backbone.stem.stem3.conv.weight": [32, 64, 3, 3],
        "backbone.stem.stem4.bn._mean": [48],
        "backbone.stages.0.downsample.conv.weight": [48, 1, 3, 3],
        "backbone.stages.0.blocks.0.layers.0.conv.weight": [48, 48, 3, 3],
        "backbone.stages.0.blocks.0.aggregation_squeeze_conv.conv.weight": [64, 48 + 6 * 48, 1, 1],
        "backbone.stages.0.blocks.0.aggregation_excitation_conv.conv.weight": [128, 64, 1, 1],
        "backbone.stages.2.blocks.0.layers.0.conv1.conv.weight": [192, 512, 1, 1],
        "backbone.stages.2.blocks.2.layers.5.conv2.conv.weight": [192, 1, 5, 5],
        "backbone.stages.3.blocks.0.aggregation_squeeze_conv.conv.weight": [1024, 1024 + 6 * 384, 1, 1],
        "backbone.stages.3.blocks.0.aggregation_excitation_conv.bn._variance": [2048],
        "head.ctc_encoder.encoder.conv1.conv.weight": [256, 2048, 1, 3],
        "head.ctc_head.fc.weight": [120, 18385],
    },
}
# backbone tensors in a .pdparams: 5 per ConvBNAct (conv weight + 4 BN), 2 per ESE conv
BACKBONE_KEYS = {
    # stem 3 + 4 downsample + 5 blocks x (6 layers + aggregation) ConvBNAct; 5 ESE
    V4: (3 + 4 + 5 * 7) * 5 + 5 * 2,
    # stem 5 + 4 downsample + 2 plain blocks x (6 + 2) + 4 light blocks x (6 x 2 + 2) ConvBNAct
    V5: (5 + 4 + 2 * 8 + 4 * 14) * 5,
}


def _paddle_state(model):
    """Our state dict in Paddle's spelling and layout."""
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        shape = list(v.shape)[::-1] if k in linear else list(v.shape)
        out[re.sub(r"running_var$", "_variance", re.sub(r"running_mean$", "_mean", k))] = shape
    return out


@pytest.mark.parametrize("name", [V4, V5])
def test_training_checkpoint_names_and_shapes(name):
    state = _paddle_state(build_model(_spec(name), form="train"))
    c8 = CHECKPOINT_KEYS[name]["head.ctc_encoder.encoder.conv1.conv.weight"][0]
    expected = {**CHECKPOINT_KEYS[name], **{k: ([120, c8, 1, 1] if isinstance(v, str) else v)
                                            for k, v in NECK_KEYS.items()}}
    for key, shape in expected.items():
        assert key in state, key
        assert state[key] == shape, (key, state[key], shape)
    assert sum(k.startswith("backbone.") for k in state) == BACKBONE_KEYS[name]
    assert not any(k.endswith(u) for k in state for u in UNUSED_CHECKPOINT_KEYS if k.startswith("backbone."))


def test_doc_dictionary_is_the_official_file():
    # sha256 of paddleocr 2.10.0's ppocr/utils/dict/ppocrv4_doc_dict.txt; 15629 entries + blank + space = 15631
    data = (DICTS / "ppocrv4_doc_dict.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "a5bc3887c43c901e5a3f97b13ffadf1c5754ede7cc8c9f5abe22e875a7c48372"
    assert data.count(b"\n") == 15629
