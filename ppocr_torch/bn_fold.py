"""Folding an inference BatchNorm into the linear op before it: the one place this arithmetic lives.

Used by the deploy forms of the modules (``models.layers.conv_bn.fuse_conv_bn``, the re-parameterised PPLCNetV3/V4
blocks, PP-OCRv6 tiny's guide layer) and by the readers of official exports (``formats.source_ops``). Works on
numpy arrays and torch tensors alike; give it float64 values: the folded result is float64, rounded once by the
caller.
"""

from __future__ import annotations


def fold_batchnorm(weight, bias, gamma, beta, mean, var, eps):
    """``(weight * s, (bias - mean) * s + beta)`` with ``s = gamma / sqrt(var + eps)`` per output channel (axis 0
    of ``weight``); ``bias`` None means zero. Equals ``bn(op(x))`` for an op with that weight and bias."""
    sqrt = getattr(var, "sqrt", None)  # torch.Tensor.sqrt; numpy arrays have no method of that name
    if sqrt is None:
        import numpy as np

        scale = gamma / np.sqrt(var + eps)
    else:
        scale = gamma / (var + eps).sqrt()
    shape = (-1,) + (1,) * (weight.ndim - 1)
    shift = -mean * scale + beta if bias is None else (bias - mean) * scale + beta
    return weight * scale.reshape(shape), shift


def fold_batchnorm_module(weight, bias, bn):
    """:func:`fold_batchnorm` of a torch weight/bias (any dtype) and a BatchNorm module, in float64."""
    return fold_batchnorm(weight.double(), None if bias is None else bias.double(), bn.weight.double(),
                          bn.bias.double(), bn.running_mean.double(), bn.running_var.double(), bn.eps)
