"""Build PaddleOCR-style *training* checkpoints from official (deploy-form) weights, for conversion tests.

A training-form torch module is set to compute exactly the deploy-form function: BatchNorms become
identities carrying the folded bias (mean 0, var 1 - eps, weight 1), RepDWConv's extra branches are
zeroed/compensated; then the state dict is written with PaddleOCR's naming (``_mean``/``_variance``,
Linear weights [in, out], per-cell LSTM aliases) by ``paddle.save``.
"""

import numpy as np
import torch
from torch import nn

from ppocr_torch.models import build_model
from ppocr_torch.models.backbones.lcnet_v4 import RepDWConv
from ppocr_torch.models.layers import ConvBNAct, Conv2dBN


def _identity_bn(bn, bias):
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


@torch.no_grad()
def unfuse(deploy):
    """A training-form model computing the same function as the deploy-form ``deploy``."""
    train = build_model(deploy.spec, form="train", charset=deploy.charset)
    dmods = dict(deploy.named_modules())
    handled = set()
    for name, m in train.named_modules():
        if any(name.startswith(h + ".") for h in handled):
            continue
        if isinstance(m, ConvBNAct):
            d = getattr(dmods[name], m.conv_name)
            getattr(m, m.conv_name).weight.copy_(d.weight)
            _identity_bn(getattr(m, m.bn_name), d.bias)
            handled.add(name)
        elif isinstance(m, Conv2dBN):
            d = dmods[name]
            m.conv.weight.copy_(d.weight)
            _identity_bn(m.bn, d.bias)
            handled.add(name)
        elif isinstance(m, RepDWConv):
            d = dmods[name].reparam_conv
            k = d.weight.clone()
            c = k.shape[-1] // 2
            k[:, :, c, c] -= 1.0  # the identity branch adds x back
            m.conv.conv.weight.copy_(k)
            _identity_bn(m.conv.bn, d.bias)
            m.conv1.weight.zero_()
            _identity_bn(m.bn, torch.zeros_like(d.bias))
            handled.add(name)
        elif name.endswith("local_conv") and isinstance(m, nn.Sequential):
            d = dmods[name][0]
            m[0].weight.copy_(d.weight)
            _identity_bn(m[1], d.bias)
            handled.add(name)
    dstate = deploy.state_dict()
    for k, v in train.state_dict().items():
        if any(k.startswith(h + ".") for h in handled) or k.endswith("num_batches_tracked"):
            continue
        v.copy_(dstate[k])
    return train.eval()


def paddle_state(train, *, prefix="", lstm_aliases=True, extra=None):
    """PaddleOCR-named numpy state dict of a training-form model."""
    mods = dict(train.named_modules())
    out = {}
    for k, v in train.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        arr = v.detach().numpy().copy()
        if isinstance(mods.get(k.rsplit(".", 1)[0]), nn.Linear) and k.endswith(".weight"):
            arr = np.ascontiguousarray(arr.T)
        pk = k.replace(".running_mean", "._mean").replace(".running_var", "._variance")
        out[prefix + pk] = arr
        if lstm_aliases and ".lstm.weight_" in k or lstm_aliases and ".lstm.bias_" in k:
            base, param = k.split(".lstm.")
            p, _, layer = param.rpartition("_l")
            rev = layer.endswith("_reverse")
            layer = layer.replace("_reverse", "")
            out[f"{prefix}{base}.lstm.{layer}.cell_{'bw' if rev else 'fw'}.{p}"] = arr.copy()
    out.update(extra or {})
    return out


def save_pdparams(state, path):
    import paddle

    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path))
    return path
