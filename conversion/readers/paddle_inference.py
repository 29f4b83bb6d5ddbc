"""Read an official Paddle inference export into parametric ``SourceOp`` records, in program order.

Two storage formats exist: Paddle 3's PIR program (``inference.json``) and the older ProgramDesc protobuf
(``inference.pdmodel``), each with its combined parameter file ``inference.pdiparams``. Both are loaded
with Paddle itself (a build-time dependency, imported only inside functions): the PIR program as it is, the
ProgramDesc through Paddle's own translator into PIR, so that one walker serves both. Parameters are read
from a private scope, never from Paddle's global one.

Ops are recognised by structure, never by their generic names (``conv2d_12.w_0``): a convolution takes the
bias ``add`` and the ``batch_norm`` that follow it (folded), a ``matmul`` by a 2-D parameter is a linear
layer (Paddle stores [in, out]; SourceOps are in torch layout [out, in]) and takes the bias ``add`` after
it, ``layer_norm``/standalone ``batch_norm`` carry their epsilon, ``rnn`` in LSTM mode gives one op per
layer, and ``multiply`` by a one-element constant followed by ``add`` of one is a learnable affine (the
same patterns the ONNX reader recognises in paddle2onnx exports of the same models).

Tensor names: PIR values have no names, so each op output is named ``<op type>@<op index>.<result>``
after its position in the loaded program; ``conversion.paddle_runtime`` resolves those names again to
expose intermediate tensors.
"""

from pathlib import Path

import numpy as np

from ..errors import SourceFormatError
from ..ops import SourceOp, fold_bn_into_conv

MODEL_SUFFIXES = (".json", ".pdmodel")


