"""PPHGNetV2_B4 with ``text_rec=True`` (PaddleOCR ``ppocr/modeling/backbones/rec_pphgnetv2.py``).

Backbone of PP-OCRv5_server_rec (``Backbone: {name: PPHGNetV2_B4, text_rec: True}``).

Layout (attribute names are PaddleOCR's, so training checkpoints map by name)::

    stem                    StemBlock: stem1 (3x3 /2) -> [SAME 2x2 max-pool | stem2a -> stem2b (2x2 SAME)]
                            -> concat -> stem3 (3x3, stride 1 for text_rec) -> stem4 (1x1)
    stages[i].downsample    depthwise ConvBNAct 3x3 with the stage stride, no activation
    stages[i].blocks[j]     HGV2_Block: layers[0..5] (ConvBNAct kxk, or LightConvBNAct = conv1 1x1 no act
                            -> conv2 kxk depthwise) -> concat(input, all layer outputs)
                            -> aggregation_squeeze_conv (1x1, out / 2) -> aggregation_excitation_conv (1x1)
                            [+ input if j > 0]
    eval: avg_pool2d([3, 2]); training: adaptive_avg_pool2d([1, 40])

Every ConvBNAct is conv (no bias) -> BatchNorm2D -> ReLU -> LearnableAffineBlock ``lab`` (scale * x + bias,
one scalar each; only when ``use_lab`` and the layer has an activation). PPHGNetV2_B4 has ``use_lab=False``;
the LAB path is kept for the other PP-HGNetV2 sizes and is tested for train == deploy.

PaddleOCR's PPHGNetV2 also builds a classifier tail (``last_conv`` 1x1 2048 -> 2048, ``fc`` 2048 -> 1000) that
the recognition forward never calls: those keys exist in training checkpoints (``UNUSED_CHECKPOINT_KEYS``)
but not in inference exports, and are not built here.

Strides for a 3 x 48 x W input: stem /2 -> stage1 (2, 1) -> stage2 (1, 2) -> stage3 (2, 1) -> stage4 (2, 1)
gives [B, 2048, 3, W / 4]; the final [3, 2] pooling gives [B, 2048, 1, W / 8] (T = 40 for W = 320).

Deploy form: every BatchNorm folded into its convolution (``models/deploy.py``); a LAB stays a scalar
affine after the ReLU (it cannot be folded across the non-linearity), as in the official exports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct as _ConvBNAct
from ..layers import LearnableAffineBlock
from .hgnet import dense_concat
from ...errors import SpecError

# in, mid, out, blocks, downsample, light_block, kernel, layer_num, stride -- PaddleOCR PPHGNetV2_B4
# ``stage_config_rec``, row for row
B4_STAGE_CONFIG_REC = {
    "stage1": (48, 48, 128, 1, True, False, 3, 6, (2, 1)),
    "stage2": (128, 96, 512, 1, True, False, 3, 6, (1, 2)),
    "stage3": (512, 192, 1024, 3, True, True, 5, 6, (2, 1)),
    "stage4": (1024, 384, 2048, 1, True, True, 5, 6, (2, 1)),
}
B4_STEM_CHANNELS = (3, 32, 48)

# PaddleOCR PPHGNetV2 sub-layers that the text_rec forward never runs (present in .pdparams only)
UNUSED_CHECKPOINT_KEYS = ("last_conv.weight", "fc.weight", "fc.bias")


class ConvBNAct(_ConvBNAct):
    """rec_pphgnetv2 ConvBNAct: conv -> bn -> (ReLU -> optional LAB). ``padding="SAME"`` is Paddle's SAME."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, groups=1, use_act=True,
                 use_lab=False):
        stride = tuple(stride) if isinstance(stride, (list, tuple)) else stride
        same = isinstance(padding, str)
        if same and padding.upper() != "SAME":
            raise SpecError(f"unsupported padding {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=None if same else (kernel_size - 1) // 2, groups=groups,
                         act="relu" if use_act else None, same_pad=same)
        if same and stride != 1:
            raise SpecError("SAME padding is written out for stride-1 convolutions only")
        self.use_lab = bool(use_act and use_lab)
        if self.use_lab:
            self.lab = LearnableAffineBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return self.lab(x) if self.use_lab else x


