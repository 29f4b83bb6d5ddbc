"""Convolution + BatchNorm (+ activation) with a BatchNorm-folded deploy form, and its inverse.

PaddleOCR names these parts differently per family (``conv``/``bn``, ``_conv``/``_batch_norm``,
``conv``/``norm``); the attribute names are constructor arguments so training checkpoints map by name.

Deploy -> training form (``RecModel.train_form``): :func:`unfuse_conv_bn` is the one inverse of
:func:`fuse_conv_bn`: the folded kernel goes back into the convolution and the BatchNorm is re-inserted as an
identity carrying the folded bias (:func:`identity_batchnorm`). Every re-parameterisable block has a
``from_deploy(deployed)`` method built on these two, which fills its training-form tensors from its deployed
counterpart and returns the tensors it wrote (``models/deploy.py`` checks that each is written once).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...bn_fold import fold_batchnorm_module
from ...errors import SpecMismatchError
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


@torch.no_grad()
def identity_batchnorm(bn: nn.Module, bias: torch.Tensor | None = None, *, gain: float = 1.0) -> list:
    """Set ``bn`` so that it computes ``gain * x + bias`` in eval mode (``bias`` None: zero), up to one rounding.

    running_mean = 0, running_var = 1, weight = gain * sqrt(1 + eps), num_batches_tracked = 0. With ``gain``
    1 the BatchNorm is an identity whose fold (``fold_batchnorm``) scales by 1 within 7e-9 (float32 weights,
    less than half a float32 ulp; exactly 1 in float64), so folding it again gives back the same kernel. With
    ``gain`` 0 it outputs ``bias`` whatever its input, in train mode too (its branch adds nothing), while
    ``weight`` still receives gradients. Returns the tensors written.
    """
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    bn.weight.fill_(gain * math.sqrt(1.0 + bn.eps))  # sqrt: correctly rounded, as torch's in the fold
    if bias is None:
        bn.bias.zero_()
    else:
        bn.bias.copy_(bias.reshape(bn.bias.shape))
    written = [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.zero_()
        written.append(bn.num_batches_tracked)
    return written


@torch.no_grad()
def unfuse_conv_bn(conv: nn.Conv1d | nn.Conv2d, bn: nn.Module, weight: torch.Tensor,
                   bias: torch.Tensor | None) -> list:
    """The inverse of :func:`fuse_conv_bn`: fill ``conv`` and ``bn`` so that ``bn(conv(x))`` in eval mode equals
    the convolution by ``weight`` and ``bias`` (a fused conv's). The kernel is copied unchanged; the bias goes
    into ``bn.bias`` (into ``conv.bias`` if ``conv`` has one). Returns the tensors written."""
    if conv.weight.shape != weight.shape:
        raise SpecMismatchError(f"deploy-form kernel {tuple(weight.shape)} does not fit the training-form "
                                f"convolution {tuple(conv.weight.shape)}")
    conv.weight.copy_(weight)
    if conv.bias is not None:
        conv.bias.copy_(bias if bias is not None else torch.zeros_like(conv.bias))
        return [conv.weight, conv.bias] + identity_batchnorm(bn)
    return [conv.weight] + identity_batchnorm(bn, bias)


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

    def from_deploy(self, deployed: "ConvBNAct") -> list:
        """Training form from the fused ``deployed``: same kernel, identity BatchNorm carrying its bias."""
        if self.fused or not getattr(deployed, "fused", False):
            raise SpecMismatchError(f"{type(self).__name__}.from_deploy needs an unfused block and a fused one")
        fused = getattr(deployed, deployed.conv_name)
        return unfuse_conv_bn(getattr(self, self.conv_name), getattr(self, self.bn_name), fused.weight, fused.bias)


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

    def from_deploy(self, deployed: nn.Conv2d) -> list:
        """Training form from the plain convolution ``fuse()`` returned."""
        return unfuse_conv_bn(self.conv, self.bn, deployed.weight, deployed.bias)
