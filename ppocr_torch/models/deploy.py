"""Deploy form: fold every BatchNorm and re-parameterizable branch into single convolutions.

One walker: every module that has ``reparameterize()`` (blocks, backbones) or ``fuse()`` in place
(``ConvBNAct``) rewrites itself; the result computes the same function with fewer ops. Its convolutions and
linears then run on CPU through oneDNN's fused, weight-packed primitives (:mod:`.onednn`).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNAct
from .onednn import use_onednn


@torch.no_grad()
def reparameterize_model(model: nn.Module) -> nn.Module:
    """Convert ``model`` to its deploy form in place (idempotent) and return it."""
    was_training = model.training
    model.eval()
    for m in list(model.modules()):
        if m is model:
            continue
        if hasattr(m, "reparameterize"):
            m.reparameterize()
    for m in list(model.modules()):
        if isinstance(m, ConvBNAct):
            m.fuse()
    use_onednn(model)
    model.form = "deploy"
    model.train(was_training)
    return model
