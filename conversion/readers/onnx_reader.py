"""Read an ONNX export (paddle2onnx) into parametric ``SourceOp`` records, in graph (execution) order.

Constants computed inside the graph (paddle2onnx builds LSTM weights with Unsqueeze/Slice/Concat, biases
with Reshape) are folded first with a small numpy evaluator, so weights are found by structure, never by
their generic names or index offsets.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConversionError, SourceFormatError
from ppocr_torch.formats.source_ops import SourceOp, fold_bn_into_conv


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _slice(data, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    idx = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(idx)]


def _fold(node, args, attrs):
    op = node.op_type
    if op == "Identity":
        return args[0]
    if op == "Unsqueeze":
        axes = attrs.get("axes", args[1] if len(args) > 1 else None)
        out = args[0]
        for a in sorted(int(x) if x >= 0 else int(x) + out.ndim + 1 for x in axes):
            out = np.expand_dims(out, a)
        return out
    if op == "Squeeze":
        axes = attrs.get("axes", args[1] if len(args) > 1 else None)
        return np.squeeze(args[0], axis=None if axes is None else tuple(int(a) for a in axes))
    if op == "Concat":
        return np.concatenate(args, axis=attrs["axis"])
    if op == "Slice":
        if "starts" in attrs:  # opset < 10
            return _slice(args[0], attrs["starts"], attrs["ends"], attrs.get("axes"))
        return _slice(args[0], args[1], args[2], *(args[3:5] if len(args) > 3 else ()))
    if op == "Reshape":
        shape = [int(s) for s in args[1]]
        shape = [args[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return args[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op == "Cast":
        import onnx

        return args[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    return None


FOLDABLE = {"Identity", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape", "Transpose", "Cast"}


class OnnxGraph:
    """Folded constants, alias-resolved edges and consumer lists of one ONNX graph."""

    def __init__(self, model):
        import onnx
        from onnx import numpy_helper

        self.model = model
        g = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.alias = {}
        self.nodes = []
        for node in g.node:
            if node.op_type == "Constant":
                a = node.attribute[0]
                self.consts[node.output[0]] = (numpy_helper.to_array(a.t) if a.name == "value"
                                               else np.array(onnx.helper.get_attribute_value(a)))
                continue
            ins = [self.resolve(i) for i in node.input]
            if node.op_type in FOLDABLE and all(i == "" or i in self.consts for i in ins):
                val = _fold(node, [self.consts[i] if i else None for i in ins], _attrs(node))
                if val is not None:
                    self.consts[node.output[0]] = val
                    continue
            if node.op_type == "Identity":
                self.alias[node.output[0]] = ins[0]
                continue
            self.nodes.append(node)
        self.consumers = {}
        for node in self.nodes:
            for i in node.input:
                self.consumers.setdefault(self.resolve(i), []).append(node)

    def resolve(self, name):
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, name):
        return self.consts.get(self.resolve(name))

    def only_consumer(self, name, op_type=None):
        users = self.consumers.get(self.resolve(name), [])
        if len(users) == 1 and (op_type is None or users[0].op_type == op_type):
            return users[0]
        return None

    def graph_outputs(self):
        return {o.name for o in self.model.graph.output}


def _conv_pads(attrs, kernel):
    """Effective (top, left, bottom, right) padding of an ONNX Conv/Pool (stride-1 SAME resolved)."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for k in kernel:
            total = k - 1
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    return (p[0], p[1], p[2], p[3])


def _bias_add(graph, out, size):
    """If ``out`` flows only into an Add with a constant of ``size`` elements, return (bias, add_output)."""
    add = graph.only_consumer(out, "Add")
    if add is None or out in graph.graph_outputs():
        return None, out
    a, b = (graph.resolve(i) for i in add.input)
    other = b if a == graph.resolve(out) else a
    c = graph.const(other)
    if c is None or c.size != size:
        return None, out
    return c.reshape(-1).astype(np.float32), add.output[0]


