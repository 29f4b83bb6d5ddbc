"""RecModel.train_form() and RecModel.deploy(): a converted (deploy-form) model made trainable and folded back.

Every architecture family of the registry, one model each (the embedded PP-OCRv6_small_rec with its real
weights; the others with random deploy weights: built in training form with random BatchNorm statistics and
learnable affine scalars, then re-parameterised): the training form in eval mode computes the deploy form's
function, and folding it again gives the deploy form back. Then the acceptance test of the issue: a few
training steps on rendered lines, after which the training form and its deploy form still agree.
"""

import numpy as np
import pytest
import torch

from helpers import read_labels
from model_utils import randomize, spec_of

_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)

# one registry model per architecture family (backbone + neck + head kind). dtype: float64 (exact algebra) for
# the small MobileNetV3 / PPLCNetV4-tiny models; float32 for the others (float64 depthwise convolutions are
# slow on CPU) and for the real weights, as users run them
FAMILIES = [
    ("PP-OCRv6_small_rec", torch.float32),  # PPLCNetV4 small (branch stem, RepDWConv) + lightsvtr; real weights
    ("PP-OCRv6_tiny_rec", torch.float64),  # PPLCNetV4 tiny (simple stem) + reshape + guided CTC head (fc1/fc2)
    ("PP-OCRv4_server_rec", torch.float32),  # PPHGNet_small + svtr
    ("PP-OCRv5_server_rec", torch.float32),  # PPHGNetV2_B4 + svtr
    ("ch_PP-OCRv3_rec", torch.float32),  # MobileNetV1Enhance + svtr
    ("ch_PP-OCRv2_rec", torch.float32),  # MobileNetV1Enhance + rnn + CTC with mid_channels
    ("ch_ppocr_mobile_v2.0_rec", torch.float64),  # MobileNetV3 + rnn
    ("ch_ppocr_mobile_v1.1_rec", torch.float64),  # MobileNetV3 + rnn_v1 (PaddleOCR 1.x)
    ("ch_ppocr_server_v2.0_rec", torch.float32),  # ResNet34-vd + rnn
    ("PP-OCRv4_mobile_rec", torch.float32),  # PPLCNetV3 (LearnableRepLayer, 4 kxk branches) + svtr; kept for
    # the block tests below
]
WIDTHS = (320, 128)
_kept = {}


def _deploy_source(name, dtype):
    """The registry model in deploy form: its real weights when they load offline, else random ones."""
    from ppocr_torch import load_model, registry
    from ppocr_torch.charset import packaged_charset
    from ppocr_torch.download import weights_status
    from ppocr_torch.models import build_model, reparameterize_model

    if (name, dtype) in _kept:
        return _kept[name, dtype]
    entry = registry.get_entry(name)
    if weights_status(entry) in ("embedded", "local", "cached"):
        return load_model(name, download=False).to(dtype)
    train = randomize(build_model(entry.spec, form="train", charset=packaged_charset(entry.spec)), seed=3)
    model = reparameterize_model(train.to(dtype).eval())
    _kept.clear()  # the last one is kept (read-only) for the tests that follow
    _kept[name, dtype] = model
    return model


def _run(model, x):
    with torch.no_grad():
        return model(x, return_stages=True)


def _rel(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


def _input(spec, width, dtype):
    return torch.randn(1, 3, spec.input_height, width, generator=torch.Generator().manual_seed(width)).to(dtype)


@pytest.mark.parametrize("name,dtype", FAMILIES, ids=[n for n, _ in FAMILIES])
def test_train_form_computes_the_deploy_function_and_folds_back(name, dtype):
    deploy = _deploy_source(name, dtype)
    train = deploy.train_form()
    assert train.form == "train" and deploy.form == "deploy" and not train.training
    assert train.spec == deploy.spec and train.charset == deploy.charset
    assert next(train.parameters()).dtype == dtype
    assert any(isinstance(m, _NORMS) for m in train.modules())
    assert not any(isinstance(m, _NORMS) for m in deploy.modules())
    back = train.deploy()
    assert back.form == "deploy" and train.form == "train"  # deploy() folds a copy
    assert not any(isinstance(m, _NORMS) for m in back.modules())

    ref, got = deploy.state_dict(), back.state_dict()
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in ref.items()}
    # the same kernels come back: exactly, except RepDWConv's centre taps (the identity branch's 1 taken out
    # of the kxk branch and put back: one float32 rounding each)
    changed = sorted(k for k in ref if not torch.equal(ref[k], got[k]))
    assert all(k.endswith("rep_dw.reparam_conv.weight") for k in changed), changed[:5]
    assert all((ref[k] - got[k]).abs().max() <= 1e-6 for k in changed)

    # float64 (exact algebra): tight; float32: a few roundings of large random activations
    rel_bound = 1e-9 if dtype == torch.float64 else 1e-4
    for width in WIDTHS:
        x = _input(deploy.spec, width, dtype)
        d, t = _run(deploy, x), _run(train, x)
        # the folded copy has the deploy weights (above): its outputs are checked at one width
        pairs = [t, _run(back, x)] if width == WIDTHS[0] else [t]
        assert d["head"].shape[0] == 1 and d["head"].shape[2] == deploy.spec.num_classes
        for other in pairs:
            assert (other["head"] - d["head"]).abs().max().item() <= 1e-5
            for stage in ("backbone", "neck"):
                assert _rel(d[stage], other[stage]) <= rel_bound, (width, stage)


