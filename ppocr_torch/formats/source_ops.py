"""The common currency of conversion: one parametric op of a source graph, in canonical (deploy) form.

Every reader emits ``SourceOp`` records in execution order; ``match.py`` pairs them with the torch
model's parametric modules traced in execution order. Canonical form: Conv weights [O, I/g, kh, kw] with a
bias (any BatchNorm that follows a conv folded in), Linear weights [out, in] (torch layout), LayerNorm
weight/bias/eps, LSTM per layer and direction in torch gate order (i, f, g, o).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bn_fold import fold_batchnorm
from ..errors import SourceFormatError


@dataclass
class SourceOp:
    kind: str  # "conv" | "deconv" (transposed) | "linear" | "layernorm" | "lstm" | "batchnorm" | "affine" (scalar)
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
    f64 = [None if a is None else np.asarray(a, dtype=np.float64) for a in (weight, bias, gamma, beta, mean, var)]
    return fold_batchnorm(*f64, float(eps))


# ----- parametric ops of a Paddle inference program -----------------------------------------------------
#
# Ops are recognised by structure, never by their generic names (``conv2d_12.w_0``): a convolution takes the
# bias ``add`` and the ``batch_norm`` that follow it (folded), a ``matmul`` by a 2-D parameter is a linear layer
# (Paddle stores [in, out]; SourceOps are in torch layout [out, in]) and takes the bias ``add`` after it,
# ``layer_norm``/standalone ``batch_norm`` carry their epsilon, ``rnn`` in LSTM mode gives one op per layer, and
# ``multiply`` by a one-element constant followed by ``add`` of one is a learnable affine (the patterns the
# ONNX reader finds in paddle2onnx exports of the same models).

CONV_OPS = ("pd_op.conv2d", "pd_op.depthwise_conv2d")
BN_OPS = ("pd_op.batch_norm_", "pd_op.batch_norm")
UNSUPPORTED_OPS = ("pd_op.fc", "pd_op.mul", "pd_op.lstm", "pd_op.gru")


def conv_padding(attrs, kernel, strides, dilations):
    """Effective (top, left, bottom, right) padding of a Paddle conv from its ``padding_algorithm``."""
    algo = attrs.get("padding_algorithm", "EXPLICIT")
    if algo == "VALID":
        return (0, 0, 0, 0)
    if algo == "SAME":
        if any(s != 1 for s in strides):
            raise SourceFormatError(f"SAME padding with stride {list(strides)}: the padding depends on the input "
                                    f"size, which no fixed-padding layer can reproduce")
        pads = []
        for k, d in zip(kernel, dilations):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    p = [int(x) for x in attrs.get("paddings", [0, 0])]
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:  # Paddle order: top, bottom, left, right
        return (p[0], p[2], p[1], p[3])
    raise SourceFormatError(f"conv paddings {p}: expected 2 or 4 values")


def _other_operand(op, value):
    """The operand of binary ``op`` that is not ``value``."""
    a, b = op.inputs[:2]
    return b if a is value else a


def _bias_add(graph, out, size):
    """If ``out`` flows only into an ``add`` with a constant of ``size`` elements: (bias, add op, output)."""
    add = graph.only_user(out, "pd_op.add")
    if add is None:
        return None, None, out
    c = graph.const(_other_operand(add, out))
    if c is None or c.size != size:
        return None, None, out
    return c.reshape(-1).astype(np.float32), add, add.outputs[0]


def _axes_at(graph, op, rank):
    """The axes of an unsqueeze/squeeze op as non-negative positions in a tensor of ``rank`` dims."""
    axes = graph.const(op.inputs[1]) if len(op.inputs) > 1 else None
    if axes is None:
        return None
    return [int(x) % rank for x in np.asarray(axes).reshape(-1)]


def _conv1d_output(graph, conv, weight, out):
    """Paddle's Conv1D runs as unsqueeze(x, [-2]) -> conv2d with a [O, I/g, 1, k] kernel (-> bias add) ->
    squeeze([-2]). Returns the squeeze's output when ``conv`` is such a conv, else None."""
    if weight.ndim != 4 or weight.shape[2] != 1 or conv.inputs[0] is None:
        return None
    unsq = conv.inputs[0].op
    sq = graph.only_user(out, "pd_op.squeeze")
    if unsq.type != "pd_op.unsqueeze" or sq is None:
        return None
    if _axes_at(graph, unsq, 4) != [2] or _axes_at(graph, sq, 4) != [2]:
        return None
    return sq.outputs[0]


