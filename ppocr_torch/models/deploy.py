"""Deploy form: fold every BatchNorm and re-parameterizable branch into single convolutions; and back.

One walker: every module that has ``reparameterize()`` (blocks, backbones) or ``fuse()`` in place
(``ConvBNAct``) rewrites itself; the result computes the same function with fewer ops. Its convolutions and
linears then run on CPU through oneDNN's fused, weight-packed primitives (:mod:`.onednn`).

The inverse walker (:func:`train_form_model`) builds the training form of a deploy-form model: every block
whose deploy form differs has a ``from_deploy(deployed)`` method next to its ``reparameterize()``/``fuse()``
(``ConvBNAct``, ``Conv2dBN``, ``LearnableRepLayer``, ``RepDWConv``, ``EncoderWithLightSVTR``, ``CTCHead``); every
other tensor is the same in both forms and is copied by name.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SpecError, SpecMismatchError
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


@torch.no_grad()
def train_form_model(model: nn.Module) -> nn.Module:
    """A new training-form RecModel computing, in eval mode, the function of the deploy-form ``model``.

    Built from ``model.spec`` and ``model.charset`` (``build_model(form="train")``), on ``model``'s device and
    dtype, in eval mode; ``model`` is not modified. Each module of the new model whose deployed counterpart
    (the module of the same name in ``model``) exists and that has ``from_deploy`` fills its own tensors from
    it: BatchNorms come back as identities carrying the folded bias, re-parameterised branches as the merged
    kernel in the main branch plus branches that add nothing. Every other tensor is copied from the tensor of
    the same name and shape. Every tensor of the new state dict is written exactly once, or this raises:
    SpecError naming a block that has no inverse, SpecMismatchError when the weights do not fit the spec.
    """
    from .build import build_model

    if getattr(model, "form", None) != "deploy":
        raise SpecError(f"train_form_model needs a deploy-form model, got form {getattr(model, 'form', None)!r}")
    if getattr(model, "spec", None) is None:
        raise SpecError("train_form_model needs a model with a spec (to build its training form)")
    ref = next(model.parameters())
    train = build_model(model.spec, form="train", charset=None if model.charset is None else list(model.charset))
    train.to(device=ref.device, dtype=ref.dtype)
    state = train.state_dict(keep_vars=True)
    key_of = {id(t): k for k, t in state.items()}
    written: dict[str, str] = {}  # state-dict key -> the module that wrote it

    def record(tensors, by):
        for t in tensors:
            key = key_of.get(id(t))
            if key is None:
                raise RuntimeError(f"{by}.from_deploy wrote a tensor that is not in the state dict")
            if key in written:
                raise RuntimeError(f"{key!r} written twice: by {written[key]!r} and by {by!r}")
            written[key] = by

    deployed = dict(model.named_modules())
    handled = []
    for name, m in train.named_modules():
        if hasattr(m, "from_deploy") and name in deployed:
            record(m.from_deploy(deployed[name]), name or type(m).__name__)
            handled.append(name)
    source = model.state_dict()
    for key, t in state.items():
        if key in written:
            continue
        if key not in source:  # the block to blame: the innermost module that both forms have
            parts = key.split(".")
            block = next(b for b in (".".join(parts[:i]) for i in range(len(parts) - 1, -1, -1)) if b in deployed)
            raise SpecError(f"cannot build the training form of {model.spec.name!r}: block {block!r} "
                            f"({type(train.get_submodule(block)).__name__}) has no deploy-form inverse "
                            f"(from_deploy); its training-form tensor {key!r} is not in the deploy form")
        if source[key].shape != t.shape:
            raise SpecMismatchError(f"{key!r}: deploy-form shape {tuple(source[key].shape)}, training-form shape "
                                    f"{tuple(t.shape)}")
        t.copy_(source[key])
        record([t], "copied")
    if set(written) != set(state):  # cannot happen after the loop above; the contract, checked
        raise RuntimeError(f"training form left unwritten: {sorted(set(state) - set(written))[:5]}")
    unused = [k for k in source if k not in state and not any(k.startswith(h + ".") for h in handled if h)]
    if unused:
        raise SpecMismatchError(f"deploy-form tensors with no place in the training form: {unused[:5]}")
    train.weights_meta = {"train_form_of": dict(model.weights_meta)} if getattr(model, "weights_meta", None) else {}
    return train.eval()


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, batches) -> nn.Module:
    """Set every BatchNorm's running statistics to those of its input over ``batches``, in place, adjusting its
    weight and bias so that the eval-mode function stays the same (up to float rounding); returns ``model``.

    ``batches``: an iterable of input tensors (preprocessed lines, [B, 3, H, W]), run in eval mode. With
    mean ``m``, variance ``v`` and the input's mean ``mu`` and (biased) variance ``var``: ``running_mean = mu``,
    ``running_var = var``, ``weight *= sqrt(var + eps) / sqrt(v + eps)``, ``bias += (mu - m) * weight /
    sqrt(v + eps)`` (the old weight). A BatchNorm of weight 0 (a branch that adds nothing) keeps weight 0.

    Why: the BatchNorms of ``train_form()`` are identities in eval mode, but in train mode a BatchNorm
    normalises with the batch's statistics, so an uncalibrated identity BatchNorm rescales every channel to
    unit variance and training starts from a different, much worse function (and its running statistics move
    towards those of that function). Calibrated on lines like the training data, train mode starts close to
    the converted model (docs/training.md has the numbers).
    """
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    stats = {}  # module -> [count, mean, M2] per channel, float64 (merged per batch: Chan et al.)

    def record(module, inputs):
        y = inputs[0].detach().double()
        dims = [0] + list(range(2, y.dim()))
        n = y.numel() // y.shape[1]
        mean = y.mean(dims)
        m2 = ((y - mean.reshape((1, -1) + (1,) * (y.dim() - 2))) ** 2).sum(dims)
        if module not in stats:
            stats[module] = [n, mean, m2]
            return
        count, old_mean, old_m2 = stats[module]
        total = count + n
        delta = mean - old_mean
        stats[module] = [total, old_mean + delta * (n / total), old_m2 + m2 + delta ** 2 * (count * n / total)]

    ref = next(model.parameters())
    hooks = [m.register_forward_pre_hook(record) for m in norms]
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model(x.to(device=ref.device, dtype=ref.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    missing = [m for m in norms if m not in stats]
    if missing:
        raise ValueError(f"calibrate_batchnorm: {len(missing)} BatchNorm layers saw no input (no batches given?)")
    for m in norms:
        count, mu, m2 = stats[m]
        var = m2 / count
        gain = m.weight.double() / (m.running_var.double() + m.eps).sqrt()
        m.bias.copy_(m.bias.double() + (mu - m.running_mean.double()) * gain)
        m.weight.copy_(gain * (var + m.eps).sqrt())
        m.running_mean.copy_(mu)
        m.running_var.copy_(var)
    return model
