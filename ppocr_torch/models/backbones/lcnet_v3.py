"""PPLCNetV3 (PaddleOCR ``ppocr/modeling/backbones/rec_lcnetv3.py``): PP-OCRv4 / PP-OCRv5 mobile rec (and det).

Training form: every ``LearnableRepLayer`` sums up to three kinds of branches (``conv_kxk`` convolutions with
BN, a ``conv_1x1`` with BN, an ``identity`` BN) before its learnable affine (``lab``) and activation (``act``).
Deploy form (``reparameterize()``, PaddleOCR's ``rep()``): the branches and their BatchNorms are folded into
one biased convolution ``reparam_conv``; the ``LearnableAffineBlock`` scalars stay, as in the official
inference exports (an ONNX ``Mul``/``Add`` pair with scalar constants). ``from_deploy()`` is the inverse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...bn_fold import fold_batchnorm_module
from ..layers import ConvBNAct, Conv2dBN, LearnableAffineBlock, SqueezeExcite
from ..layers import make_divisible as _make_divisible
from ..layers.conv_bn import identity_batchnorm, unfuse_conv_bn
from ..layers.paddle_float import BatchNorm2d
from ...errors import SpecError, SpecMismatchError

# rows: (kernel, in, out, stride, use_se), channels before scaling -- PaddleOCR's NET_CONFIG_det, row for row
NET_CONFIG_det = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, 2, False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
                (5, 256, 256, 1, False), (5, 256, 256, 1, False)],
    "blocks6": [(5, 256, 512, 2, True), (5, 512, 512, 1, True), (5, 512, 512, 1, False),
                (5, 512, 512, 1, False)],
}

# PaddleOCR's NET_CONFIG_rec: strides (2, 1) halve the height only, (1, 2) the width only
NET_CONFIG_rec = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 1, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, (2, 1), False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, (1, 2), False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
                (5, 256, 256, 1, False), (5, 256, 256, 1, False)],
    "blocks6": [(5, 256, 512, (2, 1), True), (5, 512, 512, 1, True), (5, 512, 512, (2, 1), False),
                (5, 512, 512, 1, False)],
}
STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")
DET_NECK_CHANNELS = (16, 24, 56, 480)  # PaddleOCR's mv_c: 1x1 projections of the four det outputs


def make_divisible(v, divisor=16, min_value=None):
    """PPLCNetV3's channel rounding: to multiples of 16."""
    return _make_divisible(v, divisor, min_value)


class Act(nn.Module):
    """Activation (``hswish`` or ``relu``) followed by its own ``lab``."""

    def __init__(self, act="hswish"):
        super().__init__()
        if act == "hswish":
            self.act = nn.Hardswish()
        elif act == "relu":
            self.act = nn.ReLU()
        else:
            raise SpecError(f"PPLCNetV3 Act supports 'hswish' and 'relu', got {act!r}")
        self.lab = LearnableAffineBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lab(self.act(x))


def ConvBNLayer(in_channels, out_channels, kernel_size, stride, groups=1):
    """PaddleOCR's LCNetV3 ``ConvBNLayer``: ``conv`` (no bias, padding (k-1)//2) + ``bn``, no activation."""
    return Conv2dBN(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups)


