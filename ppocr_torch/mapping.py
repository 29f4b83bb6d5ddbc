"""Pair source ops with the torch model's parametric modules, both in execution order, and load weights.

Used by the runtime (official exports converted on first use) and by the conversion tool alike.

Pairing is by position in execution order, then checked by kind, every parameter shape and the
structural attributes (stride, padding, groups, dilation, LayerNorm eps, LSTM size). Loading is strict:
each torch tensor is filled exactly once and each source op is used; anything else is an error that
names the first disagreement.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models.layers import SamePad2d

from .errors import ConversionError


@dataclass
class TorchSlot:
    kind: str
    name: str  # module path in the model
    module: nn.Module
    layer: int = 0  # LSTM layer index

    def expected(self):
        m = self.module
        if self.kind in ("conv", "deconv"):
            return {"weight": tuple(m.weight.shape), "bias": (m.out_channels,)}
        if self.kind == "linear":
            d = {"weight": tuple(m.weight.shape)}
            if m.bias is not None:
                d["bias"] = tuple(m.bias.shape)
            return d
        if self.kind == "layernorm":
            return {"weight": tuple(m.weight.shape), "bias": tuple(m.bias.shape)}
        if self.kind == "batchnorm":
            return {k: (m.num_features,) for k in ("weight", "bias", "running_mean", "running_var")}
        if self.kind == "affine":
            return {"scale": tuple(m.scale.shape), "bias": tuple(m.bias.shape)}
        if self.kind == "lstm":
            out = {}
            for sfx in ("", "_reverse") if m.bidirectional else ("",):
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    out[p + sfx] = tuple(getattr(m, f"{p}_l{self.layer}{sfx}").shape)
            return out
        raise ConversionError(f"internal: no parameter layout for op kind {self.kind!r}")

    def target_key(self, param):
        if self.kind == "lstm":
            base, _, sfx = param.partition("_reverse")
            return f"{self.name}.{param.replace('_reverse', '')}_l{self.layer}{'_reverse' if _ else ''}"
        return f"{self.name}.{param}"

    def describe(self):
        shapes = ", ".join(f"{k}{list(v)}" for k, v in self.expected().items())
        return f"{self.kind} {self.name}" + (f"[layer {self.layer}]" if self.kind == "lstm" else "") + f" ({shapes})"


_KINDS = ((nn.ConvTranspose2d, "deconv"), (nn.Conv2d, "conv"), (nn.Conv1d, "conv"), (nn.Linear, "linear"),
          (nn.LayerNorm, "layernorm"), (nn.LSTM, "lstm"), (nn.BatchNorm2d, "batchnorm"))


def _kind(module):
    declared = getattr(module, "conversion_kind", None)  # custom parametric layers (e.g. "affine": scale*x+bias)
    if declared is not None:
        return declared
    for cls, kind in _KINDS:
        if isinstance(module, cls):
            return kind
    return None


def trace_slots(model, example):
    """Run ``model`` once and return its parametric modules as TorchSlots in call order, plus outputs."""
    from .models.onednn import plain_modules

    names = {m: n for n, m in model.named_modules()}
    order, outputs, hooks = [], {}, []

    def hook(module, _inp, out):
        name = names[module]
        kind = _kind(module)
        if kind == "lstm":
            for layer in range(module.num_layers):
                order.append(TorchSlot(kind, name, module, layer))
            outputs[(name, module.num_layers - 1)] = out[0]
        else:
            order.append(TorchSlot(kind, name, module))
            outputs[(name, 0)] = out

    for m in names:
        if _kind(m) is not None:
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), plain_modules(model):  # a fused conv+activation would hide the conv's output
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return order, outputs


def _torch_padding(model, slot):
    """Effective (top, left, bottom, right) padding of a conv, counting a SamePad2d sibling."""
    m = slot.module
    if isinstance(m, nn.Conv1d):  # (left, right), as the reader gives a 1-D conv's padding
        return (m.padding[0], m.padding[0])
    ph, pw = m.padding
    parent_name = slot.name.rsplit(".", 1)[0] if "." in slot.name else ""
    parent = model.get_submodule(parent_name) if parent_name else model
    pad = getattr(parent, "pad", None)
    if isinstance(pad, SamePad2d):
        left, right, top, bottom = pad.pad
        return (top + ph, left + pw, bottom + ph, right + pw)
    return (ph, pw, ph, pw)


def _check_attrs(model, slot, op):
    m = slot.module
    if slot.kind == "deconv":
        ph, pw = m.padding
        want = {"stride": tuple(m.stride), "padding": (ph, pw, ph, pw), "groups": m.groups,
                "dilation": tuple(m.dilation)}
        got = {k: (tuple(op.attrs[k]) if isinstance(op.attrs[k], (list, tuple)) else op.attrs[k]) for k in want}
        return [f"{k}: source {got[k]} vs torch {want[k]}" for k in want if got[k] != want[k]]
    if slot.kind == "conv":
        want = {"stride": tuple(m.stride), "padding": _torch_padding(model, slot), "groups": m.groups,
                "dilation": tuple(m.dilation)}
        got = {k: (tuple(op.attrs[k]) if isinstance(op.attrs[k], (list, tuple)) else op.attrs[k]) for k in want}
        return [f"{k}: source {got[k]} vs torch {want[k]}" for k in want if got[k] != want[k]]
    if slot.kind in ("layernorm", "batchnorm"):
        if not np.isclose(op.attrs.get("eps", m.eps), m.eps, rtol=1e-3, atol=0):
            return [f"eps: source {op.attrs['eps']} vs torch {m.eps}"]
    if slot.kind == "lstm":
        if op.attrs["hidden_size"] != m.hidden_size or op.attrs["bidirectional"] != m.bidirectional:
            return [f"lstm: source hidden {op.attrs['hidden_size']} bidirectional {op.attrs['bidirectional']} vs "
                    f"torch hidden {m.hidden_size} bidirectional {m.bidirectional}"]
    return []


def pair_ops(model, source_ops, example):
    """Return [(TorchSlot, SourceOp)] or raise ConversionError naming the first disagreement."""
    slots, _ = trace_slots(model, example)
    problems = []
    for i, (slot, op) in enumerate(zip(slots, source_ops)):
        shapes = {k: tuple(v.shape) for k, v in op.params.items()}
        exp = slot.expected()
        if slot.kind != op.kind or shapes != exp:
            problems.append(f"op #{i}: source {op.describe()} vs torch {slot.describe()}")
        else:
            problems += [f"op #{i} ({slot.name}): {p}" for p in _check_attrs(model, slot, op)]
        if problems:
            break
    if not problems and len(slots) != len(source_ops):
        extra = source_ops[len(slots):] or slots[len(source_ops):]
        who = "source" if len(source_ops) > len(slots) else "torch model"
        problems.append(f"{who} has {abs(len(slots) - len(source_ops))} more parametric ops "
                        f"(source {len(source_ops)}, torch {len(slots)}); first extra: {extra[0].describe()}")
    if problems:
        raise ConversionError("the source graph does not match the spec's architecture: " + "; ".join(problems))
    return list(zip(slots, source_ops))


def load_pairs(model, pairs):
    """Copy paired source tensors into ``model`` strictly; return the filled state-dict keys."""
    state = model.state_dict()
    filled, exact = {}, {}
    for slot, op in pairs:
        for pname, value in op.params.items():
            key = slot.target_key(pname)
            if key not in state:
                raise ConversionError(f"internal: no tensor {key!r} in the torch model")
            if key in filled:
                raise ConversionError(f"tensor {key!r} would be filled twice")
            filled[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            if value.dtype == np.float64:  # computed by the conversion (a folded BatchNorm): keep it exact
                exact[key] = torch.from_numpy(np.ascontiguousarray(value))
    missing = [k for k, v in state.items() if k not in filled and v.is_floating_point()]
    if missing:
        raise ConversionError(f"{len(missing)} torch tensors were not filled by the source, e.g. {missing[:5]}")
    model.load_state_dict(filled, strict=False)
    # float64 values of the tensors the conversion computed (not saved): parity's float64 evaluation of the
    # conversion uses them, so that it measures the mapping, not the rounding of folded weights to float32
    model.conversion_float64 = exact
    return sorted(filled)


def model_from_ops(spec, charset, ops, *, source="the source"):
    """(model, pairs): a deploy-form model of ``spec`` filled strictly from ``ops`` (the parametric ops of an
    official export), in eval mode, and the (torch slot, source op) pairs that filled it.

    Raises SpecMismatchError when the export's classifier does not have the spec's class count, and
    ConversionError naming the first op that does not fit the spec's architecture."""
    from .errors import SpecMismatchError
    from .models import build_model

    if len(charset) != spec.num_classes:
        raise SpecMismatchError(f"character set has {len(charset)} classes, spec {spec.name} has {spec.num_classes}")
    last = next((op for op in reversed(ops) if op.kind == "linear"), None)
    if last is not None and last.params["weight"].shape[0] != spec.num_classes:
        n = last.params["weight"].shape[0]
        raise SpecMismatchError(f"{source}: the classifier has {n} classes but {spec.name} expects "
                                f"{spec.num_classes} (dictionary {spec.dictionary}, use_space_char="
                                f"{spec.use_space_char}); wrong dictionary or model?")
    torch.manual_seed(0)
    model = build_model(spec, form="deploy", charset=list(charset))
    example = torch.zeros(1, 3, spec.input_height, spec.base_width)
    pairs = pair_ops(model, ops, example)
    load_pairs(model, pairs)
    return model.eval(), pairs


def page_model_from_ops(spec, ops, *, source="the source"):
    """(model, pairs): a deploy-form detector/orientation classifier of ``spec`` (a PageModelSpec) filled strictly
    from ``ops``, like :func:`model_from_ops`. A classifier's last linear layer must have one row per label."""
    from .errors import SpecMismatchError
    from .models.page_model import build_page_model

    if spec.task == "cls":
        last = next((op for op in reversed(ops) if op.kind == "linear"), None)
        n = None if last is None else last.params["weight"].shape[0]
        if n != len(spec.labels):
            raise SpecMismatchError(f"{source}: the classifier has {n} classes but {spec.name} has "
                                    f"{len(spec.labels)} labels {list(spec.labels)}; wrong model?")
    torch.manual_seed(0)
    model = build_page_model(spec, form="deploy")
    shape = (1, *spec.input_shape) if spec.task == "cls" else (1, 3, 64, 64)
    pairs = pair_ops(model, ops, torch.zeros(shape))
    load_pairs(model, pairs)
    return model.eval(), pairs
