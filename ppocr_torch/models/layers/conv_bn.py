"""Convolution + BatchNorm (+ activation) with a BatchNorm-folded deploy form.

PaddleOCR names these parts differently per family (``conv``/``bn``, ``_conv``/``_batch_norm``,
``conv``/``norm``); the attribute names are constructor arguments so training checkpoints map by name.
"""

from __future__ import annotations

import torch
from torch import nn

from ...bn_fold import fold_batchnorm_module
from .activations import make_act
from .paddle_float import BatchNorm2d

PADDLE_BN_EPS = 1e-5  # paddle.nn.BatchNorm2D / BatchNorm default epsilon


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv1d | nn.Conv2d, bn: nn.Module) -> nn.Conv1d | nn.Conv2d:
    """A new Conv1d/Conv2d equal to ``bn(conv(x))`` in eval mode (folded in float64, rounded once)."""
    w, b = fold_batchnorm_module(conv.weight, conv.bias, bn)
    fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                       device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(w.to(conv.weight.dtype))
    fused.bias.copy_(b.to(conv.weight.dtype))
    return fused


class ConvBNAct(nn.Module):
    """conv (no bias) -> BatchNorm -> activation; ``fuse()`` folds the BN into the conv in place."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, groups=1, act="relu",
                 conv_name="conv", bn_name="bn", act_name="act", bn_eps=PADDLE_BN_EPS, same_pad=False):
        super().__init__()
        self.conv_name, self.bn_name, self.act_name = conv_name, bn_name, act_name
        if same_pad:
            from .padding import SamePad2d

            self.pad = SamePad2d(kernel_size)
            padding = 0
        else:
            self.pad = None
            if padding is None:
                k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
                padding = ((k[0] - 1) // 2, (k[1] - 1) // 2)
        setattr(self, conv_name, nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                           groups=groups, bias=False))
        setattr(self, bn_name, BatchNorm2d(out_channels, bn_eps))
        setattr(self, act_name, make_act(act))
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = self.pad(x)
        x = getattr(self, self.conv_name)(x)
        if not self.fused:
            x = getattr(self, self.bn_name)(x)
        return getattr(self, self.act_name)(x)

    def fuse(self) -> nn.Module:
        if not self.fused:
            setattr(self, self.conv_name, fuse_conv_bn(getattr(self, self.conv_name), getattr(self, self.bn_name)))
            delattr(self, self.bn_name)
            self.fused = True
        return self


class Conv2dBN(nn.Sequential):
    """PaddleOCR's ``Conv2D_BN`` (``conv`` + ``bn``, no activation). ``fuse()`` returns a plain Conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, groups=1,
                 bn_eps=PADDLE_BN_EPS):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                          groups=groups, bias=False))
        self.add_module("bn", BatchNorm2d(out_channels, bn_eps))

    def fuse(self) -> nn.Module:
        return fuse_conv_bn(self.conv, self.bn)