def _bn_params(graph, bn):
    ins = bn.named_inputs()
    vals = {k: graph.const(ins[k]) for k in ("scale", "bias", "mean", "variance")}
    missing = [k for k, v in vals.items() if v is None]
    if missing:
        raise SourceFormatError(f"{graph.path}: batch_norm op #{bn.index} has non-constant {missing}")
    names = tuple(s for k in ("scale", "bias", "mean", "variance") for s in graph.param_source(ins[k]))
    return vals, names


def _lstm_ops(graph, op):
    """One SourceOp per layer of a Paddle ``rnn`` op in LSTM mode (gate order i, f, g, o like torch)."""
    a = op.attrs
    where = f"{graph.path}: rnn op #{op.index}"
    if a.get("mode") != "LSTM":
        raise SourceFormatError(f"{where} in mode {a.get('mode')!r}: only LSTM is supported")
    weight_list = op.named_inputs()["weight_list"]
    if weight_list is None or weight_list.op.type != "builtin.combine":
        raise SourceFormatError(f"{where}: its weight list is not a combined list of parameters")
    operands = weight_list.op.inputs
    weights = [graph.const(v) for v in operands]
    if any(w is None for w in weights):
        raise SourceFormatError(f"{where}: weights are not constant")
    h, layers = int(a["hidden_size"]), int(a["num_layers"])
    dirs = 2 if a.get("is_bidirec") else 1
    n = layers * dirs
    if len(weights) != 4 * n:
        raise SourceFormatError(f"{where}: {len(weights)} weights for {layers} layers x {dirs} directions "
                                f"(expected {4 * n})")
    mats, biases = weights[:2 * n], weights[2 * n:]
    names = [graph.param_source(v) for v in operands]
    out = []
    for layer in range(layers):
        params, srcs = {}, ()
        for d in range(dirs):
            cell = layer * dirs + d
            sfx = "_reverse" if d == 1 else ""
            params["weight_ih" + sfx] = mats[2 * cell].astype(np.float32)
            params["weight_hh" + sfx] = mats[2 * cell + 1].astype(np.float32)
            params["bias_ih" + sfx] = biases[2 * cell].reshape(-1).astype(np.float32)
            params["bias_hh" + sfx] = biases[2 * cell + 1].reshape(-1).astype(np.float32)
            for i in (2 * cell, 2 * cell + 1, 2 * n + 2 * cell, 2 * n + 2 * cell + 1):
                srcs += names[i]
        if params["weight_hh"].shape != (4 * h, h):
            raise SourceFormatError(f"{where}: hidden weight {list(params['weight_hh'].shape)} for hidden size {h}")
        last = layer == layers - 1
        out.append(SourceOp("lstm", params, {"hidden_size": h, "bidirectional": dirs == 2},
                            output=op.outputs[0].name if last else None, source_names=srcs))
    return out


def _scalar_affine(graph, mul):
    """``add(multiply(s, x), b)`` with one-element constants ``s`` and ``b`` (PPLCNetV3's
    LearnableAffineBlock, two parameters of shape [1]): returns (scale, bias, add op, source names) or None."""
    ins = mul.inputs[:2]
    consts = [graph.const(v) for v in ins]
    if len(consts) != 2 or sum(c is None for c in consts) != 1:
        return None
    k = 0 if consts[0] is not None else 1
    scale = consts[k]
    if scale.shape != (1,):
        return None
    out = mul.outputs[0]
    add = graph.only_user(out, "pd_op.add")
    if add is None:
        return None
    other = _other_operand(add, out)
    bias = graph.const(other)
    if bias is None or bias.shape != (1,):
        return None
    return (scale.astype(np.float32), bias.astype(np.float32), add,
            graph.param_source(ins[k]) + graph.param_source(other))


