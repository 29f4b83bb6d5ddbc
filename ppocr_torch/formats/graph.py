"""A Paddle inference program as a plain graph: ops in program order, values with their producer and users,
and the constants (parameters and what folds from them).

Both storage formats become this one graph, with PIR's op and input names (``pd_op.conv2d`` with inputs
``input``/``filter``, ``pd_op.batch_norm_`` with ``x``/``mean``/``variance``/``scale``/``bias`` ...):
``pir_json`` reads Paddle 3's ``inference.json`` and ``program_desc`` the older ``inference.pdmodel``.
``conversion.readers.paddle_inference`` builds the same graph from a program that Paddle itself loaded;
``source_ops.extract_ops`` reads parametric ops from any of them.

Values are named ``<op type>@<op index>.<result index>``, after their producer's position in the program.
"""

from __future__ import annotations

import numpy as np

from ..errors import SourceFormatError

# PIR's operand names of the ops whose operands are read by name
INPUT_NAMES = {
    "pd_op.conv2d": ("input", "filter"),
    "pd_op.depthwise_conv2d": ("input", "filter"),
    "pd_op.conv2d_transpose": ("x", "filter", "output_size"),
    "pd_op.batch_norm": ("x", "mean", "variance", "scale", "bias"),
    "pd_op.batch_norm_": ("x", "mean", "variance", "scale", "bias"),
    "pd_op.layer_norm": ("x", "scale", "bias"),
    "pd_op.rnn": ("x", "pre_state", "weight_list", "sequence_length", "dropout_state_in"),
    "pd_op.matmul": ("x", "y"),
    "pd_op.add": ("x", "y"),
    "pd_op.multiply": ("x", "y"),
}


class Value:
    """One op result. ``users`` are the ops that take it, in program order."""

    __slots__ = ("op", "index", "users")

    def __init__(self, op: Op, index: int):
        self.op = op
        self.index = index
        self.users: list[Op] = []

    @property
    def name(self) -> str:
        return f"{self.op.type}@{self.op.index}.{self.index}"


class Op:
    """One op: PIR type name, operands (``None`` for an absent optional one), results and attributes."""

    __slots__ = ("type", "index", "inputs", "outputs", "attrs")

    def __init__(self, type_: str, index: int, inputs: list, n_outputs: int, attrs: dict):
        self.type = type_
        self.index = index
        self.inputs = list(inputs)
        self.outputs = [Value(self, i) for i in range(n_outputs)]
        self.attrs = attrs
        for v in self.inputs:
            if v is not None:
                v.users.append(self)

    def named_inputs(self) -> dict:
        names = INPUT_NAMES.get(self.type)
        if names is None:
            raise SourceFormatError(f"op {self.type} #{self.index}: operand names unknown")
        return dict(zip(names, self.inputs))


class Graph:
    """Ops in program order plus folded constants; ``parameters`` maps a parameter's name to its array."""

    def __init__(self, path, parameters: dict):
        self.path = path
        self.ops: list[Op] = []
        self.parameters = parameters
        self.consts: dict[Value, np.ndarray] = {}
        self.param_names: dict[Value, str] = {}

    def add(self, type_: str, inputs: list, n_outputs: int = 1, attrs: dict | None = None) -> Op:
        op = Op(type_, len(self.ops), inputs, n_outputs, attrs or {})
        self.ops.append(op)
        return op

    # ----- queries ----------------------------------------------------------------------------------------
    def const(self, value):
        return None if value is None else self.consts.get(value)

    def only_user(self, value, types=None):
        """The single op taking ``value`` (of one of ``types``), or None."""
        users = value.users
        if len(users) == 1 and (types is None or users[0].type in ((types,) if isinstance(types, str) else types)):
            return users[0]
        return None

    def param_source(self, value) -> tuple:
        """Names of the parameters a constant operand was computed from."""
        if value is None:
            return ()
        if value in self.param_names:
            return (self.param_names[value],)
        out = ()
        for v in value.op.inputs:
            out += self.param_source(v)
        return out

    def value_by_name(self, name: str) -> Value:
        _, _, pos = name.rpartition("@")
        idx, _, res = pos.partition(".")
        return self.ops[int(idx)].outputs[int(res)]

    # ----- constants --------------------------------------------------------------------------------------
    def fold_constants(self) -> None:
        """Parameters, ``full``/``full_int_array`` and the shape ops applied to them, as numpy arrays."""
        for op in self.ops:
            out = _fold(self, op)
            if out is not None:
                self.consts[op.outputs[0]] = out
        used = len(self.param_names)
        if used != len(self.parameters):
            raise SourceFormatError(f"{self.path}: the parameter file holds {len(self.parameters)} tensors but the "
                                    f"program has {used} parameters (files of two different exports?)")


def _fold(graph: Graph, op: Op):
    t, a = op.type, op.attrs
    vals = [graph.const(v) for v in op.inputs]
    if t == "builtin.parameter":
        name = a["parameter_name"]
        if name not in graph.parameters:
            raise SourceFormatError(f"{graph.path}: parameter {name!r} of the program is not in the parameter file")
        out = graph.parameters[name]
        want = a.get("shape")
        if want and all(s >= 0 for s in want) and list(out.shape) != list(want):
            raise SourceFormatError(f"{graph.path}: parameter {name!r} has shape {list(out.shape)} in the parameter "
                                    f"file, the program declares {list(want)}")
        graph.param_names[op.outputs[0]] = name
        return out
    if t == "pd_op.full_int_array":
        return np.array(a["value"], dtype=np.int64)
    if t == "pd_op.full":
        shape = [int(d) for d in a.get("shape", [])]
        if any(d < 0 for d in shape) or op.inputs:  # sized at run time (a batch-sized LSTM state): not a constant
            return None
        dtype = np.float32 if "float" in str(a["dtype"]).lower() else np.int64
        return np.full(shape, a["value"], dtype=dtype)
    if not vals or vals[0] is None:
        return None
    if t in ("pd_op.assign", "pd_op.cast"):
        return vals[0]
    if t == "pd_op.reshape" and len(vals) >= 2 and vals[1] is not None:
        shape = [int(s) for s in vals[1].reshape(-1)]
        shape = [vals[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return vals[0].reshape(shape)
    if t == "pd_op.transpose":
        return np.transpose(vals[0], a["perm"])
    if t in ("pd_op.squeeze", "pd_op.unsqueeze") and len(vals) >= 2 and vals[1] is not None:
        axes = [int(x) for x in np.asarray(vals[1]).reshape(-1)]
        out = vals[0]
        if t == "pd_op.squeeze":
            return np.squeeze(out, axis=tuple(x % out.ndim for x in axes)) if axes else np.squeeze(out)
        for x in sorted(x if x >= 0 else x + out.ndim + 1 for x in axes):
            out = np.expand_dims(out, x)
        return out
    return None
