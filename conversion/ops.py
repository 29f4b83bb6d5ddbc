"""The common currency of conversion: one parametric op of a source graph, in canonical (deploy) form.

Every reader emits ``SourceOp`` records in execution order; ``match.py`` pairs them with the torch
model's parametric modules traced in execution order. Canonical form: Conv weights [O, I/g, kh, kw] with a
bias (any BatchNorm that follows a conv folded in), Linear weights [out, in] (torch layout), LayerNorm
weight/bias/eps, LSTM per layer and direction in torch gate order (i, f, g, o).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SourceOp:
    kind: str  # "conv" | "linear" | "layernorm" | "lstm" | "batchnorm" | "affine" (scalar scale*x+bias)
    params: dict  # name -> np.ndarray (float32; float64 where the conversion computed it: a folded BatchNorm)
    attrs: dict = field(default_factory=dict)  # stride/padding/groups/eps/hidden_size ...
    output: str | None = None  # name of the op's output tensor in the source graph (for per-layer parity)
    source_names: tuple = ()  # names of the source tensors this op consumed

    def describe(self):
        shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in self.params.items())
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs.items() if k != "eps")
        return f"{self.kind}({shapes}{'; ' + attrs if attrs else ''})"


def fold_bn_into_conv(weight, bias, gamma, beta, mean, var, eps):
    """Fold an inference BatchNorm into the preceding conv, in float64, returned in float64: ``load_pairs``
    rounds them to the model's float32 and keeps the exact values for the float64 parity check."""
    w = weight.astype(np.float64)
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(eps))
    b = np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64)
    return w * scale[:, None, None, None], (b - mean.astype(np.float64)) * scale + beta.astype(np.float64)
