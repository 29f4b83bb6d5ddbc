"""RSEFPN (PaddleOCR ``ppocr/modeling/necks/rsefpn.py``): the DB detectors' feature pyramid with residual
squeeze-and-excitation convolutions, fusing four backbone maps (strides 4..32) into one map at stride 4.

``ins_conv[i]`` projects backbone map ``i`` to ``out_channels``; the coarser sum is upsampled (nearest, x2)
and added top-down; ``inp_conv[i]`` reduces each level to ``out_channels // 4``; the levels are upsampled to
stride 4 and concatenated (coarsest first), giving ``out_channels`` channels.

PP-OCRv4/v5 mobile det use PaddleOCR's ``RSELayer`` with a 3x3 convolution in ``inp_conv``. The PP-OCRv6
small/tiny det exports replace it by a depthwise ``dw_kernel`` x ``dw_kernel`` convolution (with bias)
followed by the 1x1 reduction (``dw_kernel`` 7 for small, 5 for tiny, read from the official exports).

Convolutions that PaddleOCR builds without a bias carry a zero bias here, as the exports do (the readers
give every convolution a bias): the function is the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import HardSigmoid, SqueezeExcite

SE_SLOPE = 0.2  # PaddleOCR's det SEModule: hardsigmoid(slope=0.2, offset=0.5) (the exports: HardSigmoid alpha 0.2)


class RSELayer(nn.Module):
    """``in_conv`` (k x k; or ``dw_conv`` then a 1x1 ``in_conv``) -> ``x + se_block(x)`` (``shortcut``) or
    ``se_block(x)``."""

    def __init__(self, in_channels, out_channels, kernel_size, shortcut=True, dw_kernel=None):
        super().__init__()
        self.dw_conv = None
        if dw_kernel:
            self.dw_conv = nn.Conv2d(in_channels, in_channels, dw_kernel, 1, dw_kernel // 2, groups=in_channels)
            kernel_size = 1
        self.in_conv = nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2)
        self.se_block = SqueezeExcite(out_channels, 4, gate=HardSigmoid(SE_SLOPE, 0.5))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dw_conv is not None:
            x = self.dw_conv(x)
        x = self.in_conv(x)
        return x + self.se_block(x) if self.shortcut else self.se_block(x)


class RSEFPN(nn.Module):
    """``forward([c2, c3, c4, c5])`` -> [B, out_channels, H/4, W/4] (H and W multiples of 32)."""

    def __init__(self, in_channels, out_channels=96, shortcut=True, dw_kernel=None):
        super().__init__()
        self.out_channels = out_channels
        self.ins_conv = nn.ModuleList([RSELayer(c, out_channels, 1, shortcut) for c in in_channels])
        self.inp_conv = nn.ModuleList([RSELayer(out_channels, out_channels // 4, 3, shortcut, dw_kernel)
                                       for _ in in_channels])

    def forward(self, feats: list) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)
        out4 = in4 + F.interpolate(in5, scale_factor=2, mode="nearest")
        out3 = in3 + F.interpolate(out4, scale_factor=2, mode="nearest")
        out2 = in2 + F.interpolate(out3, scale_factor=2, mode="nearest")
        p5 = self.inp_conv[3](in5)
        p4 = self.inp_conv[2](out4)
        p3 = self.inp_conv[1](out3)
        p2 = self.inp_conv[0](out2)
        p5 = F.interpolate(p5, scale_factor=8, mode="nearest")
        p4 = F.interpolate(p4, scale_factor=4, mode="nearest")
        p3 = F.interpolate(p3, scale_factor=2, mode="nearest")
        return torch.cat([p5, p4, p3, p2], dim=1)
