"""ResNet-vd, recognition variant (PaddleOCR ``ppocr/modeling/backbones/rec_resnet_vd.py``, dygraph version):
``ch_ppocr_server_v2.0_rec`` uses ``layers=34``.

Stem: three 3x3 convs at stride 1 (``conv1_1``..``conv1_3``) then a 3x3/2 max-pool; stages downsample the
height only (stride (2, 1)); the shortcut of a downsampling block is the "vd" path (a ceil-mode average pool
of the stride, then a 1x1 conv at stride 1). Output: 2x2/2 max-pool. Names follow PaddleOCR's training
checkpoints: ``conv1_1._conv``/``._batch_norm``, ``bb_<stage>_<block>.conv0`` / ``conv1`` [/ ``conv2``] /
``short``. Deploy form: every BatchNorm folded into its convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct
from ...errors import SpecError

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3],
          200: [3, 12, 48, 3]}


class ConvBNLayer(ConvBNAct):
    """``_conv`` (no bias) -> ``_batch_norm`` (-> act); in "vd" mode an ``AvgPool2d(stride, ceil_mode=True)``
    runs first and the conv itself has stride 1 (Paddle's exclusive average: partial windows divide by the
    pixels they cover, as PyTorch does with ``padding=0``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, is_vd_mode=False, act=None):
        super().__init__(in_channels, out_channels, kernel_size, 1 if is_vd_mode else stride,
                         (kernel_size - 1) // 2, groups=groups, act=act,
                         conv_name="_conv", bn_name="_batch_norm", act_name="_act")
        self.is_vd_mode = is_vd_mode
        self._pool2d_avg = nn.AvgPool2d(stride, stride, 0, ceil_mode=True) if is_vd_mode else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_vd_mode:
            x = self._pool2d_avg(x)
        return super().forward(x)


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, shortcut=True, if_first=False):
        super().__init__()
        self.stride = stride
        self.conv0 = ConvBNLayer(in_channels, out_channels, 3, stride, act="relu")
        self.conv1 = ConvBNLayer(out_channels, out_channels, 3, act=None)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(in_channels, out_channels, 1, stride,
                                     is_vd_mode=not if_first and stride[0] != 1)
        self.relu = nn.ReLU()

    def forward(self, inputs):
        y = self.conv1(self.conv0(inputs))
        short = inputs if self.shortcut else self.short(inputs)
        return self.relu(short + y)


class BottleneckBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, shortcut=True, if_first=False):
        super().__init__()
        self.conv0 = ConvBNLayer(in_channels, out_channels, 1, act="relu")
        self.conv1 = ConvBNLayer(out_channels, out_channels, 3, stride, act="relu")
        self.conv2 = ConvBNLayer(out_channels, out_channels * 4, 1, act=None)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(in_channels, out_channels * 4, 1, stride,
                                     is_vd_mode=not if_first and stride[0] != 1)
        self.relu = nn.ReLU()

    def forward(self, inputs):
        y = self.conv2(self.conv1(self.conv0(inputs)))
        short = inputs if self.shortcut else self.short(inputs)
        return self.relu(short + y)


class ResNet(nn.Module):
    """``layers`` in 18/34 (BasicBlock) or 50/101/152/200 (BottleneckBlock); 32xW -> 1x(W/4)."""

    def __init__(self, in_channels=3, layers=50, **_training_only):
        super().__init__()
        if layers not in DEPTHS:
            raise SpecError(f"layers must be one of {sorted(DEPTHS)}, got {layers!r}")
        self.layers = layers
        depth = DEPTHS[layers]
        num_channels = [64, 256, 512, 1024] if layers >= 50 else [64, 64, 128, 256]
        num_filters = [64, 128, 256, 512]
        self.conv1_1 = ConvBNLayer(in_channels, 32, 3, 1, act="relu")
        self.conv1_2 = ConvBNLayer(32, 32, 3, 1, act="relu")
        self.conv1_3 = ConvBNLayer(32, 64, 3, 1, act="relu")
        self.pool2d_max = nn.MaxPool2d(3, 2, 1)

        block_cls, expansion = (BottleneckBlock, 4) if layers >= 50 else (BasicBlock, 1)
        self.block_names = []
        for b in range(len(depth)):
            for i in range(depth[b]):
                stride = (2, 1) if i == 0 and b != 0 else (1, 1)
                name = f"bb_{b}_{i}"  # PaddleOCR's add_sublayer names
                self.add_module(name, block_cls(
                    num_channels[b] if i == 0 else num_filters[b] * expansion, num_filters[b], stride,
                    shortcut=i != 0, if_first=b == i == 0))
                self.block_names.append(name)
        self.out_channels = num_filters[-1] * expansion
        self.out_pool = nn.MaxPool2d(2, 2, 0)

    def forward(self, inputs):
        y = self.pool2d_max(self.conv1_3(self.conv1_2(self.conv1_1(inputs))))
        for name in self.block_names:
            y = getattr(self, name)(y)
        return self.out_pool(y)

    def reparameterize(self) -> nn.Module:
        for m in self.modules():
            if isinstance(m, ConvBNAct):
                m.fuse()
        return self
