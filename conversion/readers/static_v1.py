"""Read Paddle 1.x (fluid, static graph) saved models without PaddlePaddle.

Formats (Paddle's ``framework/lod_tensor.cc`` ``SerializeToStream``, ``framework/tensor_util.cc``
``TensorToStream`` and ``framework/framework.proto``; all integers little-endian):

* one **LoDTensor record**::

      uint32  version (0)
      uint64  lod_level
      lod_level x { uint64 byte size of the level; that many bytes of uint64 offsets }
      uint32  tensor version (0)
      int32   size of the TensorDesc protobuf
      bytes   TensorDesc  (proto2: required VarType.Type data_type = 1; repeated int64 dims = 2)
      bytes   raw data, numel * sizeof(data_type), no length prefix

* **one file per variable** (``fluid.io.save_vars``/``save_persistables``/``save_inference_model`` without a
  params file name; the ``save`` op): exactly one record, the file named after the variable;
* **combined** (``__params__``, PaddleOCR 1.x's ``params``, ``*.pdiparams``; the ``save_combine`` op): the
  records concatenated with no header, in the order of the *sorted* persistable variable names (fluid's
  ``save_vars`` sorts them, and the loaders expect that order). The names are not in the file: they come
  from the caller or from the program (``__model__``, ``model``, ``*.pdmodel``: a ProgramDesc protobuf,
  decoded here by hand as well).

Every inconsistency raises :class:`~conversion.errors.SourceFormatError` naming the file (and the variable
or record), never a bare ``struct.error``/``ValueError``.
"""

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SourceFormatError

# framework.proto VarType.Type: the POD types a tensor may hold
DTYPES = {
    0: ("BOOL", np.dtype("?")), 1: ("INT16", np.dtype("<i2")), 2: ("INT32", np.dtype("<i4")),
    3: ("INT64", np.dtype("<i8")), 4: ("FP16", np.dtype("<f2")), 5: ("FP32", np.dtype("<f4")),
    6: ("FP64", np.dtype("<f8")), 20: ("UINT8", np.dtype("u1")), 21: ("INT8", np.dtype("i1")),
}
VAR_TYPE_NAMES = {
    7: "LOD_TENSOR", 8: "SELECTED_ROWS", 9: "FEED_MINIBATCH", 10: "FETCH_LIST", 11: "STEP_SCOPES",
    12: "LOD_RANK_TABLE", 13: "LOD_TENSOR_ARRAY", 14: "PLACE_LIST", 15: "READER", 16: "FETCH_VAR_LIST",
    17: "RAW", 18: "TUPLE", 19: "SIZE_T",
}
LOD_TENSOR, FEED_MINIBATCH, FETCH_LIST, READER, RAW = 7, 9, 10, 15, 17
_MAX_LOD_LEVEL = 64  # sanity bound: real parameters have lod_level 0
_MAX_DESC_SIZE = 1 << 20
_MAX_DIMS = 32

# (program file, combined params file or None) tried in a folder, in this order
FOLDER_LAYOUTS = (
    ("model", "params"),  # PaddleOCR 1.x tools/export_model.py (save_inference_model model/params)
    ("__model__", "__params__"),  # fluid save_inference_model(params_filename="__params__")
    ("inference.pdmodel", "inference.pdiparams"),  # Paddle 2.x ProgramDesc export
    ("__model__", None),  # fluid default: one file per variable next to __model__
)


class _Buffer:
    """Bounds-checked little-endian reads over bytes, errors naming the file."""

    def __init__(self, data, path, pos=0, end=None):
        self.data = memoryview(data)
        self.path = path
        self.pos = pos
        self.end = len(self.data) if end is None else end

    @property
    def left(self):
        return self.end - self.pos

    def take(self, n, what):
        if n < 0 or n > self.left:
            raise SourceFormatError(f"{self.path}: truncated or corrupt file: {what} needs {n} bytes at offset "
                                    f"{self.pos}, only {self.left} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]


# ---------------------------------------------------------------- protobuf wire format (hand decoded)

def _varint(buf, what):
    shift, value = 0, 0
    while True:
        if buf.left <= 0:
            raise SourceFormatError(f"{buf.path}: truncated or corrupt protobuf in {what} (varint runs past "
                                    f"the end)")
        b = buf.data[buf.pos]
        buf.pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
        if shift >= 70:
            raise SourceFormatError(f"{buf.path}: corrupt protobuf in {what} (varint longer than 10 bytes)")


def _signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(data, path, what):
    """Yield (field number, wire type, value) of a protobuf message; value is an int or a memoryview."""
    buf = _Buffer(data, path)
    while buf.left:
        key = _varint(buf, what)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (field number 0)")
        if wire == 0:
            yield num, wire, _varint(buf, what)
        elif wire == 1:
            yield num, wire, buf.take(8, what)
        elif wire == 2:
            n = _varint(buf, what)
            yield num, wire, buf.take(n, what)
        elif wire == 5:
            yield num, wire, buf.take(4, what)
        else:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (unsupported wire type {wire})")


def _repeated_varints(wire, value, path, what):
    """Values of a repeated integer field: one unpacked element, or a packed run."""
    if wire == 0:
        return [value]
    if wire == 2:
        buf = _Buffer(value, path)
        out = []
        while buf.left:
            out.append(_varint(buf, what))
        return out
    raise SourceFormatError(f"{path}: corrupt protobuf in {what} (integer field with wire type {wire})")


def _repeated_fixed(wire, value, fmt, path, what):
    size = struct.calcsize(fmt)
    if wire == 2 or (wire in (1, 5) and len(value) == size):
        if len(value) % size:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (packed run of {len(value)} bytes)")
        return list(struct.unpack(f"<{len(value) // size}{fmt}", value))
    raise SourceFormatError(f"{path}: corrupt protobuf in {what} (fixed field with wire type {wire})")


def _text(value, path, what):
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path}: corrupt protobuf in {what} (name is not UTF-8)") from exc