def resolve_files(path):
    """(program file, parameter file) of a Paddle inference export given its folder or program file.

    A folder holds ``inference.json`` (preferred) or ``inference.pdmodel``; the parameters are the
    ``.pdiparams`` file with the program's stem. Missing files raise SourceFormatError naming them.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("inference.json", "inference.pdmodel"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise SourceFormatError(f"{path / 'inference.json'}: no Paddle inference program (inference.json or "
                                    f"inference.pdmodel) in {path}")
    if path.suffix not in MODEL_SUFFIXES:
        raise SourceFormatError(f"{path}: not a Paddle inference program (expected .json or .pdmodel)")
    if not path.is_file():
        raise SourceFormatError(f"{path}: Paddle inference program not found")
    params = path.with_suffix(".pdiparams")
    if not params.is_file():
        raise SourceFormatError(f"{params}: Paddle inference parameters not found (next to {path.name})")
    return path, params


# bytes per element of Paddle's VarType.Type codes (framework.proto)
_DTYPE_SIZES = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 19: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16, 32: 1, 33: 1}


def _read_varint(data, pos, end):
    value, shift = 0, 0
    while pos < end:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint runs past its field")


def _tensor_desc(desc):
    """(data type code, dims) of a serialized TensorDesc protobuf."""
    code, dims, pos = None, [], 0
    while pos < len(desc):
        tag, pos = _read_varint(desc, pos, len(desc))
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, pos = _read_varint(desc, pos, len(desc))
            if field == 1:
                code = v
            elif field == 2:
                dims.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif wire == 2:
            n, pos = _read_varint(desc, pos, len(desc))
            if field == 2:  # packed dims
                sub, end = pos, pos + n
                while sub < end:
                    v, sub = _read_varint(desc, sub, end)
                    dims.append(v - (1 << 64) if v >= 1 << 63 else v)
            pos += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    if code is None:
        raise ValueError("no data type")
    return code, dims


def check_params_file(path):
    """Walk the tensor records of a combined ``.pdiparams`` file; return how many it holds.

    Paddle itself reads a file cut inside the last tensor's data without complaint, so the structure is
    checked here first: every record must be complete and the file must end exactly after the last one.
    Record layout: uint32 version, uint64 lod_level, lod_level x (uint64 n, n bytes), uint32 version,
    int32 desc size, TensorDesc protobuf, numel x element size bytes.
    """
    import struct

    data = Path(path).read_bytes()
    pos, count = 0, 0

    def take(n, what):
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise SourceFormatError(f"{path}: truncated or corrupt parameter file: tensor {count} needs {n} bytes "
                                    f"of {what} at offset {pos}, the file has {len(data)} bytes")
        out = data[pos:pos + n]
        pos += n
        return out

    while pos < len(data):
        version, = struct.unpack("<I", take(4, "version"))
        lod_level, = struct.unpack("<Q", take(8, "lod level"))
        if version != 0 or lod_level > 8:
            raise SourceFormatError(f"{path}: corrupt parameter file: tensor {count} at offset {pos - 12} has "
                                    f"version {version}, lod level {lod_level}")
        for _ in range(lod_level):
            n, = struct.unpack("<Q", take(8, "lod size"))
            take(n, "lod")
        take(4, "tensor version")
        desc_size, = struct.unpack("<i", take(4, "desc size"))
        try:
            code, dims = _tensor_desc(take(desc_size, "tensor description"))
        except ValueError as exc:
            raise SourceFormatError(f"{path}: corrupt parameter file: tensor {count}: {exc}") from None
        if code not in _DTYPE_SIZES or any(d < 0 for d in dims):
            raise SourceFormatError(f"{path}: corrupt parameter file: tensor {count} has type {code}, dims {dims}")
        take(int(np.prod(dims, dtype=np.int64)) * _DTYPE_SIZES[code], f"data (shape {dims})")
        count += 1
    return count


class LoadedProgram:
    """A Paddle inference program in PIR form with its parameters (numpy) and helpers to walk it."""

    def __init__(self, program, scope, feed_names, fetch_values, model_path, params_path):
        self.program = program
        self.scope = scope
        self.feed_names = list(feed_names)
        self.model_path = model_path
        self.params_path = params_path
        self.ops = list(program.global_block().ops)
        self.index = {op.id(): i for i, op in enumerate(self.ops)}
        # the model's outputs: the operands of its fetch ops (for both storage formats)
        self.fetch_values = [op.operand_source(0) for op in self.ops if op.name() == "pd_op.fetch"] or \
            list(fetch_values)
        self.consts = {}  # value key -> np.ndarray (parameters and values folded from them)
        self.param_names = {}  # value key -> parameter name
        self._fold_constants()

    def detach_fetch_ops(self):
        """Remove the program's own fetch ops so that an executor may fetch any set of values (Paddle's
        executor cannot add fetch ops next to existing ones). Op indices, and so value names, are kept."""
        for i, op in enumerate(self.ops):
            if op is not None and op.name() == "pd_op.fetch":
                op.erase()
                self.ops[i] = None

    # ----- values -------------------------------------------------------------------------------------
    @staticmethod
    def producer(value):
        """The op defining ``value`` or None (an absent optional operand). Never compare Values with ``==``:
        on PIR values that operator adds an ``equal`` op to the program."""
        if value is None or not value.initialized():
            return None
        return value.get_defining_op()

    def key(self, value):
        op = self.producer(value)
        return None if op is None else (op.id(), value.index())

    def name(self, value):
        """Stable name of a value: ``<op type>@<op index>.<result index>``."""
        op = self.producer(value)
        return f"{op.name()}@{self.index[op.id()]}.{value.index()}"

    def value_by_name(self, name):
        _, _, pos = name.rpartition("@")
        idx, _, res = pos.partition(".")
        return self.ops[int(idx)].result(int(res))

    def const(self, value):
        k = self.key(value)
        return None if k is None else self.consts.get(k)

    def users(self, value):
        return list(value.all_used_ops())

    def only_user(self, value, op_type=None):
        users = self.users(value)
        if len(users) == 1 and (op_type is None or users[0].name() in ((op_type,) if isinstance(op_type, str)
                                                                        else op_type)):
            return users[0]
        return None

    def param_source(self, value):
        """Parameter names a constant operand was computed from (for the op's ``source_names``)."""
        k = self.key(value)
        if k in self.param_names:
            return (self.param_names[k],)
        op = self.producer(value)
        if op is None:
            return ()
        out = ()
        for v in op.operands_source():
            out += self.param_source(v)
        return out

    # ----- constants ----------------------------------------------------------------------------------
    def _param_array(self, name):
        var = self.scope.find_var(name)
        if var is None:
            raise SourceFormatError(f"{self.params_path}: parameter {name!r} of {self.model_path.name} is missing")
        try:
            arr = np.array(var.get_tensor())
        except Exception as exc:  # an uninitialised tensor
            raise SourceFormatError(f"{self.params_path}: parameter {name!r} was not loaded ({exc})") from exc
        return arr

    def _fold_constants(self):
        for op in self.ops:
            t = op.name()
            a = op.attrs()
            ins = op.operands_source()
            vals = [self.const(v) for v in ins]
            out = None
            if t == "builtin.parameter" or t == "builtin.constant" and "parameter_name" in a:
                name = a["parameter_name"]
                out = self._param_array(name)
                self.param_names[(op.id(), 0)] = name
                want = list(op.result(0).shape)
                if want and all(s >= 0 for s in want) and list(out.shape) != want:
                    raise SourceFormatError(f"{self.params_path}: parameter {name!r} has shape {list(out.shape)}, "
                                            f"the program declares {want}")
            elif t == "pd_op.full_int_array":
                out = np.array(a["value"], dtype=np.int64)
            elif t == "pd_op.full":
                dtype = np.float32 if "float" in str(a["dtype"]).lower() else np.int64  # paddle.float32
                out = np.full(list(a["shape"]), a["value"], dtype=dtype)
            elif t in ("pd_op.assign", "pd_op.cast") and vals and vals[0] is not None:
                out = vals[0]
            elif t == "pd_op.reshape" and len(vals) >= 2 and vals[0] is not None and vals[1] is not None:
                shape = [int(s) for s in vals[1].reshape(-1)]
                shape = [vals[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
                out = vals[0].reshape(shape)
            elif t == "pd_op.transpose" and vals and vals[0] is not None:
                out = np.transpose(vals[0], a["perm"])
            elif t in ("pd_op.squeeze", "pd_op.unsqueeze") and len(vals) >= 2 and vals[0] is not None \
                    and vals[1] is not None:
                axes = [int(x) for x in np.asarray(vals[1]).reshape(-1)]
                out = vals[0]
                if t == "pd_op.squeeze":
                    out = np.squeeze(out, axis=tuple(x % out.ndim for x in axes)) if axes else np.squeeze(out)
                else:
                    for x in sorted(x if x >= 0 else x + out.ndim + 1 for x in axes):
                        out = np.expand_dims(out, x)
            if out is not None:
                self.consts[(op.id(), 0)] = out


def load_program(path):
    """Load a Paddle inference export (folder, ``.json`` or ``.pdmodel``) as a ``LoadedProgram``."""
    model_path, params_path = resolve_files(path)
    n_records = check_params_file(params_path)
    import paddle

    was_dynamic = paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        scope = paddle.static.Scope()
        exe = paddle.static.Executor(paddle.CPUPlace())
        prefix = str(model_path.with_suffix(""))
        try:
            with paddle.static.scope_guard(scope):
                if model_path.suffix == ".json":
                    program, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
                else:
                    with paddle.pir_utils.OldIrGuard():
                        legacy, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
                        program = paddle.pir.translate_to_pir(legacy.desc)
                    fetches = []  # legacy Variables; the translated program's fetch ops name the outputs
        except SourceFormatError:
            raise
        except Exception as exc:  # Paddle raises RuntimeError/ValueError/... for corrupt or truncated files
            msg = str(exc).strip().splitlines()
            msg = next((m for m in msg if m.strip() and not m.startswith(("-", "C++", "Error Message"))), "")
            raise SourceFormatError(f"{model_path} + {params_path.name}: Paddle could not load this inference "
                                    f"export ({msg.strip()[:300]})") from exc
        loaded = LoadedProgram(program, scope, feeds, fetches, model_path, params_path)
        if len(loaded.param_names) != n_records:
            raise SourceFormatError(f"{params_path}: holds {n_records} tensors but {model_path.name} has "
                                    f"{len(loaded.param_names)} parameters (files of two different exports?)")
        return loaded
    finally:
        if was_dynamic:
            paddle.disable_static()


# ----- structural attributes ---------------------------------------------------------------------------
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


def _other_operand(prog, op, value):
    """The operand of binary ``op`` that is not ``value``."""
    a, b = op.operands_source()
    k = prog.key(value)
    return b if prog.key(a) == k else a


def _bias_add(prog, out, size):
    """If ``out`` flows only into an ``add`` with a constant of ``size`` elements: (bias, add op, output)."""
    add = prog.only_user(out, "pd_op.add")
    if add is None:
        return None, None, out
    other = _other_operand(prog, add, out)
    c = prog.const(other)
    if c is None or c.size != size:
        return None, None, out
    return c.reshape(-1).astype(np.float32), add, add.result(0)


def _axes_at(prog, op, rank):
    """The axes of an unsqueeze/squeeze op as non-negative positions in a tensor of ``rank`` dims."""
    axes = prog.const(op.operands_source()[1]) if op.num_operands() > 1 else None
    if axes is None:
        return None
    return [int(x) % rank for x in np.asarray(axes).reshape(-1)]


def _conv1d_output(prog, conv, weight, out):
    """Paddle's Conv1D runs as unsqueeze(x, [-2]) -> conv2d with a [O, I/g, 1, k] kernel (-> bias add) ->
    squeeze([-2]). Returns the squeeze's output when ``conv`` is such a conv, else None."""
    if weight.ndim != 4 or weight.shape[2] != 1:
        return None
    unsq = prog.producer(conv.operands_source()[0])
    sq = prog.only_user(out, "pd_op.squeeze")
    if unsq is None or unsq.name() != "pd_op.unsqueeze" or sq is None:
        return None
    if _axes_at(prog, unsq, 4) != [2] or _axes_at(prog, sq, 4) != [2]:
        return None
    return sq.result(0)


def _inputs(op):
    """Operands by their declared input names (``x``, ``filter``, ``mean`` ...)."""
    names = op.get_input_names()
    return dict(zip(names, op.operands_source()))


def _bn_params(prog, bn):
    ins = _inputs(bn)
    vals = {k: prog.const(ins[k]) for k in ("scale", "bias", "mean", "variance")}
    missing = [k for k, v in vals.items() if v is None]
    if missing:
        raise SourceFormatError(f"{prog.model_path}: batch_norm op #{prog.index[bn.id()]} has non-constant {missing}")
    return vals


def _lstm_ops(prog, op):
    """One SourceOp per layer of a Paddle ``rnn`` op in LSTM mode (gate order i, f, g, o like torch)."""
    a = op.attrs()
    if a.get("mode") != "LSTM":
        raise SourceFormatError(f"{prog.model_path}: rnn op #{prog.index[op.id()]} in mode {a.get('mode')!r}: only "
                                f"LSTM is supported")
    ins = _inputs(op)
    combine = prog.producer(ins["weight_list"])
    weights = [prog.const(v) for v in combine.operands_source()]
    if any(w is None for w in weights):
        raise SourceFormatError(f"{prog.model_path}: rnn op #{prog.index[op.id()]}: weights are not constant")
    h, layers = int(a["hidden_size"]), int(a["num_layers"])
    dirs = 2 if a.get("is_bidirec") else 1
    n = layers * dirs
    if len(weights) != 4 * n:
        raise SourceFormatError(f"{prog.model_path}: rnn op #{prog.index[op.id()]}: {len(weights)} weights for "
                                f"{layers} layers x {dirs} directions (expected {4 * n})")
    mats, biases = weights[:2 * n], weights[2 * n:]
    names = [prog.param_source(v) for v in combine.operands_source()]
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
            raise SourceFormatError(f"{prog.model_path}: rnn op #{prog.index[op.id()]}: hidden weight "
                                    f"{list(params['weight_hh'].shape)} for hidden size {h}")
        last = layer == layers - 1
        out.append(SourceOp("lstm", params, {"hidden_size": h, "bidirectional": dirs == 2},
                            output=prog.name(op.result(0)) if last else None, source_names=srcs))
    return out


CONV_OPS = ("pd_op.conv2d", "pd_op.depthwise_conv2d")
BN_OPS = ("pd_op.batch_norm_", "pd_op.batch_norm")


def read_paddle_ops(path_or_program):
    """Return (ops, program) for a Paddle inference export (folder, program file or ``LoadedProgram``)."""
    prog = path_or_program if isinstance(path_or_program, LoadedProgram) else load_program(path_or_program)
    ops, used = [], set()
    for op in prog.ops:
        if op.id() in used:
            continue
        t = op.name()
        a = op.attrs()
        ins = op.operands_source()
        if t in CONV_OPS and prog.const(ins[1]) is not None:
            if a.get("data_format", "NCHW") != "NCHW":
                raise SourceFormatError(f"{prog.model_path}: conv op #{prog.index[op.id()]} in layout "
                                        f"{a['data_format']}")
            w = prog.const(ins[1]).astype(np.float32)
            srcs = prog.param_source(ins[1])
            out, bias = op.result(0), None
            extra, add, new_out = _bias_add(prog, out, w.shape[0])
            if extra is not None:
                used.add(add.id())
                srcs += prog.param_source(_other_operand(prog, add, out))
                bias, out = extra, new_out
            conv1d_out = _conv1d_output(prog, op, w, out)
            if conv1d_out is not None:  # a 1-D conv: what follows its squeeze belongs to it
                out = conv1d_out
                if bias is None:
                    extra, add, new_out = _bias_add(prog, out, w.shape[0])
                    if extra is not None:
                        used.add(add.id())
                        srcs += prog.param_source(_other_operand(prog, add, out))
                        bias, out = extra, new_out
            bn = prog.only_user(out, BN_OPS)
            if bn is not None:
                used.add(bn.id())
                p = _bn_params(prog, bn)
                w, bias = fold_bn_into_conv(w, bias, p["scale"], p["bias"], p["mean"], p["variance"],
                                            bn.attrs().get("epsilon", 1e-5))
                srcs += tuple(s for k in ("scale", "bias", "mean", "variance") for s in
                              prog.param_source(_inputs(bn)[k]))
                out = bn.result(0)
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
            ops.append(SourceOp("conv", {"weight": w, "bias": bias}, attrs, output=prog.name(out),
                                source_names=srcs))
        elif t == "pd_op.matmul" and prog.const(ins[1]) is not None and prog.const(ins[1]).ndim == 2 \
                and not a.get("transpose_x", False):
            w = prog.const(ins[1]).astype(np.float32)
            w = w if a.get("transpose_y", False) else w.T  # torch layout [out, in]
            srcs = prog.param_source(ins[1])
            bias, add, out = _bias_add(prog, op.result(0), w.shape[0])
            params = {"weight": np.ascontiguousarray(w)}
            if bias is not None:
                used.add(add.id())
                srcs += prog.param_source(_other_operand(prog, add, op.result(0)))
                params["bias"] = bias
            ops.append(SourceOp("linear", params, {}, output=prog.name(out), source_names=srcs))
        elif t == "pd_op.layer_norm":
            x = _inputs(op)
            gamma, beta = prog.const(x.get("scale")), prog.const(x.get("bias"))
            if gamma is None or beta is None:
                raise SourceFormatError(f"{prog.model_path}: layer_norm op #{prog.index[op.id()]} without constant "
                                        f"scale and bias")
            ops.append(SourceOp("layernorm", {"weight": gamma.reshape(-1).astype(np.float32),
                                              "bias": beta.reshape(-1).astype(np.float32)},
                                {"eps": float(a.get("epsilon", 1e-5))}, output=prog.name(op.result(0)),
                                source_names=prog.param_source(x["scale"]) + prog.param_source(x["bias"])))
        elif t == "pd_op.multiply":
            aff = _scalar_affine(prog, op)
            if aff is not None:
                scale, bias, add, srcs = aff
                used.add(add.id())
                ops.append(SourceOp("affine", {"scale": scale, "bias": bias}, {}, output=prog.name(add.result(0)),
                                    source_names=srcs))
        elif t in BN_OPS:
            p = _bn_params(prog, op)
            ops.append(SourceOp("batchnorm", {"weight": p["scale"], "bias": p["bias"], "running_mean": p["mean"],
                                              "running_var": p["variance"]},
                                {"eps": float(a.get("epsilon", 1e-5))}, output=prog.name(op.result(0)),
                                source_names=tuple(s for k in ("scale", "bias", "mean", "variance")
                                                   for s in prog.param_source(_inputs(op)[k]))))
        elif t == "pd_op.rnn":
            ops.extend(_lstm_ops(prog, op))
        elif t in ("pd_op.fc", "pd_op.mul", "pd_op.conv2d_transpose", "pd_op.lstm", "pd_op.gru"):
            raise SourceFormatError(f"{prog.model_path}: op {t} (#{prog.index[op.id()]}) is not supported by the "
                                    f"Paddle inference reader yet")
    return ops, prog


def _scalar_affine(prog, mul):
    """``add(multiply(s, x), b)`` with one-element constants ``s`` and ``b`` (PPLCNetV3's
    LearnableAffineBlock, two parameters of shape [1]): returns (scale, bias, add op, source names) or None."""
    ins = mul.operands_source()
    consts = [prog.const(v) for v in ins]
    if len(consts) != 2 or sum(c is None for c in consts) != 1:
        return None
    k = 0 if consts[0] is not None else 1
    scale, x = consts[k], ins[1 - k]
    if scale.shape != (1,):
        return None
    out = mul.result(0)
    add = prog.only_user(out, "pd_op.add")
    if add is None:
        return None
    other = _other_operand(prog, add, out)
    bias = prog.const(other)
    if bias is None or bias.shape != (1,):
        return None
    del x
    return (scale.astype(np.float32), bias.astype(np.float32), add,
            prog.param_source(ins[k]) + prog.param_source(other))


def read_inference_dictionary(model_path):
    """The character list in the ``inference.yml`` next to a Paddle inference program, or None."""
    from ..official import read_inference_yml

    yml = Path(model_path).with_name("inference.yml") if not Path(model_path).is_dir() else \
        Path(model_path) / "inference.yml"
    if not yml.is_file():
        return None
    return read_inference_yml(yml)["character_dict"]