def test_learnable_rep_layer_inverse_puts_the_merged_kernel_in_the_main_branch():
    """PPLCNetV3's LearnableRepLayer: merged kernel in conv_kxk.0 with an identity BatchNorm; further kxk
    branches, the 1x1 branch and the identity BatchNorm have BatchNorm weight 0 (they add exactly nothing, in
    train mode too) and trainable, non-zero convolutions."""
    deploy = _deploy_source("PP-OCRv4_mobile_rec", torch.float32)
    train = deploy.train_form()
    layer, deployed = train.backbone.blocks3[1].dw_conv, deploy.backbone.blocks3[1].dw_conv
    assert len(layer.conv_kxk) == 4 and layer.conv_1x1 is not None and layer.identity is not None
    assert torch.equal(layer.conv_kxk[0].conv.weight, deployed.reparam_conv.weight)
    assert torch.equal(layer.conv_kxk[0].bn.bias, deployed.reparam_conv.bias)
    for branch in [*layer.conv_kxk[1:], layer.conv_1x1]:
        assert torch.count_nonzero(branch.bn.weight) == 0 and torch.count_nonzero(branch.conv.weight) > 0
    assert torch.count_nonzero(layer.identity.weight) == 0
    x = torch.randn(2, layer.in_channels, 6, 10)
    layer.train()
    with torch.no_grad():
        for branch in [*layer.conv_kxk[1:], layer.conv_1x1]:
            assert torch.count_nonzero(branch(x)) == 0
        assert torch.count_nonzero(layer.identity(x)) == 0


def test_train_form_of_a_training_form_model_is_a_copy_and_errors_are_typed(monkeypatch):
    from ppocr_torch.errors import SpecError
    from ppocr_torch.models import build_model
    from ppocr_torch.models.backbones.lcnet_v3 import LearnableRepLayer
    from ppocr_torch.models.deploy import train_form_model

    train = build_model(spec_of("ch_ppocr_mobile_v2.0_rec"), form="train")
    copy = train.train_form()
    assert copy is not train and copy.form == "train"
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), train.state_dict().values()))
    with pytest.raises(SpecError, match="deploy-form model"):
        train_form_model(train)

    # a block whose deploy form differs and that has no inverse is named
    deploy = _deploy_source("PP-OCRv4_mobile_rec", torch.float32)
    monkeypatch.delattr(LearnableRepLayer, "from_deploy")
    with pytest.raises(SpecError, match=r"block 'backbone\.blocks2\.0\.dw_conv' \(LearnableRepLayer\) has no "
                                        r"deploy-form inverse"):
        deploy.train_form()


# ---------------------------------------------------------------------------------------------------------
# the acceptance test: the real PP-OCRv6_small_rec, trained for a few steps


def _line_batch(spec, charset, n=2, skip=0):
    import cv2

    from ppocr_torch.preprocess import resize_norm

    index = {c: i for i, c in enumerate(charset)}
    rows = [(p, t) for p, t in read_labels() if t and all(c in index for c in t)][skip:skip + n]
    x = np.stack([resize_norm(cv2.imread(str(p)), spec.input_height, 320 / spec.input_height) for p, _ in rows])
    targets = [torch.tensor([index[c] for c in t]) for _, t in rows]
    return torch.from_numpy(x), torch.cat(targets), torch.tensor([len(t) for t in targets])


def _max_prob_diff(a, b, x):
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def _ctc_loss(log_probs_btc, targets, target_lengths):
    log_probs = log_probs_btc.transpose(0, 1)
    return torch.nn.functional.ctc_loss(log_probs, targets, torch.full((log_probs.shape[1],), log_probs.shape[0]),
                                        target_lengths, blank=0, zero_infinity=True).item()


