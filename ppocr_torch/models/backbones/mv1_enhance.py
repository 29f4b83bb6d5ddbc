"""MobileNetV1Enhance (PaddleOCR ``ppocr/modeling/backbones/rec_mv1_enhance.py``): PP-OCRv2 and PP-OCRv3 rec.

PP-OCRv2: stride 1 last block + 2x2 max-pool (output H/32, W/4); PP-OCRv3: stride (1, 2) last depthwise conv
+ 2x2 average pool (output H/32 = 1 for 48-pixel lines, W/8).

Layer names follow PaddleOCR (``conv1._conv``, ``block_list.N._depthwise_conv._batch_norm`` ...). PaddleOCR
puts the hard-swish inside its BatchNorm layer; here it is a separate ``act`` child with no parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct, SqueezeExcite
from ...errors import SpecError


def _conv_bn(in_c, out_c, k, stride, padding, groups=1):
    return ConvBNAct(in_c, out_c, k, stride, padding, groups=groups, act="hardswish",
                     conv_name="_conv", bn_name="_batch_norm", act_name="_act")


class DepthwiseSeparable(nn.Module):
    def __init__(self, num_channels, num_filters1, num_filters2, num_groups, stride, scale, dw_size=3,
                 padding=1, use_se=False):
        super().__init__()
        c1, c2 = int(num_filters1 * scale), int(num_filters2 * scale)
        self._depthwise_conv = _conv_bn(num_channels, c1, dw_size, stride, padding, groups=int(num_groups * scale))
        self._se = SqueezeExcite(c1, 4) if use_se else None
        self._pointwise_conv = _conv_bn(c1, c2, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._depthwise_conv(x)
        if self._se is not None:
            x = self._se(x)
        return self._pointwise_conv(x)


class MobileNetV1Enhance(nn.Module):
    """PaddleOCR's options, with its defaults: ``last_conv_stride`` (stride of the last depthwise conv, 1 in
    PP-OCRv2, ``[1, 2]`` in PP-OCRv3), ``last_pool_type`` ("max": always a 2x2 / stride 2 max-pool, whatever
    ``last_pool_kernel_size`` says; "avg": an average pool with kernel = stride = ``last_pool_kernel_size``).

    PaddleOCR's current default ``last_pool_kernel_size`` is ``[3, 2]``; the PP-OCRv3 releases were exported
    by the older code whose average pool was 2x2, so their specs state ``[2, 2]`` (the official exports have
    a 2x2 AveragePool).
    """

    def __init__(self, in_channels=3, scale=0.5, last_conv_stride=1, last_pool_type="max",
                 last_pool_kernel_size=(3, 2), **_training_only):
        super().__init__()
        s = scale
        if isinstance(last_conv_stride, (list, tuple)):
            last_conv_stride = tuple(int(v) for v in last_conv_stride)
        self.conv1 = _conv_bn(in_channels, int(32 * s), 3, 2, 1)
        rows = [  # (in, f1, f2, groups, stride, dw_size, padding, use_se)
            (32, 32, 64, 32, 1, 3, 1, False),
            (64, 64, 128, 64, 1, 3, 1, False),
            (128, 128, 128, 128, 1, 3, 1, False),
            (128, 128, 256, 128, (2, 1), 3, 1, False),
            (256, 256, 256, 256, 1, 3, 1, False),
            (256, 256, 512, 256, (2, 1), 3, 1, False),
            *[(512, 512, 512, 512, 1, 5, 2, False)] * 5,
            (512, 512, 1024, 512, (2, 1), 5, 2, True),
            (1024, 1024, 1024, 1024, last_conv_stride, 5, 2, True),
        ]
        self.block_list = nn.Sequential(*[
            DepthwiseSeparable(int(i * s), f1, f2, g, st, s, dw, pad, se) for i, f1, f2, g, st, dw, pad, se in rows
        ])
        if last_pool_type == "avg":
            k = tuple(int(v) for v in last_pool_kernel_size)
            self.pool = nn.AvgPool2d(k, k, 0)
        elif last_pool_type == "max":
            self.pool = nn.MaxPool2d(2, 2, 0)
        else:
            raise SpecError(f"last_pool_type must be 'max' or 'avg', got {last_pool_type!r}")
        self.out_channels = int(1024 * s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.block_list(self.conv1(x)))

    def reparameterize(self) -> nn.Module:
        for m in self.modules():
            if isinstance(m, ConvBNAct):
                m.fuse()
        return self
