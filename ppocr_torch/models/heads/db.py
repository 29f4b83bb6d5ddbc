"""DBHead (PaddleOCR ``ppocr/modeling/heads/det_db_head.py``), inference branch: the shrink-map probability.

``binarize``: 3x3 ``conv1`` (no bias) -> ``conv_bn1`` -> ReLU -> 2x2 stride-2 transposed ``conv2`` ->
``conv_bn2`` -> ReLU -> 2x2 stride-2 transposed ``conv3`` -> sigmoid: [B, C, H/4, W/4] -> [B, 1, H, W].
PaddleOCR's training-only threshold branch (``thresh``) and the differentiable binarisation with ``k`` are not
part of the inference exports and are not built. Deploy form (``reparameterize()``): both BatchNorms folded
into the convolution before them (a transposed convolution's output channels are axis 1 of its weight).
"""

from __future__ import annotations

import torch
from torch import nn

from ...bn_fold import fold_batchnorm
from ..layers.conv_bn import fuse_conv_bn
from ..layers.paddle_float import BatchNorm2d


@torch.no_grad()
def fuse_deconv_bn(deconv: nn.ConvTranspose2d, bn: nn.Module) -> nn.ConvTranspose2d:
    """A new ConvTranspose2d (groups 1) equal to ``bn(deconv(x))`` in eval mode (folded in float64)."""
    w = deconv.weight.double().transpose(0, 1)  # [out, in, kh, kw]: output channels first
    b = None if deconv.bias is None else deconv.bias.double()
    w, b = fold_batchnorm(w, b, bn.weight.double(), bn.bias.double(), bn.running_mean.double(),
                          bn.running_var.double(), bn.eps)
    fused = nn.ConvTranspose2d(deconv.in_channels, deconv.out_channels, deconv.kernel_size, deconv.stride,
                               deconv.padding, deconv.output_padding, deconv.groups, True, deconv.dilation,
                               device=deconv.weight.device, dtype=deconv.weight.dtype)
    fused.weight.copy_(w.transpose(0, 1).to(deconv.weight.dtype))
    fused.bias.copy_(b.to(deconv.weight.dtype))
    return fused


class DBBinarize(nn.Module):
    """PaddleOCR's DB ``Head`` (the ``binarize`` branch)."""

    def __init__(self, in_channels):
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 3, 1, 1, bias=False)
        self.conv_bn1 = BatchNorm2d(mid, 1e-5)
        self.conv2 = nn.ConvTranspose2d(mid, mid, 2, 2)
        self.conv_bn2 = BatchNorm2d(mid, 1e-5)
        self.conv3 = nn.ConvTranspose2d(mid, 1, 2, 2)
        self.relu = nn.ReLU()
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if not self.fused:
            x = self.conv_bn1(x)
        x = self.conv2(self.relu(x))
        if not self.fused:
            x = self.conv_bn2(x)
        return torch.sigmoid(self.conv3(self.relu(x)))

    def reparameterize(self) -> nn.Module:
        if not self.fused:
            self.conv1 = fuse_conv_bn(self.conv1, self.conv_bn1)
            self.conv2 = fuse_deconv_bn(self.conv2, self.conv_bn2)
            del self.conv_bn1, self.conv_bn2
            self.fused = True
        return self


class DBHead(nn.Module):
    """``forward(x)`` -> the text probability map [B, 1, 4h, 4w] (sigmoid applied, as the inference output)."""

    def __init__(self, in_channels, k=50, **_training_only):
        super().__init__()
        self.k = k  # differentiable binarisation steepness (training only)
        self.binarize = DBBinarize(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.binarize(x)
