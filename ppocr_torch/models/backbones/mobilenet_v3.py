"""MobileNetV3, recognition variant (PaddleOCR ``ppocr/modeling/backbones/rec_mobilenet_v3.py``, blocks from
``det_mobilenet_v3.py``): the v2.0 mobile recognizers (small x0.5) and the v2.0 direction classifier (small x0.35).

Layer names follow PaddleOCR's training checkpoints: ``conv1.conv``/``conv1.bn``, ``blocks.N.expand_conv``,
``blocks.N.bottleneck_conv``, ``blocks.N.mid_se.conv1``/``conv2``, ``blocks.N.linear_conv``, ``conv2``.
Deploy form: every BatchNorm folded into its convolution (``ConvBNAct.fuse``), as in the official exports.

Two details of PaddleOCR's code that decide the function computed, kept on purpose:

* the SE gate is ``hardsigmoid(x, slope=0.2, offset=0.5)`` (not Paddle's/PyTorch's default slope 1/6); the
  official ``ch_ppocr_mobile_v2.0_cls`` export confirms it (ONNX ``HardSigmoid`` alpha 0.2, and numerically:
  tests/test_family_v2_0.py);
* a block adds its input only when ``stride == 1`` compares equal in Python, so a tuple stride ``(1, 1)``
  (the first "small" block with ``small_stride[0] == 1``) has no shortcut even when channels agree.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct, HardSigmoid, SqueezeExcite
from ..layers import make_divisible as _make_divisible
from ...errors import SpecError

# rows: (kernel, expand, out, use_se, act, stride) before scaling -- PaddleOCR's cfg tables, row for row;
# "S0".."S3" are replaced by the model's large_stride/small_stride entries
_LARGE = [
    (3, 16, 16, False, "relu", "S0"),
    (3, 64, 24, False, "relu", ("S1", 1)),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", ("S2", 1)),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 1),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", ("S3", 1)),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
]
_SMALL = [
    (3, 16, 16, True, "relu", ("S0", 1)),
    (3, 72, 24, False, "relu", ("S1", 1)),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", ("S2", 1)),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", ("S3", 1)),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
]
CONFIGS = {"large": (_LARGE, 960), "small": (_SMALL, 576)}
SUPPORTED_SCALES = (0.35, 0.5, 0.75, 1.0, 1.25)
SE_SLOPE = 0.2  # PaddleOCR SEModule: F.hardsigmoid(x, slope=0.2, offset=0.5)


def make_divisible(v, divisor=8, min_value=None):
    """MobileNetV3's channel rounding: to multiples of 8."""
    return _make_divisible(v, divisor, min_value)


def _resolve_stride(s, strides):
    if isinstance(s, str):
        return strides[int(s[1])]
    if isinstance(s, tuple):
        return tuple(_resolve_stride(x, strides) for x in s)
    return s


def _conv_bn(in_c, out_c, k, stride, padding, groups=1, act=None):
    return ConvBNAct(in_c, out_c, k, stride, padding, groups=groups, act=act,
                     conv_name="conv", bn_name="bn", act_name="act")


class ResidualUnit(nn.Module):
    """1x1 expand -> kxk depthwise (stride) -> [SE] -> 1x1 linear, plus the input when ``stride == 1``."""

    def __init__(self, in_channels, mid_channels, out_channels, kernel_size, stride, use_se, act=None,
                 se_slope=SE_SLOPE):
        super().__init__()
        self.if_shortcut = stride == 1 and in_channels == out_channels  # a tuple (1, 1) is not == 1: as Paddle
        self.if_se = bool(use_se)
        self.expand_conv = _conv_bn(in_channels, mid_channels, 1, 1, 0, act=act)
        self.bottleneck_conv = _conv_bn(mid_channels, mid_channels, kernel_size, stride, (kernel_size - 1) // 2,
                                        groups=mid_channels, act=act)
        if self.if_se:
            self.mid_se = SqueezeExcite(mid_channels, 4, gate=HardSigmoid(se_slope, 0.5))
        self.linear_conv = _conv_bn(mid_channels, out_channels, 1, 1, 0, act=None)

    def forward(self, inputs):
        x = self.bottleneck_conv(self.expand_conv(inputs))
        if self.if_se:
            x = self.mid_se(x)
        x = self.linear_conv(x)
        return inputs + x if self.if_shortcut else x


class MobileNetV3(nn.Module):
    """``conv1`` (3x3 s2, hard-swish) -> ``blocks`` -> ``conv2`` (1x1, hard-swish) -> ``pool`` (2x2 max, s2).

    Height 32 -> 1 for ``small_stride=[1, 2, 2, 2]`` (the v2.0 recognizers; width / 4 time steps) and
    48 -> 1 for the classifier's default ``[2, 2, 2, 2]`` at 48x192.
    """

    def __init__(self, in_channels=3, model_name="small", scale=0.5, large_stride=None, small_stride=None,
                 disable_se=False, se_slope=SE_SLOPE, **_training_only):
        super().__init__()
        small_stride = [2, 2, 2, 2] if small_stride is None else list(small_stride)
        large_stride = [1, 2, 2, 2] if large_stride is None else list(large_stride)
        if len(small_stride) != 4 or len(large_stride) != 4:
            raise SpecError("large_stride and small_stride must have 4 entries")
        if model_name not in CONFIGS:
            raise SpecError(f"model_name must be one of {sorted(CONFIGS)}, got {model_name!r}")
        if scale not in SUPPORTED_SCALES:
            raise SpecError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
        cfg, cls_ch_squeeze = CONFIGS[model_name]
        strides = large_stride if model_name == "large" else small_stride

        inplanes = make_divisible(16 * scale)
        self.conv1 = _conv_bn(in_channels, inplanes, 3, 2, 1, act="hardswish")
        blocks = []
        for k, exp, c, se, act, s in cfg:
            out = make_divisible(scale * c)
            blocks.append(ResidualUnit(inplanes, make_divisible(scale * exp), out, k, _resolve_stride(s, strides),
                                       se and not disable_se, act, se_slope))
            inplanes = out
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = make_divisible(scale * cls_ch_squeeze)
        self.conv2 = _conv_bn(inplanes, self.out_channels, 1, 1, 0, act="hardswish")
        self.pool = nn.MaxPool2d(2, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv2(self.blocks(self.conv1(x))))

    def reparameterize(self) -> nn.Module:
        for m in self.modules():
            if isinstance(m, ConvBNAct):
                m.fuse()
        return self