def _layernorm_at(graph, sqrt_node):
    """Match the decomposed LayerNorm ending at ``sqrt_node``: returns (gamma, beta, eps, output, used)."""
    def producer(name):
        name = graph.resolve(name)
        for n in graph.nodes:
            if name in n.output:
                return n
        return None

    add_eps = producer(sqrt_node.input[0])
    if add_eps is None or add_eps.op_type != "Add":
        return None
    eps = next((graph.const(i) for i in add_eps.input if graph.const(i) is not None), None)
    div = graph.only_consumer(sqrt_node.output[0], "Div")
    if eps is None or div is None:
        return None
    mul = graph.only_consumer(div.output[0], "Mul")
    if mul is None:
        return None
    gamma = next((graph.const(i) for i in mul.input if graph.const(i) is not None), None)
    add = graph.only_consumer(mul.output[0], "Add")
    beta = None if add is None else next((graph.const(i) for i in add.input if graph.const(i) is not None), None)
    if gamma is None or beta is None:
        return None
    return gamma.reshape(-1), beta.reshape(-1), float(np.asarray(eps).reshape(-1)[0]), add.output[0], {id(add)}


def _scalar_affine(graph, mul):
    """Match ``Add(Mul(x, s), b)`` where ``s`` and ``b`` are constants of shape [1] (a learnable affine such as
    PPLCNetV3's LearnableAffineBlock: two parameters of shape [1]). Returns (scale, bias, output, add) or None.

    Rank-1 constants only: a Paddle ``scale`` op (e.g. attention's ``q * scale``) exports its bias as a rank-0
    constant and must not be taken for a parameter."""
    consts = [graph.const(i) for i in mul.input]
    if len(consts) != 2 or sum(c is None for c in consts) != 1:
        return None
    scale = next(c for c in consts if c is not None)
    if scale.shape != (1,) or mul.output[0] in graph.graph_outputs():
        return None
    add = graph.only_consumer(mul.output[0], "Add")
    if add is None:
        return None
    a, b = (graph.resolve(i) for i in add.input)
    other = b if a == graph.resolve(mul.output[0]) else a
    bias = graph.const(other)
    if bias is None or bias.shape != (1,):
        return None
    return scale.astype(np.float32), bias.astype(np.float32), add.output[0], add


def _axes(graph, node):
    """The ``axes`` of an Unsqueeze/Squeeze node (attribute up to opset 12, input from opset 13)."""
    axes = _attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = graph.const(node.input[1])
    return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


def _conv1d_output(graph, node, weight):
    """Paddle's Conv1D exports as Unsqueeze(axes=[2]) -> Conv (kernel height 1) -> Squeeze(axes=[2]).

    Returns the Squeeze's output name when ``node`` is such a conv, else None.
    """
    if weight.ndim != 4 or weight.shape[2] != 1:
        return None
    squeeze = graph.only_consumer(node.output[0], "Squeeze")
    src = graph.resolve(node.input[0])
    unsqueeze = next((n for n in graph.nodes if src in n.output), None)
    if squeeze is None or unsqueeze is None or unsqueeze.op_type != "Unsqueeze":
        return None
    if _axes(graph, squeeze) != [2] or _axes(graph, unsqueeze) != [2]:
        return None
    return squeeze.output[0]


# ONNX LSTM gate blocks are (i, o, f, c); torch's are (i, f, g=c, o)
_ONNX_TO_TORCH_GATES = (0, 2, 3, 1)


def _lstm_gates(x, hidden):
    blocks = [x[..., k * hidden:(k + 1) * hidden, :] if x.ndim == 2 else x[k * hidden:(k + 1) * hidden]
              for k in range(4)]
    return np.concatenate([blocks[k] for k in _ONNX_TO_TORCH_GATES], axis=0)


