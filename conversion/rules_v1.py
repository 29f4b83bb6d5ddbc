"""Map PaddleOCR 1.x (fluid static graph) variables onto the torch training-form model, and check a 1.x
program's structure against it.

1.x has no module tree: parameters are named by ``ParamAttr`` in PaddleOCR 1.x's code (names verified on a
real PaddleOCR 1.x training program, see tests/test_static_v1.py):

* backbone ``rec_mobilenet_v3.py``: ``conv1`` / ``conv{n+2}_{expand,depthwise,linear}`` / ``conv_last``
  conv+BN layers (``<name>_weights``, ``<name>_bn_{scale,offset,mean,variance}``), SE convs
  ``conv{n+2}_se_{1,2}_{weights,offset}``; the same layers as PaddleOCR 2.x's ``rec_mobilenet_v3.py``
  (``conv1``, ``blocks.n.{expand_conv,bottleneck_conv,mid_se.conv1/conv2,linear_conv}``, ``conv2``);
* sequence encoder ``rec_seq_encoder.py`` (``rnn``): ``lstm_st{layer}_fc{dir}_{w,b}`` (fc [in, 4H], [4H]) and
  ``lstm_st{layer}_out{dir}_{w,b}`` (dynamic_lstm [H, 4H], [1, 4H]), dir 1 forward, 2 backward; each fc and
  its LSTM become one layer of ``neck.encoder.lstm_fw``/``lstm_bw`` with the gate blocks reordered from
  fluid's (c, i, f, o) to PyTorch's (i, f, g, o) (``ppocr_torch/models/necks/rnn_v1.py``);
* CTC head ``rec_ctc_head.py``: ``ctc_fc_w_attr`` [2H, C] / ``ctc_fc_b_attr`` [C]. PaddleOCR 1.x puts the CTC
  blank **last** (``ctc_greedy_decoder(blank=char_num)``, characters 0..char_num-1); this project, like
  PaddleOCR 2.x, puts it first: the classifier's last class is moved to the front.

Every torch tensor is filled exactly once, every source tensor is used or dropped for a stated reason
(optimizer state of training programs), anything else is an error naming the variable.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

from ppocr_torch.models.necks.rnn_v1 import fluid_gates_to_torch

from .errors import ConversionError, SpecMismatchError
from .rules import MappingReport

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    from ppocr_torch.models.spec import ModelSpec
    from ppocr_torch.formats.program_desc import ProgramInfo
    import os

_BN = {"weight": "scale", "bias": "offset", "running_mean": "mean", "running_var": "variance"}
_BLOCK_PART = {"expand_conv": "expand", "bottleneck_conv": "depthwise", "linear_conv": "linear"}
_LSTM = re.compile(r"^neck\.encoder\.lstm_(fw|bw)\.(weight_ih|bias_ih|weight_hh|bias_hh)_l(\d+)$")
TRAINING_STATE = re.compile(r"(_(moment\d*|beta\d_pow_acc|velocity|mean_square|mean_grad)_\d+$)|"
                            r"(^learning_rate_\d+$)|(^@LR_DECAY_COUNTER@$)|(^global_step)")


def _conv_bn_name(prefix):
    """1.x name of a backbone ConvBNAct at torch path ``prefix`` (``backbone.conv1`` -> ``conv1``)."""
    if prefix == "backbone.conv1":
        return "conv1"
    if prefix == "backbone.conv2":
        return "conv_last"
    m = re.fullmatch(r"backbone\.blocks\.(\d+)\.(expand_conv|bottleneck_conv|linear_conv)", prefix)
    if m:
        return f"conv{int(m.group(1)) + 2}_{_BLOCK_PART[m.group(2)]}"
    return None


def source_name(key):
    """(1.x variable name, transform) feeding torch tensor ``key``, or None when the key is unknown.

    transform is one of "copy", "fc_w" (transpose + gate reorder), "gates" (gate reorder of a bias),
    "hh_w" (transpose + gate reorder), "ctc_w" (transpose + blank last->first), "ctc_b".
    """
    prefix, leaf = key.rsplit(".", 1)
    m = re.fullmatch(r"(.*)\.(conv|bn)", prefix)
    if m and m.group(1).startswith("backbone."):
        base = _conv_bn_name(m.group(1))
        if base is not None:
            if m.group(2) == "conv" and leaf == "weight":
                return f"{base}_weights", "copy"
            if m.group(2) == "bn" and leaf in _BN:
                return f"{base}_bn_{_BN[leaf]}", "copy"
    m = re.fullmatch(r"backbone\.blocks\.(\d+)\.mid_se\.conv([12])\.(weight|bias)", key)
    if m:
        return f"conv{int(m.group(1)) + 2}_se_{m.group(2)}_{'weights' if m.group(3) == 'weight' else 'offset'}", "copy"
    m = _LSTM.match(key)
    if m:
        direction = 1 if m.group(1) == "fw" else 2
        layer = int(m.group(3)) + 1
        kind = m.group(2)
        if kind == "weight_ih":
            return f"lstm_st{layer}_fc{direction}_w", "fc_w"
        if kind == "bias_ih":
            return f"lstm_st{layer}_fc{direction}_b", "gates"
        if kind == "weight_hh":
            return f"lstm_st{layer}_out{direction}_w", "hh_w"
        return f"lstm_st{layer}_out{direction}_b", "gates"
    if key == "head.fc.weight":
        return "ctc_fc_w_attr", "ctc_w"
    if key == "head.fc.bias":
        return "ctc_fc_b_attr", "ctc_b"
    return None


def _transform(arr, how):
    if how == "copy":
        return arr
    if how in ("fc_w", "hh_w"):
        return fluid_gates_to_torch(arr.T, axis=0)
    if how == "gates":
        return fluid_gates_to_torch(arr.reshape(-1))
    if how == "ctc_w":
        return np.roll(arr.T, 1, axis=0)  # [C, in] with fluid's last class (blank) moved to index 0
    if how == "ctc_b":
        return np.roll(arr.reshape(-1), 1)
    raise ValueError(how)


def expected_source_shape(key, torch_shape):
    """Shape the 1.x variable feeding ``key`` must have (inverse of the transform)."""
    _, how = source_name(key)
    if how in ("fc_w", "hh_w", "ctc_w"):
        return tuple(reversed(torch_shape))
    if how == "gates" and "bias_hh" in key:
        return (1, torch_shape[0])
    return tuple(torch_shape)


def name_table(model):
    """{torch key: 1.x variable name} for every floating tensor of ``model`` (training form)."""
    table, unknown = {}, []
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            continue
        src = source_name(key)
        if src is None:
            unknown.append(key)
        else:
            table[key] = src[0]
    if unknown:
        raise ConversionError(f"{model.spec.name if model.spec else 'model'}: no PaddleOCR 1.x name for "
                              f"{len(unknown)} tensors, e.g. {unknown[:4]} (only the 1.x MobileNetV3 + rnn/reshape "
                              f"+ CTC recognizers are mapped)")
    return table


def map_v1_state(src, model):
    """Return (state_dict for ``model`` (training form), MappingReport) from ``{1.x name: array}``."""
    report = MappingReport("paddle-1.x-static")
    table = name_table(model)
    target = model.state_dict()
    by_source = {}
    for key, name in table.items():
        if name in by_source:
            raise ConversionError(f"1.x variable {name!r} would fill both {by_source[name]} and {key}")
        by_source[name] = key
    out, used = {}, set()
    missing = [n for n in by_source if n not in src]
    if missing:
        raise ConversionError(f"{len(missing)} variables of the PaddleOCR 1.x {model.spec.name} architecture are "
                              f"missing from the source, e.g. {sorted(missing)[:4]} (wrong model family, or a "
                              f"partial/other file?)")
    for name, key in by_source.items():
        arr = np.asarray(src[name])
        want_src = expected_source_shape(key, tuple(target[key].shape))
        if tuple(arr.shape) != want_src:
            if key.startswith("head.fc.") and arr.shape[-1] != want_src[-1]:
                raise SpecMismatchError(
                    f"classifier {name}: the source has {arr.shape[-1]} classes but the dictionary/config give "
                    f"{want_src[-1]} (dictionary + space if use_space_char + blank): wrong dictionary, or "
                    f"use_space_char set wrongly?")
            raise SpecMismatchError(f"1.x variable {name!r}: shape {tuple(arr.shape)} but the architecture needs "
                                    f"{want_src} for {key} (wrong model family or config?)")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ConversionError(f"1.x variable {name!r} has dtype {arr.dtype}, expected floating point")
        t = np.ascontiguousarray(_transform(arr, _transform_of(key)))
        out[key] = torch.from_numpy(t).to(target[key].dtype)
        used.add(name)
    for name in src:
        if name in used:
            continue
        if TRAINING_STATE.search(name):
            report.dropped["optimizer/training state"] = report.dropped.get("optimizer/training state", 0) + 1
            continue
        raise ConversionError(f"1.x variable {name!r} has no place in the {model.spec.name} architecture "
                              f"(wrong model family or config?)")
    for k, v in target.items():
        if k not in out:  # integer buffers (BatchNorm's num_batches_tracked)
            out[k] = v
    report.notes.append("CTC classifier: PaddleOCR 1.x's last class (blank) moved to index 0")
    return out, report


def _transform_of(key):
    return source_name(key)[1]


# ---------------------------------------------------------------- program structure check

def _pair(v):
    v = list(v)
    return tuple(v[:2]) if len(v) >= 2 else (v[0], v[0])


def check_program(program: ProgramInfo, model: torch.nn.Module) -> list[str]:
    """Compare the layers of a 1.x ProgramDesc (conv strides/paddings/groups/dilations, BN epsilon, LSTM
    direction/peepholes/activations, SE hard_sigmoid, final pool) and its parameter shapes with ``model``.

    Returns a list of human-readable mismatches (empty when the program and the torch model agree).
    """
    problems = []
    table = name_table(model)
    by_source = {v: k for k, v in table.items()}
    modules = dict(model.named_modules())
    target = model.state_dict()
    block = program.global_block
    for name, key in by_source.items():
        var = block.vars.get(name)
        if var is None:
            problems.append(f"{name}: not in the program")
            continue
        want = expected_source_shape(key, tuple(target[key].shape))
        if tuple(var.shape) != want:
            problems.append(f"{name}: shape {tuple(var.shape)} in the program, {want} for {key}")
    for op in block.ops:
        if op.type.endswith("_grad"):
            continue
        if op.type in ("conv2d", "depthwise_conv2d"):
            wname = op.inputs.get("Filter", [None])[0]
            key = by_source.get(wname)
            if key is None:
                continue
            conv = modules[key.rsplit(".", 1)[0]]
            got = {"stride": _pair(op.attrs.get("strides", [1, 1])), "padding": _pair(op.attrs.get("paddings", [0, 0])),
                   "groups": op.attrs.get("groups", 1), "dilation": _pair(op.attrs.get("dilations", [1, 1]))}
            want = {"stride": tuple(conv.stride), "padding": tuple(conv.padding), "groups": conv.groups,
                    "dilation": tuple(conv.dilation)}
            algo = op.attrs.get("padding_algorithm", "EXPLICIT")
            if algo not in ("EXPLICIT", ""):
                problems.append(f"{wname}: padding_algorithm {algo} (only explicit paddings are mapped)")
            for k in got:
                if got[k] != want[k]:
                    problems.append(f"{wname}: {k} {got[k]} in the program, {want[k]} in {key.rsplit('.', 1)[0]}")
        elif op.type == "batch_norm":
            sname = op.inputs.get("Scale", [None])[0]
            key = by_source.get(sname)
            if key is not None:
                bn = modules[key.rsplit(".", 1)[0]]
                eps = op.attrs.get("epsilon", 1e-5)
                if abs(eps - bn.eps) > 1e-9:
                    problems.append(f"{sname}: epsilon {eps} in the program, {bn.eps} in torch")
        elif op.type == "lstm":
            wname = op.inputs.get("Weight", [None])[0]
            m = re.fullmatch(r"lstm_st(\d)_out(\d)_w", wname or "")
            if not m:
                problems.append(f"lstm op with weight {wname!r}: not a PaddleOCR 1.x encoder LSTM")
                continue
            want_reverse = m.group(2) == "2"
            if bool(op.attrs.get("is_reverse", False)) != want_reverse:
                problems.append(f"{wname}: is_reverse={op.attrs.get('is_reverse')} but the torch stack is "
                                f"{'backward' if want_reverse else 'forward'}")
            if op.attrs.get("use_peepholes", True):
                problems.append(f"{wname}: use_peepholes=True (not supported: 1.x PaddleOCR sets False)")
            acts = (op.attrs.get("gate_activation", "sigmoid"), op.attrs.get("cell_activation", "tanh"),
                    op.attrs.get("candidate_activation", "tanh"))
            if acts != ("sigmoid", "tanh", "tanh"):
                problems.append(f"{wname}: activations {acts}, torch LSTM computes (sigmoid, tanh, tanh)")
            if op.inputs.get("H0") or op.inputs.get("C0"):
                problems.append(f"{wname}: initial states H0/C0 given (torch starts from zeros)")
        elif op.type == "hard_sigmoid":
            slope, offset = op.attrs.get("slope", 0.2), op.attrs.get("offset", 0.5)
            gates = [m for m in modules.values() if type(m).__name__ == "HardSigmoid"]
            for g in gates[:1]:
                if abs(g.slope - slope) > 1e-6 or abs(g.offset - offset) > 1e-6:
                    problems.append(f"hard_sigmoid slope/offset ({slope}, {offset}) in the program, "
                                    f"({g.slope}, {g.offset}) in torch")
        elif op.type == "pool2d" and op.attrs.get("pooling_type") == "max":
            pools = [m for m in modules.values() if isinstance(m, nn.MaxPool2d)]
            if pools:
                p = pools[-1]
                got = (_pair(op.attrs.get("ksize")), _pair(op.attrs.get("strides")), _pair(op.attrs.get("paddings")))
                want = (_pair([p.kernel_size] * 2 if isinstance(p.kernel_size, int) else p.kernel_size),
                        _pair([p.stride] * 2 if isinstance(p.stride, int) else p.stride),
                        _pair([p.padding] * 2 if isinstance(p.padding, int) else p.padding))
                if got != want:
                    problems.append(f"max pool (ksize, strides, paddings) {got} in the program, {want} in torch")
    return problems


def convert_static_v1(path: str | os.PathLike, spec: ModelSpec, *, form: str = "deploy") -> tuple:
    """Torch model of ``spec`` loaded from a PaddleOCR 1.x saved model at ``path`` (see
    ``readers.static_v1.read_static_model``). When the files include the program, its layers are checked
    against the torch model first (``check_program``) and any disagreement is an error listing them all.
    Returns (model, MappingReport)."""
    from ppocr_torch.models.build import build_model
    from ppocr_torch.models.deploy import reparameterize_model

    from .readers.static_v1 import read_static_model

    source = read_static_model(path)
    model = build_model(spec, form="train")
    if source.program is not None:
        problems = check_program(source.program, model)
        if problems:
            raise ConversionError(f"{path}: the 1.x program does not match {spec.name}: " + "; ".join(problems[:8])
                                  + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))
    state, report = map_v1_state(source.tensors, model)
    model.load_state_dict(state)
    model.eval()
    report.notes.append(f"source layout: {source.layout}" + ("" if source.program is not None else
                                                             " (no program: layer attributes not checked)"))
    if form == "deploy":
        reparameterize_model(model)
    return model, report


__all__ = ["map_v1_state", "check_program", "convert_static_v1", "name_table", "source_name", "TRAINING_STATE"]
