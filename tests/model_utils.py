"""Helpers shared by the architecture tests."""

import torch

_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
_LINEAR = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


def spec_of(name):
    from ppocr_torch import registry

    return registry.get_entry(name).spec


def randomize(model, seed=0):
    """Random weights, BatchNorm statistics and learnable affine scalars, so a wrong fold of any of them
    cannot hide behind identity BatchNorms or unit scales."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".lab.scale", ".lab.bias")):
                p.copy_(torch.randn(1, generator=g) * 0.3 + (1.0 if name.endswith("scale") else 0.0))
        for m in model.modules():
            if isinstance(m, _NORMS):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 1)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            elif isinstance(m, _LINEAR):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model