def _deconv_op(graph, node, a, used):
    """A transposed convolution (DB heads' 2x upsampling) with the bias ``Add`` and ``BatchNormalization`` that
    follow it folded in: SourceOp kind "deconv", weight [in, out/groups, kh, kw] as in ONNX and torch."""
    w = graph.const(node.input[1]).astype(np.float32)
    groups = a.get("group", 1)
    out_c = w.shape[1] * groups
    bias = graph.const(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2] else None
    out = node.output[0]
    extra, new_out = _bias_add(graph, out, out_c)
    if extra is not None:
        used.add(id(graph.only_consumer(out)))
        bias = extra if bias is None else bias + extra
        out = new_out
    bn = graph.only_consumer(out, "BatchNormalization")
    if bn is not None:
        if groups != 1:
            raise SourceFormatError(f"ConvTranspose node {node.name!r}: a BatchNorm after a grouped transposed "
                                    f"convolution is not supported")
        used.add(id(bn))
        g_, b_, m_, v_ = (graph.const(i) for i in bn.input[1:5])
        wt, bias = fold_bn_into_conv(w.transpose(1, 0, 2, 3), bias, g_, b_, m_, v_, _attrs(bn).get("epsilon", 1e-5))
        w = wt.transpose(1, 0, 2, 3)
        out = bn.output[0]
    if bias is None:
        bias = np.zeros(out_c, np.float32)
    if a.get("output_shape") is not None or any(a.get("output_padding", [0, 0])):
        raise SourceFormatError(f"ConvTranspose node {node.name!r}: output_shape/output_padding are not supported")
    kernel = list(w.shape[2:])
    attrs = {"stride": tuple(a.get("strides", [1, 1])), "padding": _conv_pads(a, kernel), "groups": groups,
             "dilation": tuple(a.get("dilations", [1, 1]))}
    return SourceOp("deconv", {"weight": np.ascontiguousarray(w), "bias": bias}, attrs, output=out,
                    source_names=tuple(node.input[1:]))


def read_onnx_ops(path_or_model) -> tuple[list[SourceOp], object]:
    """Return (ops, graph) for an ONNX file or ``onnx.ModelProto``."""
    try:
        return _read_onnx_ops(path_or_model)
    except (SourceFormatError, ConversionError):
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        # a graph whose operands are not what their op needs (a missing or non-constant weight, a wrong rank)
        raise SourceFormatError(f"{path_or_model}: malformed ONNX graph ({type(exc).__name__}: {exc})") from exc


