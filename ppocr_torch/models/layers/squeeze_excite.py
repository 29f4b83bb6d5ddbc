"""Squeeze-and-excitation as in PaddleOCR's rec backbones: mean -> conv1 -> relu -> conv2 -> gate -> scale."""

from __future__ import annotations

import torch
from torch import nn

from .activations import make_act


class SqueezeExcite(nn.Module):
    """``x * gate(conv2(relu(conv1(mean(x)))))``, ``conv1`` reducing the channels by ``reduction``.

    ``gate``: an activation name (Paddle's ``hardsigmoid``, slope 1/6, by default) or a module: PaddleOCR's
    MobileNetV3 gates with ``HardSigmoid(0.2, 0.5)``. The attribute names are PaddleOCR's (``conv1``, ``conv2``)."""

    def __init__(self, channels: int, reduction: int = 4, gate: str | nn.Module = "hardsigmoid"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)
        self.gate = make_act(gate) if isinstance(gate, str) else gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.conv2(self.relu(self.conv1(s))))


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """PaddleOCR's channel rounding: the nearest multiple of ``divisor``, at least ``min_value`` (default
    ``divisor``), never below 90% of ``v`` (MobileNetV3 rounds to 8, PPLCNetV3 to 16)."""
    min_value = divisor if min_value is None else min_value
    out = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out