def _assert_folds_to_the_same_function(train, x):
    """``train`` (eval mode) and ``train.deploy()``: the fold is exact algebra (float64 copies agree to 1e-9),
    and the float32 models agree to 1e-5. Where a trained model is so sensitive that float32 rounding alone
    moves its output by more (seen once: 1.6e-4 on the random input after one calibrated AdamW step, where
    merely rounding the folded weights to float32 moved it by 8e-6), the deploy form must be at least as close
    to the exact (float64) function as the training form is."""
    import copy

    exact = copy.deepcopy(train).double()
    with torch.no_grad():
        truth = exact(x.double())
        assert (exact.deploy()(x.double()) - truth).abs().max().item() <= 1e-9
        ours, folded = train(x).double(), train.deploy()(x).double()
    diff = (ours - folded).abs().max().item()
    if diff > 1e-5:
        assert (folded - truth).abs().max() <= (ours - truth).abs().max(), diff
    return diff


@pytest.mark.parametrize("calibrated", [False, True], ids=["identity-batchnorms", "calibrated"])
def test_train_form_trains_and_still_agrees_with_its_deploy_form(calibrated):
    """The issue's acceptance test: the training form of the real PP-OCRv6_small_rec in eval mode and its deploy
    form agree to 1e-5 before and after a few training steps (AdamW, CTC loss on train-mode logits, two rendered
    lines). Without calibration the steps wreck the model (its identity BatchNorms normalise with batch
    statistics): the CTC loss on four held-out lines goes from 0.001 to 16; calibrated, it stays below 0.01."""
    from ppocr_torch import load_model

    deploy = load_model("PP-OCRv6_small_rec", download=False)
    x, targets, target_lengths = _line_batch(deploy.spec, deploy.charset)
    held, held_targets, held_lengths = _line_batch(deploy.spec, deploy.charset, n=4, skip=10)
    calibration = _line_batch(deploy.spec, deploy.charset, n=8, skip=2)[0].split(4) if calibrated else None
    train = deploy.train_form(calibration=calibration)
    probe = torch.cat([x[:1], _input(train.spec, 320, torch.float32)])
    assert _max_prob_diff(train, deploy, probe) <= 1e-5
    assert _max_prob_diff(train.deploy(), deploy, probe) <= 1e-5

    # BatchNorm layers are present under PaddleOCR's names, and trainable
    modules = dict(train.named_modules())
    for name in ("backbone.conv1.stem1.bn", "backbone.blocks2.0.token_mixer.rep_dw.bn",
                 "backbone.blocks2.0.token_mixer.rep_dw.conv.bn", "backbone.blocks4.0.token_mixer.dw_conv.bn",
                 "backbone.blocks5.2.channel_mixer.compress.bn", "head.ctc_encoder.encoder.conv_reduce.norm",
                 "head.ctc_encoder.encoder.local_conv.1"):
        assert isinstance(modules[name], torch.nn.BatchNorm2d), name
    norms = {n: m for n, m in train.named_modules() if isinstance(m, _NORMS)}
    assert len(norms) > 50
    assert all(m.weight.requires_grad and m.bias.requires_grad for m in norms.values())
    assert all(p.requires_grad for p in train.parameters())
    stats = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in norms.items()}

    torch.manual_seed(0)
    opt = torch.optim.AdamW(train.parameters(), lr=1e-4)
    train.train()
    steps, losses = 3, []
    for _ in range(steps):
        log_probs = train(x).log_softmax(2).transpose(0, 1)  # train mode: logits; BatchNorms on batch statistics
        loss = torch.nn.functional.ctc_loss(log_probs, targets, torch.full((x.shape[0],), log_probs.shape[0]),
                                            target_lengths, blank=0, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        assert all(m.weight.grad is not None for m in norms.values())
        opt.step()
        losses.append(loss.item())
    train.eval()
    assert all(np.isfinite(losses))
    moved = [n for n, m in norms.items()
             if not torch.equal(m.running_mean, stats[n][0]) and not torch.equal(m.running_var, stats[n][1])]
    assert len(moved) == len(norms)
    assert all(int(m.num_batches_tracked) == steps for m in norms.values())

    assert _max_prob_diff(train, deploy, probe) > 1e-4  # the steps changed the function ...
    assert _assert_folds_to_the_same_function(train, probe) <= 1e-5  # ... and the deploy form follows it
    folded = train.deploy()
    assert {k: v.shape for k, v in folded.state_dict().items()} == {k: v.shape for k, v in deploy.state_dict().items()}
    with torch.no_grad():
        held_loss = _ctc_loss(folded(held).clamp_min(1e-30).log(), held_targets, held_lengths)
    assert (held_loss < 0.5) if calibrated else (held_loss > 5.0), held_loss


def test_calibrated_batchnorms_keep_the_function_and_make_train_mode_start_close_to_it():
    """``train_form(calibration=...)``: BatchNorm statistics from lines like the training data, weight and bias
    adjusted; the eval-mode function stays the deploy model's, and train mode (batch statistics) computes
    nearly the same, where the uncalibrated identity BatchNorms compute something far from it."""
    from ppocr_torch import load_model

    deploy = load_model("PP-OCRv6_small_rec", download=False)
    x, targets, target_lengths = _line_batch(deploy.spec, deploy.charset, n=2)
    lines, _, _ = _line_batch(deploy.spec, deploy.charset, n=8, skip=2)
    plain, calibrated = deploy.train_form(), deploy.train_form(calibration=lines.split(4))
    norms = [m for m in calibrated.modules() if isinstance(m, _NORMS)]
    assert all(torch.count_nonzero(m.running_mean) > 0 for m in norms)
    probe = torch.cat([x[:1], _input(deploy.spec, 320, torch.float32)])
    assert _max_prob_diff(calibrated, deploy, probe) <= 1e-5
    assert _max_prob_diff(calibrated.deploy(), deploy, probe) <= 1e-5
    with torch.no_grad():
        eval_loss = _ctc_loss(deploy(x).clamp_min(1e-30).log(), targets, target_lengths)
        losses = {}
        for name, model in (("plain", plain), ("calibrated", calibrated)):
            model.train()  # train mode: BatchNorms on batch statistics (their running statistics move: no matter)
            losses[name] = _ctc_loss(model(x).log_softmax(2), targets, target_lengths)
    # measured: eval 0.0005; train mode calibrated 0.39, uncalibrated 11.6
    assert eval_loss < 0.1 and losses["calibrated"] < 1.0 and losses["plain"] > 5.0, (eval_loss, losses)


def test_a_paddleocr_training_checkpoint_converts_to_the_training_form(tmp_path):
    """``convert_checkpoint(..., form="train")`` (the start recommended over ``train_form()`` when PaddleOCR
    publishes a ``*_pretrained.pdparams``) keeps the checkpoint's own BatchNorm statistics and branches."""
    import pickle

    from conversion.errors import ConversionError
    from conversion.training import convert_checkpoint
    from paddle_ckpt import paddle_state
    from ppocr_torch import load_model

    train = randomize(load_model("PP-OCRv6_small_rec", download=False).train_form(), seed=5)  # non-identity BNs
    path = tmp_path / "PP-OCRv6_small_rec_pretrained.pdparams"
    path.write_bytes(pickle.dumps(paddle_state(train, lstm_aliases=False), protocol=2))
    config = {  # the parts of configs/rec/PP-OCRv6/PP-OCRv6_small_rec.yml that conversion reads
        "Global": {"model_name": "PP-OCRv6_small_rec", "character_dict_path": "ppocr/utils/dict/ppocrv6_dict.txt",
                   "use_space_char": True, "d2s_train_image_shape": [3, 48, 320]},
        "Architecture": {"model_type": "rec", "algorithm": "SVTR_LCNet", "Transform": None,
                         "Backbone": {"name": "PPLCNetV4", "use_rep": True, "stem_type": "branch"},
                         "Head": {"name": "MultiHead", "head_list": [
                             {"CTCHead": {"Neck": {"name": "lightsvtr", "dims": 120, "depth": 2, "mlp_ratio": 2.0,
                                                   "local_kernel": 7}, "Head": {"fc_decay": 1e-05}}}]}},
    }
    converted, _ = convert_checkpoint(path, config, form="train")
    assert converted.form == "train" and converted.spec.num_classes == train.spec.num_classes
    ref = train.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in converted.state_dict().items() if "num_batches" not in k)
    deployed, _ = convert_checkpoint(path, config)
    x = _input(train.spec, 320, torch.float32)
    assert deployed.form == "deploy" and _max_prob_diff(deployed, train.deploy(), x) <= 1e-7
    with pytest.raises(ConversionError, match="form must be"):
        convert_checkpoint(path, config, form="inference")