def parse_tensor_desc(data, path, what="TensorDesc"):
    """(VarType.Type code, dims) of a serialized ``VarType.TensorDesc``."""
    dtype, dims = None, []
    for num, wire, value in _fields(data, path, what):
        if num == 1 and wire == 0:
            dtype = value
        elif num == 2:
            dims += [_signed64(v) for v in _repeated_varints(wire, value, path, what)]
    if dtype is None:
        raise SourceFormatError(f"{path}: corrupt {what}: required field data_type is missing")
    return dtype, dims


# ---------------------------------------------------------------- tensors

@dataclass
class TensorRecord:
    array: np.ndarray
    lod: list  # list of levels, each a list of offsets (empty for parameters)
    offset: int  # byte offset of the record in its file
    size: int  # bytes


def _dtype_of(code, path, what):
    if code not in DTYPES:
        kind = VAR_TYPE_NAMES.get(code, "unknown")
        raise SourceFormatError(f"{path}: {what} has unsupported data type {kind} (VarType.Type {code}); "
                                f"supported: {', '.join(n for n, _ in DTYPES.values())}")
    return DTYPES[code][1]


def _parse_record(buf, what):
    """Parse one LoDTensor record at ``buf.pos``; returns a TensorRecord (array copied out)."""
    start = buf.pos
    version = buf.unpack("<I", f"{what}: LoDTensor version")
    if version != 0:
        raise SourceFormatError(f"{buf.path}: {what}: unsupported LoDTensor version {version} at offset {start} "
                                f"(only 0 exists; not a Paddle tensor file, or a corrupt one)")
    lod_level = buf.unpack("<Q", f"{what}: lod_level")
    if lod_level > _MAX_LOD_LEVEL:
        raise SourceFormatError(f"{buf.path}: {what}: corrupt LoDTensor header (lod_level {lod_level})")
    lod = []
    for level in range(lod_level):
        nbytes = buf.unpack("<Q", f"{what}: size of LoD level {level}")
        if nbytes % 8:
            raise SourceFormatError(f"{buf.path}: {what}: corrupt LoD level {level} ({nbytes} bytes, not a "
                                    f"multiple of 8)")
        raw = buf.take(nbytes, f"{what}: LoD level {level}")
        lod.append(np.frombuffer(raw, dtype="<u8").tolist())
    tversion = buf.unpack("<I", f"{what}: Tensor version")
    if tversion != 0:
        raise SourceFormatError(f"{buf.path}: {what}: unsupported Tensor version {tversion} (only 0 exists)")
    desc_size = buf.unpack("<i", f"{what}: TensorDesc size")
    if desc_size <= 0 or desc_size > _MAX_DESC_SIZE:
        raise SourceFormatError(f"{buf.path}: {what}: corrupt TensorDesc size {desc_size}")
    code, dims = parse_tensor_desc(buf.take(desc_size, f"{what}: TensorDesc"), buf.path, f"{what}: TensorDesc")
    dtype = _dtype_of(code, buf.path, what)
    if len(dims) > _MAX_DIMS or any(d < 0 for d in dims):
        raise SourceFormatError(f"{buf.path}: {what}: corrupt TensorDesc dims {dims}")
    numel = 1
    for d in dims:
        numel *= d
    nbytes = numel * dtype.itemsize
    raw = buf.take(nbytes, f"{what}: data of shape {dims} ({DTYPES[code][0]})")
    array = np.frombuffer(raw, dtype=dtype).reshape(dims).copy()
    return TensorRecord(array=array, lod=lod, offset=start, size=buf.pos - start)


