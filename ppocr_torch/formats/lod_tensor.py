"""Paddle's tensor files, read without Paddle (``framework/lod_tensor.cc`` ``SerializeToStream``,
``framework/tensor_util.cc`` ``TensorToStream``; all integers little-endian).

One **LoDTensor record**::

    uint32  version (0)
    uint64  lod_level
    lod_level x { uint64 byte size of the level; that many bytes of uint64 offsets }
    uint32  tensor version (0)
    int32   size of the TensorDesc protobuf
    bytes   TensorDesc  (proto2: required VarType.Type data_type = 1; repeated int64 dims = 2)
    bytes   raw data, numel * sizeof(data_type), no length prefix

A one-variable file (the ``save`` op) is exactly one record; a **combined** file (``*.pdiparams``,
``__params__``, PaddleOCR 1.x's ``params``; the ``save_combine`` op) is the records concatenated with no
header, in the order of the *sorted* persistable variable names (Paddle 2.x and 3.x exports, ProgramDesc
and PIR alike, keep that order). The names are not in the file: they come from the program.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SourceFormatError
from ..files import read_regular_file
from .protobuf import Buffer, parse_tensor_desc

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


def read_bytes(path):
    """The bytes of a regular file (a FIFO or a device is refused, never read)."""
    try:
        return read_regular_file(path, None, name=str(path), error=SourceFormatError)
    except FileNotFoundError:
        raise SourceFormatError(f"{path}: no such file") from None


def read_tensor_file(path, *, with_lod=False):
    """The array of a one-variable file (the ``save`` op); the whole file must be one record."""
    buf = Buffer(read_bytes(path), path)
    rec = _parse_record(buf, f"variable {Path(path).name!r}")
    if buf.left:
        raise SourceFormatError(f"{path}: {buf.left} unexpected bytes after the tensor (a combined parameter "
                                f"file? read it with read_combined and the variable names)")
    return (rec.array, rec.lod) if with_lod else rec.array


def iter_records(path, data=None):
    """Every LoDTensor record of a combined file, in file order (names unknown)."""
    buf = Buffer(read_bytes(path) if data is None else data, path)
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
        raise SourceFormatError(f"{path}: duplicate variable names in the program's parameter list")
    data = read_bytes(path)
    buf = Buffer(data, path)
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
