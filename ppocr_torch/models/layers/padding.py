"""Paddle's ``padding="SAME"`` written out explicitly."""

from __future__ import annotations

import math

import torch.nn.functional as F
import torch
from torch import nn


class SamePad2d(nn.Module):
    """Pad like Paddle/ONNX ``SAME_UPPER`` for a stride-1 window: the odd pixel goes right/bottom.

    ``value`` is 0 for convolutions and ``-inf`` for max-pooling (Paddle's SAME max-pool ignores the pad).
    """

    def __init__(self, kernel_size, value=0.0):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        ph, pw = kh - 1, kw - 1
        self.pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, value=self.value)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, value={self.value}"


def same_pad_amount(kernel_size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    return math.ceil((kernel_size - 1) / 2)