def _conv_op(graph, op, used):
    a = op.attrs
    if a.get("data_format", "NCHW") != "NCHW":
        raise SourceFormatError(f"{graph.path}: conv op #{op.index} in layout {a['data_format']}")
    filt = op.named_inputs()["filter"]
    w = graph.const(filt).astype(np.float32)
    srcs = graph.param_source(filt)
    out, bias = op.outputs[0], None

    def take_bias(out):
        extra, add, new_out = _bias_add(graph, out, w.shape[0])
        if extra is None:
            return None, out, ()
        used.add(add)
        return extra, new_out, graph.param_source(_other_operand(add, out))

    bias, out, more = take_bias(out)
    srcs += more
    conv1d_out = _conv1d_output(graph, op, w, out)
    if conv1d_out is not None:  # a 1-D conv: what follows its squeeze belongs to it
        out = conv1d_out
        if bias is None:
            bias, out, more = take_bias(out)
            srcs += more
    bn = graph.only_user(out, BN_OPS)
    if bn is not None:
        used.add(bn)
        p, names = _bn_params(graph, bn)
        w, bias = fold_bn_into_conv(w, bias, p["scale"], p["bias"], p["mean"], p["variance"],
                                    bn.attrs.get("epsilon", 1e-5))
        srcs += names
        out = bn.outputs[0]
    if bias is None:
        bias = np.zeros(w.shape[0], np.float32)
    strides = tuple(int(s) for s in a.get("strides", [1, 1]))
    dilations = tuple(int(d) for d in a.get("dilations", [1, 1]))
    attrs = {"stride": strides, "padding": conv_padding(a, list(w.shape[2:]), strides, dilations),
             "groups": int(a.get("groups", 1)), "dilation": dilations}
    if conv1d_out is not None:  # width axis only; padding as (left, right); weight [O, I/g, k]
        w = np.ascontiguousarray(w[:, :, 0, :])
        attrs = {"stride": strides[1:], "padding": attrs["padding"][1::2], "groups": attrs["groups"],
                 "dilation": dilations[1:]}
    return SourceOp("conv", {"weight": w, "bias": bias}, attrs, output=out.name, source_names=srcs)


def _deconv_op(graph, op, used):
    """A transposed convolution (DB heads' 2x upsampling), taking the bias ``add`` and ``batch_norm`` after it:
    SourceOp kind "deconv", weight [in, out/groups, kh, kw] as in Paddle and torch."""
    a = op.attrs
    where = f"{graph.path}: conv2d_transpose op #{op.index}"
    if a.get("data_format", "NCHW") != "NCHW" or any(a.get("output_padding") or []):
        raise SourceFormatError(f"{where}: layout {a.get('data_format')} / output_padding "
                                f"{a.get('output_padding')} not supported")
    size = graph.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] is not None else None
    if size is not None and np.asarray(size).size:
        raise SourceFormatError(f"{where}: an explicit output_size is not supported")
    filt = op.inputs[1]
    w = graph.const(filt).astype(np.float32)
    groups = int(a.get("groups", 1))
    srcs = graph.param_source(filt)
    bias, add, out = _bias_add(graph, op.outputs[0], w.shape[1] * groups)
    if add is not None:
        used.add(add)
        srcs += graph.param_source(_other_operand(add, op.outputs[0]))
    bn = graph.only_user(out, BN_OPS)
    if bn is not None:
        if groups != 1:
            raise SourceFormatError(f"{where}: a batch_norm after a grouped transposed convolution is not supported")
        used.add(bn)
        p, names = _bn_params(graph, bn)
        wt, bias = fold_bn_into_conv(w.transpose(1, 0, 2, 3), bias, p["scale"], p["bias"], p["mean"],
                                     p["variance"], bn.attrs.get("epsilon", 1e-5))
        w = wt.transpose(1, 0, 2, 3)
        srcs += names
        out = bn.outputs[0]
    if bias is None:
        bias = np.zeros(w.shape[1] * groups, np.float32)
    strides = tuple(int(s) for s in a.get("strides", [1, 1]))
    dilations = tuple(int(d) for d in a.get("dilations", [1, 1]))
    if a.get("padding_algorithm", "EXPLICIT") != "EXPLICIT":
        raise SourceFormatError(f"{where}: padding_algorithm {a.get('padding_algorithm')} not supported")
    attrs = {"stride": strides, "padding": conv_padding(a, list(w.shape[2:]), strides, dilations),
             "groups": groups, "dilation": dilations}
    return SourceOp("deconv", {"weight": np.ascontiguousarray(w), "bias": bias}, attrs, output=out.name,
                    source_names=srcs)