class LightConvBNAct(nn.Module):
    """1x1 ConvBNAct without activation, then a kxk depthwise ConvBNAct with activation."""

    def __init__(self, in_channels, out_channels, kernel_size, use_lab=False, **_unused):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False, use_lab=use_lab)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels, use_act=True,
                               use_lab=use_lab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class SameMaxPool2x2(nn.Module):
    """Paddle ``MaxPool2D(2, stride=1, ceil_mode=True, padding="SAME")``: the extra row/column goes to the
    bottom/right and never wins the max (padded with -inf)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)


class StemBlock(nn.Module):
    def __init__(self, in_channels, mid_channels, out_channels, use_lab=False, text_rec=False):
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, 2, use_lab=use_lab)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, 1, padding="SAME", use_lab=use_lab)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, 1, padding="SAME", use_lab=use_lab)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, 1 if text_rec else 2, use_lab=use_lab)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, 1, use_lab=use_lab)
        self.pool = SameMaxPool2x2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))  # PaddleOCR runs this branch before the pool
        x1 = self.pool(x)
        return self.stem4(self.stem3(torch.cat([x1, x2], dim=1)))


class HGV2_Block(nn.Module):  # noqa: N801 -- PaddleOCR's class name
    def __init__(self, in_channels, mid_channels, out_channels, kernel_size=3, layer_num=6, identity=False,
                 light_block=True, use_lab=False):
        super().__init__()
        self.identity = identity
        block = LightConvBNAct if light_block else ConvBNAct
        self.layers = nn.ModuleList([
            block(in_channels if i == 0 else mid_channels, mid_channels, kernel_size=kernel_size, use_lab=use_lab)
            for i in range(layer_num)
        ])
        total = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total, out_channels // 2, 1, 1, use_lab=use_lab)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1, 1, use_lab=use_lab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(dense_concat(self.layers, x)))
        return h + x if self.identity else h


class HGV2_Stage(nn.Module):  # noqa: N801
    def __init__(self, in_channels, mid_channels, out_channels, block_num, layer_num=6, is_downsample=True,
                 light_block=True, kernel_size=3, use_lab=False, stride=2):
        super().__init__()
        self.is_downsample = is_downsample
        if is_downsample:
            self.downsample = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, use_act=False,
                                        use_lab=use_lab)
        self.blocks = nn.Sequential(*[
            HGV2_Block(in_channels if i == 0 else out_channels, mid_channels, out_channels, kernel_size, layer_num,
                       identity=i > 0, light_block=light_block, use_lab=use_lab)
            for i in range(block_num)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_downsample:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(nn.Module):
    """PP-HGNetV2 for text recognition (``text_rec=True``, ``det=False``): [B, 3, 48, W] -> [B, C, 1, W / 8]."""

    def __init__(self, stage_config, stem_channels, use_lab=False, text_rec=True, det=False):
        super().__init__()
        if det or not text_rec:
            raise SpecError("only the text-recognition variant (text_rec=True, det=False) is built here")
        self.text_rec = text_rec
        self.stem = StemBlock(*stem_channels, use_lab=use_lab, text_rec=text_rec)
        self.stages = nn.ModuleList([
            HGV2_Stage(i, m, o, n, layer_num, ds, light, k, use_lab, stride)
            for i, m, o, n, ds, light, k, layer_num, stride in stage_config.values()
        ])
        self.out_channels = stage_config["stage4"][2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        if self.training:
            return F.adaptive_avg_pool2d(x, (1, 40))
        return F.avg_pool2d(x, (3, 2))


class PPHGNetV2_B4(PPHGNetV2):  # noqa: N801
    """PaddleOCR ``PPHGNetV2_B4(text_rec=True)``: stem [3, 32, 48], no LAB, 2048 output channels."""

    def __init__(self, text_rec=True, det=False, in_channels=3):
        super().__init__(B4_STAGE_CONFIG_REC, (in_channels, *B4_STEM_CHANNELS[1:]), use_lab=False,
                         text_rec=text_rec, det=det)
