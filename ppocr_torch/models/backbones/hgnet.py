"""PPHGNet_small, recognition variant (PaddleOCR ``ppocr/modeling/backbones/rec_hgnet.py``).

Backbone of PP-OCRv4_server_rec and PP-OCRv4_server_rec_doc (``Backbone: {name: PPHGNet_small}``).

Layout (attribute names are PaddleOCR's, so training checkpoints map by name)::

    stem                    3 x ConvBNAct 3x3 (stride 2, 1, 1): 3 -> 64 -> 64 -> 128
    stages[i].downsample    depthwise ConvBNAct 3x3 with the stage stride, no activation
    stages[i].blocks[j]     HG_Block: layers[0..5] (ConvBNAct 3x3) -> concat(input, all layer outputs)
                            -> aggregation_conv (ConvBNAct 1x1) -> att (ESE) [+ input if j > 0]
    eval: avg_pool2d([3, 2]); training: adaptive_avg_pool2d([1, 40])

Strides for a 3 x 48 x W input: stem /2 -> stage1 (2, 1) -> stage2 (1, 2) -> stage3 (2, 1) -> stage4 (2, 1)
gives [B, 1024, 3, W / 4]; the final [3, 2] pooling gives [B, 1024, 1, W / 8] (T = 40 for W = 320).

Deploy form: every ConvBNAct has its BatchNorm folded (``models/deploy.py``); nothing else is
re-parameterized (the ESE convolution already has a bias and no norm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct
from ...errors import SpecError

# in, mid, out, blocks, downsample, stride -- PaddleOCR PPHGNet_small ``stage_config_rec``, row for row
STAGE_CONFIG_REC = {
    "stage1": (128, 128, 256, 1, True, (2, 1)),
    "stage2": (256, 160, 512, 1, True, (1, 2)),
    "stage3": (512, 192, 768, 2, True, (2, 1)),
    "stage4": (768, 224, 1024, 1, True, (2, 1)),
}
STEM_CHANNELS = (64, 64, 128)
LAYER_NUM = 6


def _cba(in_c, out_c, k, stride=1, groups=1, use_act=True):
    # rec_hgnet ConvBNAct: conv (padding (k - 1) // 2, no bias) -> BatchNorm2D -> ReLU (``act`` only when use_act)
    return ConvBNAct(in_c, out_c, k, tuple(stride) if isinstance(stride, (list, tuple)) else stride,
                     padding=(k - 1) // 2, groups=groups, act="relu" if use_act else None)


class ESEModule(nn.Module):
    """Effective squeeze-excitation: x * sigmoid(conv1x1(mean_hw(x))), one full 1x1 conv with bias."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, 1, 0)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigmoid(self.conv(x.mean(dim=(2, 3), keepdim=True)))
        return x * s


class HG_Block(nn.Module):  # noqa: N801 -- PaddleOCR's class name
    def __init__(self, in_channels, mid_channels, out_channels, layer_num, identity=False):
        super().__init__()
        self.identity = identity
        self.layers = nn.ModuleList(
            [_cba(in_channels if i == 0 else mid_channels, mid_channels, 3) for i in range(layer_num)]
        )
        self.aggregation_conv = _cba(in_channels + layer_num * mid_channels, out_channels, 1)
        self.att = ESEModule(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.att(self.aggregation_conv(dense_concat(self.layers, x)))
        return h + x if self.identity else h


def dense_concat(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``cat([x, l1(x), l2(l1(x)), ...], dim=1)``: the aggregated input of the HGNet blocks."""
    outputs = [x]
    for layer in layers:
        outputs.append(layer(outputs[-1]))
    return torch.cat(outputs, dim=1)


class HG_Stage(nn.Module):  # noqa: N801
    def __init__(self, in_channels, mid_channels, out_channels, block_num, layer_num, downsample=True,
                 stride=(2, 1)):
        super().__init__()
        self.has_downsample = bool(downsample)
        if self.has_downsample:
            self.downsample = _cba(in_channels, in_channels, 3, stride, groups=in_channels, use_act=False)
        self.blocks = nn.Sequential(*[
            HG_Block(in_channels if i == 0 else out_channels, mid_channels, out_channels, layer_num,
                     identity=i > 0)
            for i in range(block_num)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_downsample:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNet_small(nn.Module):  # noqa: N801
    """Recognition PPHGNet_small: [B, 3, 48, W] -> [B, 1024, 1, W / 8] in eval mode."""

    def __init__(self, in_channels=3, det=False):
        super().__init__()
        if det:
            raise SpecError("only the recognition variant of PPHGNet_small (det=False) is built here")
        chans = (in_channels, *STEM_CHANNELS)
        self.stem = nn.Sequential(*[_cba(chans[i], chans[i + 1], 3, 2 if i == 0 else 1) for i in range(3)])
        self.stages = nn.ModuleList([
            HG_Stage(i, m, o, n, LAYER_NUM, ds, s) for i, m, o, n, ds, s in STAGE_CONFIG_REC.values()
        ])
        self.out_channels = STAGE_CONFIG_REC["stage4"][2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        if self.training:
            return F.adaptive_avg_pool2d(x, (1, 40))
        return F.avg_pool2d(x, (3, 2))
