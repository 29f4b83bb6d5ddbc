"""One by-name activation factory, so every block spells PaddleOCR's activation the same way."""

from torch import nn

_ACTS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact (erf) GELU, as paddle.nn.GELU(approximate=False)
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "swish": nn.SiLU,  # paddle.nn.Swish(x) = x * sigmoid(x)
    "silu": nn.SiLU,
    "hardsigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6: Paddle's slope 1/6, offset 0.5
}


def make_act(name):
    """Return a fresh activation module for ``name`` (None -> Identity)."""
    if name is None:
        return nn.Identity()
    try:
        return _ACTS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTS)}") from None