def _read_bytes(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise SourceFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceFormatError(f"{path}: is a folder, expected a Paddle tensor file") from None


def read_tensor_file(path, *, with_lod=False):
    """The array of a one-variable file (the ``save`` op); the whole file must be one record."""
    buf = _Buffer(_read_bytes(path), path)
    rec = _parse_record(buf, f"variable {Path(path).name!r}")
    if buf.left:
        raise SourceFormatError(f"{path}: {buf.left} unexpected bytes after the tensor (a combined parameter "
                                f"file? read it with read_combined and the variable names)")
    return (rec.array, rec.lod) if with_lod else rec.array


def iter_records(path, data=None):
    """Every LoDTensor record of a combined file, in file order (names unknown)."""
    buf = _Buffer(_read_bytes(path) if data is None else data, path)
    i = 0
    while buf.left:
        yield _parse_record(buf, f"record {i}")
        i += 1


def read_combined(path, names, *, sort=True):
    """``{name: array}`` from a combined parameter file.

    ``names`` are the persistable variable names (from the program or the caller); fluid writes the
    records in ``sorted(names)`` order, which is used unless ``sort=False`` (then ``names`` is the file
    order). The file must hold exactly ``len(names)`` records.
    """
    order = sorted(names) if sort else list(names)
    if len(set(order)) != len(order):
        raise ValueError("read_combined: duplicate variable names")
    data = _read_bytes(path)
    buf = _Buffer(data, path)
    out = {}
    for i, name in enumerate(order):
        if not buf.left:
            raise SourceFormatError(f"{path}: truncated combined parameter file: it holds {i} tensors but "
                                    f"{len(order)} persistable variables are expected (next: {name!r})")
        out[name] = _parse_record(buf, f"record {i} ({name!r})").array
    if buf.left:
        extra = sum(1 for _ in iter_records(path, data=bytes(buf.data[buf.pos:])))
        raise SourceFormatError(f"{path}: the combined parameter file holds {len(order) + extra} tensors but "
                                f"{len(order)} variable names were given (wrong program or name list?)")
    return out


# ---------------------------------------------------------------- ProgramDesc

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
    for num, wire, value in _fields(data, path, what):
        if num == 1:
            name = _text(value, path, what)
        elif num == 2:
            atype = value
        elif num in (3, 10, 12):  # i, b, block_idx
            vals[num] = _signed64(value)
        elif num == 13:  # l
            vals[num] = _signed64(value)
        elif num == 4:
            vals[num] = _repeated_fixed(wire, value, "f", path, what)[0]
        elif num == 5:
            vals[num] = _text(value, path, what)
        elif num in (6, 11, 14, 15):  # ints, bools, blocks_idx, longs
            vals.setdefault(num, []).extend(_signed64(v) for v in _repeated_varints(wire, value, path, what))
        elif num == 7:
            vals.setdefault(num, []).extend(_repeated_fixed(wire, value, "f", path, what))
        elif num == 8:
            vals.setdefault(num, []).append(_text(value, path, what))
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
    for num, _, value in _fields(data, path, "OpDesc.Var"):
        if num == 1:
            param = _text(value, path, "OpDesc.Var")
        elif num == 2:
            args.append(_text(value, path, "OpDesc.Var"))
    return param, args


def _parse_op(data, path):
    op = OpInfo(type="", inputs={}, outputs={}, attrs={})
    for num, _, value in _fields(data, path, "OpDesc"):
        if num == 3:
            op.type = _text(value, path, "OpDesc")
        elif num in (1, 2):
            p, a = _parse_op_vars(value, path)
            (op.inputs if num == 1 else op.outputs)[p] = a
        elif num == 4:
            k, v = _parse_attr(value, path)
            op.attrs[k] = v
    return op


def _parse_var(data, path):
    var = VarInfo(name="", type=-1)
    for num, wire, value in _fields(data, path, "VarDesc"):
        if num == 1:
            var.name = _text(value, path, "VarDesc")
        elif num == 2:
            for tnum, _, tval in _fields(value, path, "VarType"):
                if tnum == 1:
                    var.type = tval
                elif tnum in (2, 3, 4):  # selected_rows (TensorDesc), lod_tensor / tensor_array (LoD...Desc)
                    desc = tval
                    if tnum in (3, 4):
                        desc = next((v for n, _, v in _fields(tval, path, "LoDTensorDesc") if n == 1), None)
                    if desc is not None:
                        var.dtype, var.shape = parse_tensor_desc(desc, path, f"TensorDesc of {var.name!r}")
        elif num == 3:
            var.persistable = bool(value)
    return var


def parse_program(data, path="<program>"):
    """Decode a ProgramDesc protobuf (``__model__``, ``model``, ``*.pdmodel``) into blocks, vars and ops."""
    blocks, version = [], None
    for num, _, value in _fields(data, path, "ProgramDesc"):
        if num == 1:
            block = BlockInfo(idx=0, parent_idx=-1, vars={}, ops=[])
            for bnum, _, bval in _fields(value, path, "BlockDesc"):
                if bnum == 1:
                    block.idx = _signed64(bval)
                elif bnum == 2:
                    block.parent_idx = _signed64(bval)
                elif bnum == 3:
                    v = _parse_var(bval, path)
                    block.vars[v.name] = v
                elif bnum == 4:
                    block.ops.append(_parse_op(bval, path))
            blocks.append(block)
        elif num == 4:
            version = next((v for n, _, v in _fields(value, path, "Version") if n == 1), 0)
    if not blocks:
        raise SourceFormatError(f"{path}: not a Paddle program (no block in the ProgramDesc)")
    return ProgramInfo(blocks=blocks, version=version)


def read_program(path):
    """:class:`ProgramInfo` of a saved fluid program file."""
    data = _read_bytes(path)
    if data[:1] in (b"{", b"["):
        raise SourceFormatError(f"{path}: a Paddle 3 PIR program (JSON), not a 1.x ProgramDesc")
    return parse_program(data, path)


# ---------------------------------------------------------------- whole models

@dataclass
class StaticModel:
    tensors: dict  # name -> np.ndarray
    program: ProgramInfo | None
    layout: str  # "combined", "per-variable", "pdparams"
    files: list  # the files read


def _check_against_program(tensors, program, path):
    for name, arr in tensors.items():
        var = program.global_block.vars.get(name)
        if var is None or var.dtype is None:
            continue
        want = [d for d in var.shape]
        if len(want) == arr.ndim and all(w in (-1, a) for w, a in zip(want, arr.shape)):
            continue
        raise SourceFormatError(f"{path}: variable {name!r} has shape {list(arr.shape)} in the parameter file "
                                f"but {want} in the program (parameters of another model?)")


def read_static_model(path, *, names=None):
    """Read a Paddle 1.x saved model: a folder (``model``+``params``, ``__model__``+``__params__``,
    ``__model__`` + one file per variable, ``inference.pdmodel``+``inference.pdiparams``), a combined file
    (``names`` required, or a program next to it), or a single variable file. Returns a StaticModel.

    Per-variable files are matched to the program's persistable names; without a program every file in the
    folder is read and named after itself.
    """
    path = Path(path)
    if not path.exists():
        raise SourceFormatError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".pdparams":
            from .pdparams import read_pdparams
            return StaticModel(read_pdparams(path), None, "pdparams", [path])
        if names is None:
            for prog_name in ("model", "__model__", path.with_suffix(".pdmodel").name):
                cand = path.parent / prog_name
                if cand.is_file() and cand != path:
                    program = read_program(cand)
                    tensors = read_combined(path, program.persistable_names())
                    _check_against_program(tensors, program, path)
                    return StaticModel(tensors, program, "combined", [cand, path])
            return StaticModel({path.name: read_tensor_file(path)}, None, "per-variable", [path])
        return StaticModel(read_combined(path, names), None, "combined", [path])

    for prog_name, params_name in FOLDER_LAYOUTS:
        prog_path = path / prog_name
        if not prog_path.is_file():
            continue
        if params_name is not None and not (path / params_name).is_file():
            continue
        program = read_program(prog_path)
        wanted = program.persistable_names() if names is None else list(names)
        if params_name is not None:
            params_path = path / params_name
            tensors = read_combined(params_path, wanted)
            files = [prog_path, params_path]
            layout = "combined"
        else:
            missing = [n for n in wanted if not (path / n).is_file()]
            if missing:
                raise SourceFormatError(f"{path}: {len(missing)} of the program's {len(wanted)} persistable "
                                        f"variables have no file, e.g. {missing[:3]}")
            tensors = {n: read_tensor_file(path / n) for n in wanted}
            files = [prog_path] + [path / n for n in wanted]
            layout = "per-variable"
        _check_against_program(tensors, program, path)
        return StaticModel(tensors, program, layout, files)

    # no program: every regular, non-hidden file is one variable named after the file
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if names is not None:
        files = [path / n for n in names]
    if not files:
        raise SourceFormatError(f"{path}: no Paddle 1.x model files (model/params, __model__, or one file "
                                f"per variable)")
    return StaticModel({p.name: read_tensor_file(p) for p in files}, None, "per-variable", files)
