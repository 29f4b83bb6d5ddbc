"""One by-name activation factory, so every block spells PaddleOCR's activation the same way."""

from __future__ import annotations

import torch
from torch import nn

from .paddle_float import paddle_float
from ...errors import SpecError

PADDLE_HARDSIGMOID_SLOPE = 0.1666667  # paddle F.hardsigmoid / nn.Hardsigmoid default: the literal, not 1/6


class HardSigmoid(nn.Module):
    """``clip(slope * x + offset, 0, 1)`` like Paddle's ``F.hardsigmoid`` and ONNX ``HardSigmoid``.

    Paddle's default slope is the literal 0.1666667 (the official exports carry alpha=float32(0.1666667));
    PaddleOCR's MobileNetV3 SE passes slope=0.2.
    """

    def __init__(self, slope=PADDLE_HARDSIGMOID_SLOPE, offset=0.5):
        super().__init__()
        self.slope, self.offset = paddle_float(slope), paddle_float(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"slope={self.slope}, offset={self.offset}"


_ACTS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact (erf) GELU, as paddle.nn.GELU(approximate=False)
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "swish": nn.SiLU,  # paddle.nn.Swish(x) = x * sigmoid(x)
    "silu": nn.SiLU,
    "hardsigmoid": HardSigmoid,  # Paddle's default: slope 0.1666667, offset 0.5
}


def make_act(name: str | None) -> nn.Module:
    """Return a fresh activation module for ``name`` (None -> Identity)."""
    if name is None:
        return nn.Identity()
    try:
        return _ACTS[name.lower()]()
    except KeyError:
        raise SpecError(f"unknown activation {name!r}; known: {sorted(_ACTS)}") from None
