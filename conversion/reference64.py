"""The official graph evaluated in float64: the exact function the official runtime approximates in fp32.

ONNX Runtime's CPU kernels are fp32-only for convolutions, so an ONNX graph runs in ``onnx.reference`` (numpy)
instead: every float32 initializer, ``Constant`` and ``Cast`` target is widened to float64, the weights keep
their exact float32 values. Paddle Inference cannot run a float32 program in float64 either, so a Paddle
inference program is interpreted op by op (``PaddleFloat64Reference``). Comparing this with our model evaluated in float64 takes fp32 rounding out of both
sides, which is what makes a parity check decisive on the lines where a network amplifies rounding (a wrong
LayerNorm epsilon changes the output there by 2.5e-4; a correct conversion by < 1e-5).
"""

import numpy as np

from .errors import ConversionError


def _widen(model):
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    for i, t in enumerate(graph.initializer):
        if t.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    del graph.value_info[:]
    return model


def _exact_ops():
    from onnx.reference.op_run import OpRun

    class BatchNormalization(OpRun):
        """Inference BatchNorm for every opset (onnx.reference treats a ``momentum`` attribute as training)."""

        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=1e-5, momentum=None, training_mode=None, spatial=None,
                 is_test=None):
            shape = (-1,) + (1,) * (x.ndim - 2)
            inv = scale.reshape(shape) / np.sqrt(var.reshape(shape) + epsilon)
            return ((x - mean.reshape(shape)) * inv + bias.reshape(shape),)

    class HardSwish(OpRun):
        """``x * clip(x / 6 + 1/2, 0, 1)`` with alpha exactly 1/6 as the operator is specified (onnx.reference
        evaluates its function body, whose float attribute rounds 1/6 to float32)."""

        op_domain = ""

        def _run(self, x):
            return (x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,)

    return [BatchNormalization, HardSwish]


class Float64Reference:
    """``run(x) -> array``: the official ONNX graph's final output, computed in float64."""

    def __init__(self, onnx_path):
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = _widen(onnx.load(str(onnx_path)))
        try:
            self.evaluator = ReferenceEvaluator(model, new_ops=_exact_ops())
        except Exception as exc:  # an op the reference implementation lacks
            raise ConversionError(f"{onnx_path}: cannot evaluate the graph in float64: {exc}") from exc
        self.input_name = model.graph.input[0].name
        self.output_name = model.graph.output[0].name

    def run(self, x):
        return self.evaluator.run([self.output_name], {self.input_name: np.asarray(x, dtype=np.float64)})[0]


# -- Paddle inference programs ---------------------------------------------------------------------------------

class PaddleFloat64Reference:
    """``run(x) -> array``: a Paddle inference program evaluated op by op in float64 (torch on the CPU).

    Paddle Inference cannot run a float32 program in float64, so the program's ops are interpreted here: every
    op type of the official recognition exports (convolutions, BatchNorm, activations, pooling, LayerNorm,
    matmul, softmax and the shape ops around them), with the program's own parameters and float attributes. An
    op type it does not know raises ``NotImplementedError`` naming it (the caller then falls back).
    """

    def __init__(self, path):
        from .readers.paddle_inference import load_program

        self.prog = load_program(path)
        unknown = sorted({op.name() for op in self.prog.ops if op.name() not in _PADDLE_OPS
                          and op.name() not in _PADDLE_PASS
                          and op.name() not in ("pd_op.fetch", "pd_op.data", "builtin.combine")})
        if unknown:
            raise NotImplementedError(f"no float64 evaluation for Paddle ops {unknown}")

    def run(self, x):
        import torch

        prog, env = self.prog, {}

        def get(value):
            if value is None or not value.initialized():
                return None
            k = prog.key(value)
            if k in env:
                return env[k]
            c = prog.const(value)
            if c is None:
                raise NotImplementedError(f"value {prog.name(value)} was not computed")
            return torch.from_numpy(np.asarray(c, dtype=np.float64) if np.asarray(c).dtype.kind == "f"
                                    else np.asarray(c))

        out = None
        for op in prog.ops:
            t = op.name()
            if t in _PADDLE_PASS:
                continue
            if t == "pd_op.data":
                env[(op.id(), 0)] = torch.from_numpy(np.asarray(x, dtype=np.float64))
                continue
            if t == "pd_op.fetch":
                out = get(op.operand_source(0))
                continue
            ins = op.operands_source()
            if t == "builtin.combine":
                env[(op.id(), 0)] = [get(v) for v in ins]
                continue
            res = _PADDLE_OPS[t](op.attrs(), [get(v) for v in ins], _input_names(op))
            for i, r in enumerate(res if isinstance(res, tuple) else (res,)):
                env[(op.id(), i)] = r
        if out is None:
            raise NotImplementedError("the program has no fetch op")
        return out.numpy()


