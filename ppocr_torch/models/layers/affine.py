"""PaddleOCR's LearnableAffineBlock (PPLCNetV3, PPHGNetV2 with use_lab): one learnable scale and bias."""

from __future__ import annotations

import torch
from torch import nn


class LearnableAffineBlock(nn.Module):
    """``scale * x + bias`` with two learnable scalars (shape [1]).

    ``conversion_kind`` tells the converter that this is a parametric op of its own kind ("affine": an ONNX
    ``Mul`` by a scalar constant followed by an ``Add`` of a scalar constant), paired in execution order.
    """

    conversion_kind = "affine"

    def __init__(self, scale_value=1.0, bias_value=0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(scale_value)))
        self.bias = nn.Parameter(torch.full((1,), float(bias_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.bias
