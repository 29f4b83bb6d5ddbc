"""Architecture checks independent of any weights file: deploy form == training form, shapes, specs."""

import pytest
import torch

from ppocr_torch import registry
from ppocr_torch.models import ModelSpec, build_model, reparameterize_model
from ppocr_torch.models.backbones.lcnet_v4 import NET_CONFIG_REC
from model_utils import randomize


_randomize = randomize


def _spec(name):
    return registry.get_entry(name).spec


@pytest.mark.parametrize("name", ["PP-OCRv6_small_rec", "ch_PP-OCRv2_rec"])
def test_deploy_form_equals_training_form(name):
    spec = _spec(name)
    # float64: the folding must be exact algebra; fp32 rounding would blur a wrong eps or a missed branch
    train = _randomize(build_model(spec, form="train")).double().eval()
    x = torch.randn(2, 3, spec.input_height, 200, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        ref = train(x, return_stages=True)
        deploy = reparameterize_model(train)
        out = deploy(x, return_stages=True)
    assert deploy.form == "deploy"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deploy.modules())
    for stage in ("backbone", "neck", "head"):  # random weights make activations large: compare relatively
        rel = (ref[stage] - out[stage]).abs().max() / ref[stage].abs().max()
        assert rel < 1e-6, (stage, rel.item())
    # idempotent
    n_params = sum(p.numel() for p in deploy.parameters())
    reparameterize_model(deploy)
    assert sum(p.numel() for p in deploy.parameters()) == n_params


@pytest.mark.parametrize("size", sorted(NET_CONFIG_REC))
def test_lcnetv4_sizes_build_and_fuse(size):
    spec = _spec("PP-OCRv6_small_rec").replace(backbone={"name": "PPLCNetV4", "model_size": size})
    model = _randomize(build_model(spec, form="train")).double().eval()
    x = torch.randn(1, 3, 48, 96, generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad():
        a = model(x, return_stages=True)
        b = reparameterize_model(model)(x, return_stages=True)
    assert a["head"].shape == (1, 12, spec.num_classes)
    rel = (a["neck"] - b["neck"]).abs().max() / a["neck"].abs().max()
    assert rel < 1e-9


def test_output_lengths_follow_the_backbone_strides():
    v6, v2 = build_model(_spec("PP-OCRv6_small_rec")), build_model(_spec("ch_PP-OCRv2_rec"))
    with torch.no_grad():
        assert v6(torch.zeros(1, 3, 48, 320)).shape == (1, 40, 18710)  # W / 8
        assert v2(torch.zeros(1, 3, 32, 320)).shape == (1, 80, 6625)  # W / 4
        p = v6(torch.zeros(1, 3, 48, 96))
    assert torch.allclose(p.sum(-1), torch.ones(1, 12), atol=1e-5)  # eval mode returns probabilities


def test_parameter_counts_match_the_official_exports():
    # official ONNX exports: PP-OCRv6_small_rec 5,267,734 stored values incl. 3 unfolded neck BatchNorms
    # (3 x 4 x 120) in place of 3 conv biases and 104 shape constants; ch_PP-OCRv2_rec 2.06 M
    v6 = sum(p.numel() for p in build_model(_spec("PP-OCRv6_small_rec")).parameters())
    v2 = sum(p.numel() for p in build_model(_spec("ch_PP-OCRv2_rec")).parameters())
    assert v6 == 5_266_550
    assert v2 == 2_060_961


def test_training_key_names_mirror_paddleocr():
    v6 = build_model(_spec("PP-OCRv6_small_rec"), form="train").state_dict()
    for key in ["backbone.conv1.stem1.conv.weight", "backbone.conv1.stem2a.bn.running_var",
                "backbone.blocks2.0.token_mixer.rep_dw.conv.conv.weight", "backbone.blocks2.0.token_mixer.se.conv1.bias",
                "backbone.blocks4.0.token_mixer.dw_conv.bn.weight", "backbone.blocks5.2.channel_mixer.compress.conv.weight",
                "head.ctc_encoder.encoder.conv_reduce.norm.running_mean",
                "head.ctc_encoder.encoder.svtr_block.1.mixer.qkv.weight", "head.ctc_head.fc.bias"]:
        assert key in v6, key
    v2 = build_model(_spec("ch_PP-OCRv2_rec"), form="train").state_dict()
    for key in ["backbone.conv1._conv.weight", "backbone.conv1._batch_norm.running_mean",
                "backbone.block_list.12._se.conv2.weight", "neck.encoder.lstm.weight_ih_l0_reverse",
                "neck.encoder.lstm.bias_hh_l1", "head.fc1.weight", "head.fc2.bias"]:
        assert key in v2, key


def test_spec_round_trips_and_rejects_unknown_fields():
    spec = _spec("PP-OCRv6_small_rec")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    from ppocr_torch.errors import SpecError

    with pytest.raises(SpecError, match="bogus"):
        ModelSpec.from_dict({**spec.to_dict(), "bogus": 1})
    with pytest.raises(SpecError, match="NoSuchNet"):
        build_model(spec.replace(backbone={"name": "NoSuchNet"}))
    with pytest.raises(SpecError, match="NoSuchHead"):
        build_model(spec.replace(head={"name": "NoSuchHead"}))


def test_a_checkpoint_whose_spec_cannot_be_built_is_a_checkpoint_error(tmp_path):
    import torch

    from ppocr_torch.checkpoint import load_checkpoint, save_checkpoint
    from ppocr_torch.errors import CheckpointError

    from ppocr_torch import load_model

    model = load_model("PP-OCRv6_tiny_rec", pretrained=False)
    path = tmp_path / "m.pth"
    save_checkpoint(path, model)
    payload = torch.load(path, weights_only=True)
    payload["spec"]["head"] = {"name": "Unknown"}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="cannot be built"):
        load_checkpoint(path)