def extract_ops(graph):
    """The parametric ops of a Paddle inference program (a folded ``Graph``), in program order."""
    ops, used = [], set()
    for op in graph.ops:
        if op in used:
            continue
        t, a, ins = op.type, op.attrs, op.inputs
        if t in CONV_OPS and graph.const(ins[1]) is not None:
            ops.append(_conv_op(graph, op, used))
        elif t == "pd_op.conv2d_transpose" and graph.const(ins[1]) is not None:
            ops.append(_deconv_op(graph, op, used))
        elif t == "pd_op.matmul" and graph.const(ins[1]) is not None and graph.const(ins[1]).ndim == 2 \
                and not a.get("transpose_x", False):
            w = graph.const(ins[1]).astype(np.float32)
            w = w if a.get("transpose_y", False) else w.T  # torch layout [out, in]
            srcs = graph.param_source(ins[1])
            bias, add, out = _bias_add(graph, op.outputs[0], w.shape[0])
            params = {"weight": np.ascontiguousarray(w)}
            if bias is not None:
                used.add(add)
                srcs += graph.param_source(_other_operand(add, op.outputs[0]))
                params["bias"] = bias
            ops.append(SourceOp("linear", params, {}, output=out.name, source_names=srcs))
        elif t == "pd_op.layer_norm":
            x = op.named_inputs()
            gamma, beta = graph.const(x.get("scale")), graph.const(x.get("bias"))
            if gamma is None or beta is None:
                raise SourceFormatError(f"{graph.path}: layer_norm op #{op.index} without constant scale and bias")
            ops.append(SourceOp("layernorm", {"weight": gamma.reshape(-1).astype(np.float32),
                                              "bias": beta.reshape(-1).astype(np.float32)},
                                {"eps": float(a.get("epsilon", 1e-5))}, output=op.outputs[0].name,
                                source_names=graph.param_source(x["scale"]) + graph.param_source(x["bias"])))
        elif t == "pd_op.multiply":
            aff = _scalar_affine(graph, op)
            if aff is not None:
                scale, bias, add, srcs = aff
                used.add(add)
                ops.append(SourceOp("affine", {"scale": scale, "bias": bias}, {}, output=add.outputs[0].name,
                                    source_names=srcs))
        elif t in BN_OPS:
            p, names = _bn_params(graph, op)
            ops.append(SourceOp("batchnorm", {"weight": p["scale"], "bias": p["bias"], "running_mean": p["mean"],
                                              "running_var": p["variance"]},
                                {"eps": float(a.get("epsilon", 1e-5))}, output=op.outputs[0].name,
                                source_names=names))
        elif t == "pd_op.rnn":
            ops.extend(_lstm_ops(graph, op))
        elif t in UNSUPPORTED_OPS:
            raise SourceFormatError(f"{graph.path}: op {t} (#{op.index}) is not supported by the Paddle inference "
                                    f"reader yet")
    return ops