class LearnableRepLayer(nn.Module):
    """``identity`` BN (same shape, stride 1) + ``conv_1x1`` (k > 1) + ``conv_kxk`` branches, summed, then
    ``lab`` and, unless the stride is 2, ``act``. Deploy form: ``lab(act?)(reparam_conv(x))``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, num_conv_branches=1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.num_conv_branches = num_conv_branches
        self.padding = (kernel_size - 1) // 2
        self.use_act = stride != 2  # PaddleOCR skips the activation for an integer stride of 2 (det only)
        self.identity = BatchNorm2d(in_channels, 1e-5) if out_channels == in_channels and stride == 1 else None
        self.conv_kxk = nn.ModuleList([ConvBNLayer(in_channels, out_channels, kernel_size, stride, groups)
                                       for _ in range(num_conv_branches)])
        self.conv_1x1 = ConvBNLayer(in_channels, out_channels, 1, stride, groups) if kernel_size > 1 else None
        self.lab = LearnableAffineBlock()
        self.act = Act()
        self.reparam_conv = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            out = self.lab(self.reparam_conv(x))
        else:
            out = 0
            if self.identity is not None:
                out = out + self.identity(x)
            if self.conv_1x1 is not None:
                out = out + self.conv_1x1(x)
            for conv in self.conv_kxk:
                out = out + conv(x)
            out = self.lab(out)
        return self.act(out) if self.use_act else out

    @torch.no_grad()
    def _kernel_bias(self):
        k, per_group = self.kernel_size, self.in_channels // self.groups
        ref = self.conv_kxk[0].conv.weight if len(self.conv_kxk) else self.identity.weight
        kernel = torch.zeros(self.out_channels, per_group, k, k, dtype=torch.float64, device=ref.device)
        bias = torch.zeros(self.out_channels, dtype=torch.float64, device=ref.device)
        for conv in self.conv_kxk:
            w, b = fold_batchnorm_module(conv.conv.weight, None, conv.bn)
            kernel += w
            bias += b
        if self.conv_1x1 is not None:
            w, b = fold_batchnorm_module(self.conv_1x1.conv.weight, None, self.conv_1x1.bn)
            kernel += F.pad(w, [k // 2] * 4)
            bias += b
        if self.identity is not None:
            eye = torch.zeros_like(kernel)
            idx = torch.arange(self.in_channels, device=ref.device)
            eye[idx, idx % per_group, k // 2, k // 2] = 1.0
            w, b = fold_batchnorm_module(eye, None, self.identity)
            kernel += w
            bias += b
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> nn.Module:
        if self.reparam_conv is not None:
            return self
        kernel, bias = self._kernel_bias()
        ref = self.lab.scale
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         groups=self.groups, bias=True, device=ref.device, dtype=ref.dtype)
        conv.weight.copy_(kernel.to(ref.dtype))
        conv.bias.copy_(bias.to(ref.dtype))
        self.reparam_conv = conv
        del self.conv_kxk, self.conv_1x1, self.identity
        if not self.use_act:  # PaddleOCR builds it but never applies it (integer stride 2): not in the exports
            self.act = None
        return self

    @torch.no_grad()
    def from_deploy(self, deployed: "LearnableRepLayer") -> list:
        """Training form from the re-parameterised ``deployed``: the merged kernel and bias go into the first
        ``conv_kxk`` branch (identity BatchNorm); every other branch (further ``conv_kxk``, ``conv_1x1``, the
        ``identity`` BatchNorm) gets a BatchNorm of weight 0, so it adds exactly zero (in train mode too) and
        ``reparameterize()`` gives back the same kernel; their convolutions are freshly initialised
        (``reset_parameters``, under the caller's torch seed) so that they start learning as soon as their
        BatchNorm weight moves off 0. ``lab`` and ``act`` are the same tensors in both forms (copied by name).
        """
        if self.reparam_conv is not None or getattr(deployed, "reparam_conv", None) is None:
            raise SpecMismatchError("LearnableRepLayer.from_deploy needs a training-form layer and a deployed one")
        if not len(self.conv_kxk):
            raise SpecError("LearnableRepLayer without a conv_kxk branch has no branch to hold the merged kernel")
        main, *others = self.conv_kxk
        written = unfuse_conv_bn(main.conv, main.bn, deployed.reparam_conv.weight, deployed.reparam_conv.bias)
        for branch in others + ([self.conv_1x1] if self.conv_1x1 is not None else []):
            branch.conv.reset_parameters()
            written += [branch.conv.weight] + identity_batchnorm(branch.bn, gain=0.0)
        if self.identity is not None:
            written += identity_batchnorm(self.identity, gain=0.0)
        return written


class SELayer(SqueezeExcite):
    """PaddleOCR's LCNetV3 ``SELayer``: mean -> conv1 -> relu -> conv2 -> hardsigmoid -> multiply."""

    def __init__(self, channel, reduction=4):
        super().__init__(channel, reduction, gate="hardsigmoid")


class LCNetV3Block(nn.Module):
    """Depthwise ``dw_conv`` (LearnableRepLayer, k x k, carries the stride), optional ``se``, pointwise ``pw_conv``."""

    def __init__(self, in_channels, out_channels, stride, dw_size, use_se=False, conv_kxk_num=4):
        super().__init__()
        self.use_se = use_se
        self.dw_conv = LearnableRepLayer(in_channels, in_channels, dw_size, stride, groups=in_channels,
                                         num_conv_branches=conv_kxk_num)
        if use_se:
            self.se = SELayer(in_channels)
        self.pw_conv = LearnableRepLayer(in_channels, out_channels, 1, 1, num_conv_branches=conv_kxk_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(x)
        if self.use_se:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNetV3(nn.Module):
    """PPLCNetV3. Recognition (``det=False``): [B, 3, H, W] -> [B, make_divisible(512 * scale), H/16, W/8]
    after the eval pooling (kernel = stride = [3, 2]; training pools adaptively to [1, 40]).
    Detection (``det=True``): the four stage outputs, each projected by a 1x1 conv of ``layer_list``."""

    def __init__(self, scale=1.0, conv_kxk_num=4, lr_mult_list=None, lab_lr=0.1, det=False, **_training_only):
        super().__init__()
        self.scale, self.det = scale, det
        cfg = NET_CONFIG_det if det else NET_CONFIG_rec
        self.net_config = cfg
        self.conv1 = ConvBNAct(3, make_divisible(16 * scale), 3, 2, act=None, conv_name="conv", bn_name="bn")
        for stage in STAGES:
            self.add_module(stage, nn.Sequential(*[
                LCNetV3Block(make_divisible(i * scale), make_divisible(o * scale), s, k, se, conv_kxk_num)
                for k, i, o, s, se in cfg[stage]]))
        self.out_channels = make_divisible(512 * scale)
        if det:
            stage_out = [make_divisible(cfg[s][-1][2] * scale) for s in STAGES[1:]]
            self.layer_list = nn.ModuleList([nn.Conv2d(c, int(m * scale), 1, 1, 0)
                                             for c, m in zip(stage_out, DET_NECK_CHANNELS)])
            self.out_channels = [int(m * scale) for m in DET_NECK_CHANNELS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.blocks2(x)
        outs = []
        for stage in STAGES[1:]:
            x = getattr(self, stage)(x)
            outs.append(x)
        if self.det:
            return [proj(o) for proj, o in zip(self.layer_list, outs)]
        if self.training:
            return F.adaptive_avg_pool2d(x, (1, 40))
        return F.avg_pool2d(x, (3, 2))

    def reparameterize(self) -> nn.Module:
        self.conv1.fuse()
        for m in self.modules():
            if isinstance(m, LearnableRepLayer):
                m.reparameterize()
        return self