def test_same_maxpool_equals_padded_max_pool2d():
    from ppocr_torch.models.backbones.lcnet_v4 import SamePool2x2
    from ppocr_torch.models.layers import SamePad2d

    x = torch.randn(2, 5, 13, 17)
    x[0, 0, -1, -1] = -1e30  # the pad must be -inf, not 0: a very negative corner stays itself
    ref = torch.nn.functional.max_pool2d(SamePad2d(2, value=float("-inf"))(x), 2, 1)
    out = SamePool2x2()(x)
    assert torch.equal(ref, out)
    assert out[0, 0, -1, -1] == -1e30


def test_reset_head_keeps_common_rows_and_describes_itself(tmp_path):
    """``RecModel.reset_head``: a new classifier for a new character set; rows of characters in both sets are
    the old ones, new characters get fresh rows; spec and charset describe the result, which saves and loads."""
    import torch

    from ppocr_torch import load_model
    from ppocr_torch.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = load_model("en_PP-OCRv3_rec", pretrained=False)
    old_w = model.classifier().weight.detach().clone()
    old_b = model.classifier().bias.detach().clone()
    old = list(model.charset)
    d = tmp_path / "mine.txt"
    d.write_text("a\nb\n€\n7\n", encoding="utf-8")
    assert model.reset_head(d, name="mine_rec") is model
    assert model.charset == ["blank", "a", "b", "€", "7", " "] and model.spec.num_classes == 6
    assert model.spec.dictionary == "mine.txt" and model.spec.name == "mine_rec" and model.spec.use_space_char
    w, b = model.classifier().weight, model.classifier().bias
    for i, c in enumerate(model.charset):
        if c in old:
            assert torch.equal(w[i], old_w[old.index(c)]) and b[i] == old_b[old.index(c)], c
    assert not torch.equal(w[3], old_w[0])  # "€" is new: not a copy of any row
    x = torch.rand(1, 3, 48, 96)
    assert model.eval()(x).shape[-1] == 6
    path = tmp_path / "mine.pth"
    save_checkpoint(path, model)
    again = load_checkpoint(path)
    assert again.charset == model.charset and torch.equal(again(x), model(x))
    model.reset_head(["x", "y"], use_space_char=False)
    assert model.charset == ["blank", "x", "y"] and model.spec.dictionary == "custom"