def _read_onnx_ops(path_or_model):
    import onnx

    try:
        model = onnx.load(str(path_or_model)) if not isinstance(path_or_model, onnx.ModelProto) else path_or_model
    except Exception as exc:  # onnx raises DecodeError / google.protobuf errors for corrupt files
        raise SourceFormatError(f"{path_or_model}: not a readable ONNX model ({exc})") from exc
    graph = OnnxGraph(model)
    ops, used = [], set()
    for node in graph.nodes:
        if id(node) in used:
            continue
        t = node.op_type
        a = _attrs(node)
        if t == "Conv" and graph.const(node.input[1]) is not None:
            w = graph.const(node.input[1]).astype(np.float32)
            bias = graph.const(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2] else None
            out = node.output[0]
            conv1d_out = _conv1d_output(graph, node, w)
            if conv1d_out is not None:  # a 1-D conv: fold what follows its Squeeze, emit a [O, I/g, k] weight
                out = conv1d_out
            extra, new_out = _bias_add(graph, out, w.shape[0])
            if extra is not None:
                used.add(id(graph.only_consumer(out)))
                bias = extra if bias is None else bias + extra
                out = new_out
            bn = graph.only_consumer(out, "BatchNormalization")
            if bn is not None:
                used.add(id(bn))
                g_, b_, m_, v_ = (graph.const(i) for i in bn.input[1:5])
                w, bias = fold_bn_into_conv(w, bias, g_, b_, m_, v_, _attrs(bn).get("epsilon", 1e-5))
                out = bn.output[0]
            if bias is None:
                bias = np.zeros(w.shape[0], np.float32)
            kernel = list(w.shape[2:])
            attrs = {"stride": tuple(a.get("strides", [1, 1])), "padding": _conv_pads(a, kernel),
                     "groups": a.get("group", 1), "dilation": tuple(a.get("dilations", [1, 1]))}
            if conv1d_out is not None:  # width axis only; padding as (left, right)
                w = np.ascontiguousarray(w[:, :, 0, :])
                attrs = {"stride": attrs["stride"][1:], "padding": attrs["padding"][1::2],
                         "groups": attrs["groups"], "dilation": attrs["dilation"][1:]}
            ops.append(SourceOp("conv", {"weight": w, "bias": bias}, attrs,
                                output=out, source_names=tuple(node.input[1:])))
        elif t == "ConvTranspose" and graph.const(node.input[1]) is not None:
            ops.append(_deconv_op(graph, node, a, used))
        elif t in ("MatMul", "Gemm") and graph.const(node.input[1]) is not None and graph.const(node.input[1]).ndim == 2:
            w = graph.const(node.input[1]).astype(np.float32)
            w = w if (t == "Gemm" and a.get("transB", 0)) else w.T  # torch layout [out, in]
            bias, out = None, node.output[0]
            if t == "Gemm" and len(node.input) > 2 and node.input[2]:
                bias = graph.const(node.input[2]).astype(np.float32).reshape(-1)
            else:
                bias, new_out = _bias_add(graph, out, w.shape[0])
                if bias is not None:
                    used.add(id(graph.only_consumer(out)))
                    out = new_out
            params = {"weight": np.ascontiguousarray(w)}
            if bias is not None:
                params["bias"] = bias
            ops.append(SourceOp("linear", params, {}, output=out, source_names=tuple(node.input[1:])))
        elif t == "LayerNormalization":
            gamma = graph.const(node.input[1]).reshape(-1)
            beta = graph.const(node.input[2]).reshape(-1)
            ops.append(SourceOp("layernorm", {"weight": gamma, "bias": beta}, {"eps": a.get("epsilon", 1e-5)},
                                output=node.output[0]))
        elif t == "Sqrt":
            ln = _layernorm_at(graph, node)
            if ln is not None:
                gamma, beta, eps, out, u = ln
                used |= u
                ops.append(SourceOp("layernorm", {"weight": gamma.astype(np.float32), "bias": beta.astype(np.float32)},
                                    {"eps": eps}, output=out))
        elif t == "Mul":
            aff = _scalar_affine(graph, node)
            if aff is not None:
                scale, bias, out, add = aff
                used.add(id(add))
                ops.append(SourceOp("affine", {"scale": scale, "bias": bias}, {}, output=out,
                                    source_names=tuple(i for i in (*node.input, *add.input) if graph.const(i) is not None)))
        elif t == "BatchNormalization":
            g_, b_, m_, v_ = (graph.const(i) for i in node.input[1:5])
            ops.append(SourceOp("batchnorm", {"weight": g_, "bias": b_, "running_mean": m_, "running_var": v_},
                                {"eps": a.get("epsilon", 1e-5)}, output=node.output[0]))
        elif t == "LSTM":
            h = a["hidden_size"]
            W, R = graph.const(node.input[1]), graph.const(node.input[2])
            B = graph.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            if W is None or R is None:
                raise SourceFormatError(f"LSTM node {node.name!r}: weights are not constant after folding")
            if a.get("activations") not in (None, [b"Sigmoid", b"Tanh", b"Tanh"] * (W.shape[0])):
                raise SourceFormatError(f"LSTM node {node.name!r}: non-default activations {a['activations']}")
            params = {}
            for d in range(W.shape[0]):
                sfx = "_reverse" if d == 1 else ""
                params["weight_ih" + sfx] = _lstm_gates(W[d], h).astype(np.float32)
                params["weight_hh" + sfx] = _lstm_gates(R[d], h).astype(np.float32)
                bias = np.zeros(8 * h, np.float32) if B is None else B[d]
                params["bias_ih" + sfx] = _lstm_gates(bias[:4 * h], h).astype(np.float32)
                params["bias_hh" + sfx] = _lstm_gates(bias[4 * h:], h).astype(np.float32)
            direction = a.get("direction", b"forward")
            ops.append(SourceOp("lstm", params, {"hidden_size": h, "bidirectional": direction == b"bidirectional"},
                                output=node.output[0]))
    return ops, graph