def _input_names(op):
    try:
        return op.get_input_names()
    except Exception:  # builtin ops
        return []


def _ints(v):
    return [int(i) for i in np.asarray(v).reshape(-1)] if v is not None else []


def _conv(a, ins, names):
    import torch.nn.functional as F

    x, w = ins[0], ins[1]
    k = list(w.shape[2:])
    strides, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    algo = a.get("padding_algorithm", "EXPLICIT")
    if algo == "VALID":
        pads = [0, 0, 0, 0]
    elif algo == "SAME":
        pads = []
        for i in range(2):
            size = x.shape[2 + i]
            total = max((-(-size // strides[i]) - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 - size, 0)
            pads += [total // 2, total - total // 2]
    else:
        p = list(a.get("paddings", [0, 0]))
        pads = [p[0], p[0], p[1], p[1]] if len(p) == 2 else p  # (top, bottom, left, right)
    x = F.pad(x, [pads[2], pads[3], pads[0], pads[1]])
    return F.conv2d(x, w, None, strides, 0, dil, int(a.get("groups", 1)))


def _batch_norm(a, ins, names):
    v = dict(zip(names, ins))
    shape = (1, -1) + (1,) * (v["x"].ndim - 2)
    inv = v["scale"].reshape(shape) / (v["variance"].reshape(shape) + a["epsilon"]).sqrt()
    return (v["x"] - v["mean"].reshape(shape)) * inv + v["bias"].reshape(shape)


def _pool(a, ins, names):
    import torch.nn.functional as F

    x, k = ins[0], _ints(ins[1])
    if a.get("global_pooling"):
        k, a = [1, 1], dict(a, adaptive=True)
    if a.get("adaptive"):
        return (F.adaptive_avg_pool2d if a["pooling_type"] == "avg" else F.adaptive_max_pool2d)(x, k)
    p = list(a.get("paddings", [0, 0]))
    if len(p) != 2:
        raise NotImplementedError("pool2d with asymmetric padding")
    if a["pooling_type"] == "max":
        return F.max_pool2d(x, k, a["strides"], p, ceil_mode=a.get("ceil_mode", False))
    return F.avg_pool2d(x, k, a["strides"], p, ceil_mode=a.get("ceil_mode", False),
                        count_include_pad=not a.get("exclusive", True))


def _layer_norm(a, ins, names):
    x, scale, bias = (ins + [None, None])[:3]
    axis = int(a.get("begin_norm_axis", x.ndim - 1))
    dims = tuple(range(axis, x.ndim))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    y = (x - mean) / (var + a["epsilon"]).sqrt()
    shape = x.shape[axis:]
    if scale is not None:
        y = y * scale.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _matmul(a, ins, names):
    x, y = ins
    if a.get("transpose_x"):
        x = x.transpose(-1, -2)
    if a.get("transpose_y"):
        y = y.transpose(-1, -2)
    return x @ y


def _scale(a, ins, names):
    s = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("scale", 1.0)
    return ins[0] * s + a.get("bias", 0.0) if a.get("bias_after_scale", True) else (ins[0] + a.get("bias", 0.0)) * s


def _slice(a, ins, names):
    x, starts, ends = ins[0], _ints(ins[1]), _ints(ins[2])
    idx = [slice(None)] * x.ndim
    for ax, s, e in zip(a["axes"], starts, ends):
        n = x.shape[ax]
        s, e = max(s + n, 0) if s < 0 else min(s, n), max(e + n, 0) if e < 0 else min(e, n)
        idx[ax] = slice(s, e)
    out = x[tuple(idx)]
    for ax in sorted(a.get("decrease_axis", []), reverse=True):
        out = out.squeeze(ax)
    return out


def _reshape(a, ins, names):
    x, shape = ins[0], ins[1]
    shape = [s for part in shape for s in _ints(part)] if isinstance(shape, list) else _ints(shape)
    return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])


def _squeeze(a, ins, names):
    x, axes = ins[0], _ints(ins[1]) if len(ins) > 1 else []
    for ax in sorted((ax % x.ndim for ax in axes), reverse=True):
        x = x.squeeze(ax)
    return x if axes else x.squeeze()


def _unsqueeze(a, ins, names):
    x = ins[0]
    for ax in sorted(ax if ax >= 0 else ax + x.ndim + 1 for ax in _ints(ins[1])):
        x = x.unsqueeze(ax)
    return x


def _flatten(a, ins, names):
    return ins[0].flatten(a["start_axis"], a["stop_axis"])


def _concat(a, ins, names):
    import torch

    return torch.cat(ins[0], dim=_ints(ins[1])[0] if len(ins) > 1 else int(a.get("axis", 0)))


def _stack(a, ins, names):
    import torch

    return torch.stack([v.reshape(()) if v.ndim == 1 and v.numel() == 1 else v for v in ins[0]], dim=a["axis"])


def _gelu(a, ins, names):
    import torch.nn.functional as F

    return F.gelu(ins[0], approximate="tanh" if a.get("approximate") else "none")


def _shape(a, ins, names):
    import torch

    return torch.tensor(list(ins[0].shape), dtype=torch.int64)


def _softmax(a, ins, names):
    return ins[0].softmax(int(a.get("axis", -1)))


_PADDLE_PASS = {"builtin.parameter", "builtin.constant", "pd_op.full", "pd_op.full_int_array"}
_PADDLE_OPS = {
    "pd_op.conv2d": _conv, "pd_op.depthwise_conv2d": _conv, "pd_op.batch_norm_": _batch_norm,
    "pd_op.batch_norm": _batch_norm, "pd_op.pool2d": _pool, "pd_op.layer_norm": _layer_norm,
    "pd_op.matmul": _matmul, "pd_op.scale": _scale, "pd_op.slice": _slice, "pd_op.reshape": _reshape,
    "pd_op.squeeze": _squeeze, "pd_op.unsqueeze": _unsqueeze, "pd_op.flatten": _flatten, "pd_op.concat": _concat,
    "pd_op.stack": _stack, "pd_op.shape64": _shape, "pd_op.shape": _shape, "pd_op.softmax": _softmax,
    "pd_op.gelu": _gelu,
    "pd_op.add": lambda a, i, n: i[0] + i[1], "pd_op.subtract": lambda a, i, n: i[0] - i[1],
    "pd_op.multiply": lambda a, i, n: i[0] * i[1], "pd_op.divide": lambda a, i, n: i[0] / i[1],
    "pd_op.transpose": lambda a, i, n: i[0].permute(*a["perm"]),
    "pd_op.hardswish": lambda a, i, n: i[0] * (i[0] + 3.0).clamp(0.0, 6.0) / 6.0,
    "pd_op.hardsigmoid": lambda a, i, n: (i[0] * a["slope"] + a["offset"]).clamp(0.0, 1.0),
    "pd_op.relu": lambda a, i, n: i[0].clamp_min(0.0),
    "pd_op.swish": lambda a, i, n: i[0] * i[0].sigmoid(), "pd_op.sigmoid": lambda a, i, n: i[0].sigmoid(),
    "pd_op.assign": lambda a, i, n: i[0], "pd_op.dropout": lambda a, i, n: i[0],
}
