"""Paddle keeps float attributes (epsilons, hard-sigmoid slopes, attention scales) as float32.

Our modules hold the float32 value of each such constant. A float32 forward pass is bit-for-bit unchanged (the
constant is rounded to float32 there anyway), and a float64 evaluation computes the official function exactly:
the conversion tool's parity check compares that with the official graph evaluated in float64.
"""

from __future__ import annotations

import numpy as np
from torch import nn


def paddle_float(value: float) -> float:
    """``value`` as Paddle stores a float attribute: rounded to float32 (returned as a Python float)."""
    return float(np.float32(value))


def LayerNorm(dim: int, eps: float) -> nn.LayerNorm:  # noqa: N802 (a module factory)
    return nn.LayerNorm(dim, eps=paddle_float(eps))


def BatchNorm2d(channels: int, eps: float) -> nn.BatchNorm2d:  # noqa: N802
    return nn.BatchNorm2d(channels, eps=paddle_float(eps))


def BatchNorm1d(channels: int, eps: float) -> nn.BatchNorm1d:  # noqa: N802
    return nn.BatchNorm1d(channels, eps=paddle_float(eps))
