"""ClsHead (PaddleOCR ``ppocr/modeling/heads/cls_head.py``): global average pool -> ``fc`` -> softmax in eval."""

from __future__ import annotations

import torch
from torch import nn


class ClsHead(nn.Module):
    """[B, C, h, w] -> [B, class_dim] probabilities in eval mode (logits in train mode)."""

    def __init__(self, in_channels, class_dim=2):
        super().__init__()
        self.fc = nn.Linear(in_channels, class_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x.mean(dim=(2, 3)))
        return x if self.training else torch.softmax(x, dim=1)
