"""Paddle's ProgramDesc protobuf (``*.pdmodel``, ``__model__``, 1.x ``model``; ``framework/framework.proto``),
decoded without Paddle or the protobuf package into blocks, variables and ops."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SourceFormatError
from .lod_tensor import DTYPES, FEED_MINIBATCH, FETCH_LIST, RAW, READER, VAR_TYPE_NAMES, read_bytes
from .protobuf import fields, parse_tensor_desc, repeated_fixed, repeated_varints, signed64, text

@dataclass
class VarInfo:
    name: str
    type: int  # VarType.Type
    persistable: bool = False
    dtype: int | None = None
    shape: list = field(default_factory=list)

    @property
    def type_name(self):
        return VAR_TYPE_NAMES.get(self.type, DTYPES.get(self.type, (str(self.type),))[0])


@dataclass
class OpInfo:
    type: str
    inputs: dict  # parameter -> [argument names]
    outputs: dict
    attrs: dict


@dataclass
class BlockInfo:
    idx: int
    parent_idx: int
    vars: dict  # name -> VarInfo
    ops: list


@dataclass
class ProgramInfo:
    blocks: list
    version: int | None = None

    @property
    def global_block(self):
        return self.blocks[0]

    def persistable_names(self):
        """Names of the persistable tensors the program loads (fluid ``is_persistable``: not feed, fetch,
        reader or raw variables), i.e. the records of its parameter files."""
        skip = (FEED_MINIBATCH, FETCH_LIST, READER, RAW)
        return [v.name for v in self.global_block.vars.values() if v.persistable and v.type not in skip]

    def ops_using(self, var_name):
        return [op for op in self.global_block.ops
                if any(var_name in args for args in op.inputs.values())]


_ATTR_TYPES = {0: "i", 1: "f", 2: "s", 3: "ints", 4: "floats", 5: "strings", 6: "b", 7: "bools", 8: "block_idx",
               9: "l", 10: "blocks_idx", 11: "longs"}


def _parse_attr(data, path):
    what = "OpDesc.Attr"
    name, atype, vals = None, None, {}
    for num, wire, value in fields(data, path, what):
        if num == 1:
            name = text(value, path, what)
        elif num == 2:
            atype = value
        elif num in (3, 10, 12):  # i, b, block_idx
            vals[num] = signed64(value)
        elif num == 13:  # l
            vals[num] = signed64(value)
        elif num == 4:
            vals[num] = repeated_fixed(wire, value, "f", path, what)[0]
        elif num == 5:
            vals[num] = text(value, path, what)
        elif num in (6, 11, 14, 15):  # ints, bools, blocks_idx, longs
            vals.setdefault(num, []).extend(signed64(v) for v in repeated_varints(wire, value, path, what))
        elif num == 7:
            vals.setdefault(num, []).extend(repeated_fixed(wire, value, "f", path, what))
        elif num == 8:
            vals.setdefault(num, []).append(text(value, path, what))
    if name is None:
        raise SourceFormatError(f"{path}: corrupt program: an op attribute without a name")
    by_kind = {"i": vals.get(3, 0), "f": vals.get(4, 0.0), "s": vals.get(5, ""), "ints": vals.get(6, []),
               "floats": vals.get(7, []), "strings": vals.get(8, []), "b": bool(vals.get(10, 0)),
               "bools": [bool(v) for v in vals.get(11, [])], "block_idx": vals.get(12, 0), "l": vals.get(13, 0),
               "blocks_idx": vals.get(14, []), "longs": vals.get(15, [])}
    kind = _ATTR_TYPES.get(atype)
    return name, (by_kind[kind] if kind else {n: v for n, v in vals.items()})


def _parse_op_vars(data, path):
    param, args = None, []
    for num, _, value in fields(data, path, "OpDesc.Var"):
        if num == 1:
            param = text(value, path, "OpDesc.Var")
        elif num == 2:
            args.append(text(value, path, "OpDesc.Var"))
    return param, args


def _parse_op(data, path):
    op = OpInfo(type="", inputs={}, outputs={}, attrs={})
    for num, _, value in fields(data, path, "OpDesc"):
        if num == 3:
            op.type = text(value, path, "OpDesc")
        elif num in (1, 2):
            p, a = _parse_op_vars(value, path)
            (op.inputs if num == 1 else op.outputs)[p] = a
        elif num == 4:
            k, v = _parse_attr(value, path)
            op.attrs[k] = v
    return op


def _parse_var(data, path):
    var = VarInfo(name="", type=-1)
    for num, wire, value in fields(data, path, "VarDesc"):
        if num == 1:
            var.name = text(value, path, "VarDesc")
        elif num == 2:
            for tnum, _, tval in fields(value, path, "VarType"):
                if tnum == 1:
                    var.type = tval
                elif tnum in (2, 3, 4):  # selected_rows (TensorDesc), lod_tensor / tensor_array (LoD...Desc)
                    desc = tval
                    if tnum in (3, 4):
                        desc = next((v for n, _, v in fields(tval, path, "LoDTensorDesc") if n == 1), None)
                    if desc is not None:
                        var.dtype, var.shape = parse_tensor_desc(desc, path, f"TensorDesc of {var.name!r}")
        elif num == 3:
            var.persistable = bool(value)
    return var


def parse_program(data, path="<program>"):
    """Decode a ProgramDesc protobuf (``__model__``, ``model``, ``*.pdmodel``) into blocks, vars and ops."""
    try:
        return _parse_program(data, path)
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, SourceFormatError):
            raise
        # a field of another wire type than the schema's (bytes where a number belongs, or the reverse)
        raise SourceFormatError(f"{path}: corrupt ProgramDesc (a field of an unexpected type: {exc})") from exc


def _parse_program(data, path):
    blocks, version = [], None
    for num, _, value in fields(data, path, "ProgramDesc"):
        if num == 1:
            block = BlockInfo(idx=0, parent_idx=-1, vars={}, ops=[])
            for bnum, _, bval in fields(value, path, "BlockDesc"):
                if bnum == 1:
                    block.idx = signed64(bval)
                elif bnum == 2:
                    block.parent_idx = signed64(bval)
                elif bnum == 3:
                    v = _parse_var(bval, path)
                    block.vars[v.name] = v
                elif bnum == 4:
                    block.ops.append(_parse_op(bval, path))
            blocks.append(block)
        elif num == 4:
            version = next((v for n, _, v in fields(value, path, "Version") if n == 1), 0)
    if not blocks:
        raise SourceFormatError(f"{path}: not a Paddle program (no block in the ProgramDesc)")
    return ProgramInfo(blocks=blocks, version=version)


def read_program(path):
    """:class:`ProgramInfo` of a saved fluid program file."""
    data = read_bytes(path)
    if data[:1] in (b"{", b"["):
        raise SourceFormatError(f"{path}: a Paddle 3 PIR program (JSON), not a 1.x ProgramDesc")
    return parse_program(data, path)


# ----- the program as a Graph, with PIR's op and operand names ----------------------------------------------

# legacy type -> (PIR type, operand slots in PIR order, result slots first in order)
_LEGACY_OPS = {
    "conv2d": ("pd_op.conv2d", ("Input", "Filter"), ("Output",)),
    "depthwise_conv2d": ("pd_op.depthwise_conv2d", ("Input", "Filter"), ("Output",)),
    "conv2d_transpose": ("pd_op.conv2d_transpose", ("Input", "Filter"), ("Output",)),
    "batch_norm": ("pd_op.batch_norm_", ("X", "Mean", "Variance", "Scale", "Bias"), ("Y",)),
    "layer_norm": ("pd_op.layer_norm", ("X", "Scale", "Bias"), ("Y",)),
    "elementwise_add": ("pd_op.add", ("X", "Y"), ("Out",)),
    "elementwise_mul": ("pd_op.multiply", ("X", "Y"), ("Out",)),
    "matmul_v2": ("pd_op.matmul", ("X", "Y"), ("Out",)),
    "matmul": ("pd_op.matmul", ("X", "Y"), ("Out",)),
    "rnn": ("pd_op.rnn", ("Input", "PreState", "WeightList", "SequenceLength", "DropoutState"), ("Out",)),
    "reshape2": ("pd_op.reshape", ("X",), ("Out",)),
    "transpose2": ("pd_op.transpose", ("X",), ("Out",)),
    "squeeze2": ("pd_op.squeeze", ("X",), ("Out",)),
    "unsqueeze2": ("pd_op.unsqueeze", ("X",), ("Out",)),
    "fill_constant": ("pd_op.full", (), ("Out",)),
    "feed": ("pd_op.data", (), ("Out",)),
    "fetch": ("pd_op.fetch", ("X",), ("Out",)),
}
_LIST_SLOTS = ("PreState", "WeightList")  # operands that PIR passes as one builtin.combine value
_DTYPE_NAMES = {5: "float32", 6: "float64", 4: "float16", 3: "int64", 2: "int32", 0: "bool"}


def _legacy_attrs(op, pir_type):
    a = dict(op.attrs)
    if op.type == "matmul_v2":
        a["transpose_x"], a["transpose_y"] = bool(a.get("trans_x")), bool(a.get("trans_y"))
    elif op.type == "matmul":
        a["transpose_x"], a["transpose_y"] = bool(a.get("transpose_X")), bool(a.get("transpose_Y"))
    elif op.type == "transpose2":
        a["perm"] = list(a.get("axis", []))
    elif op.type == "fill_constant":
        value = a.get("str_value") or a.get("value", 0.0)
        a["value"] = float(value)
        a["dtype"] = _DTYPE_NAMES.get(a.get("dtype"), str(a.get("dtype")))
    return a


def graph_from_program(program: ProgramInfo, parameters: dict, path):
    """The global block of ``program`` as a folded Graph (PIR op names), ``parameters`` by name."""
    from .graph import Graph

    graph = Graph(path, parameters)
    values = {}
    for name in sorted(program.persistable_names()):
        op = graph.add("builtin.parameter", [], 1, {"parameter_name": name,
                                                     "shape": program.global_block.vars[name].shape})
        values[name] = op.outputs[0]

    def value(arg):  # None: a variable no op writes (an unused optional input, a feed holder)
        return values.get(arg)

    for op in program.global_block.ops:
        pir_type, slots, firsts = _LEGACY_OPS.get(op.type, (f"pd_op.{op.type}", tuple(sorted(op.inputs)), ("Out",)))
        attrs = _legacy_attrs(op, pir_type)
        if op.type == "matmul" and float(attrs.get("alpha", 1.0)) != 1.0:
            pir_type = "pd_op.matmul_scaled"  # not a plain linear layer
        inputs = []
        for slot in slots:
            args = op.inputs.get(slot, [])
            if slot in _LIST_SLOTS:
                inputs.append(graph.add("builtin.combine", [value(a) for a in args]).outputs[0] if args else None)
            else:
                inputs += [value(a) for a in args] or [None]
        if op.type in ("reshape2", "squeeze2", "unsqueeze2"):
            key = "shape" if op.type == "reshape2" else "axes"
            inputs.append(graph.add("pd_op.full_int_array", [], 1, {"value": list(attrs.get(key, []))}).outputs[0])
        out_args = [a for slot in firsts for a in op.outputs.get(slot, [])]
        out_args += [a for slot, args in op.outputs.items() if slot not in firsts for a in args]
        new = graph.add(pir_type, inputs, len(out_args), attrs)
        for arg, v in zip(out_args, new.outputs):
            values[arg] = v
    graph.fold_constants()
    return graph
