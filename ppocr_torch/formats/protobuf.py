"""The protobuf wire format, decoded by hand (Paddle's program and tensor descriptions), with bounds checks
whose errors name the file: no protobuf package is needed."""

import struct

from ..errors import SourceFormatError


class Buffer:
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

def varint(buf, what):
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


def signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def fields(data, path, what):
    """Yield (field number, wire type, value) of a protobuf message; value is an int or a memoryview."""
    buf = Buffer(data, path)
    while buf.left:
        key = varint(buf, what)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (field number 0)")
        if wire == 0:
            yield num, wire, varint(buf, what)
        elif wire == 1:
            yield num, wire, buf.take(8, what)
        elif wire == 2:
            n = varint(buf, what)
            yield num, wire, buf.take(n, what)
        elif wire == 5:
            yield num, wire, buf.take(4, what)
        else:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (unsupported wire type {wire})")


def repeated_varints(wire, value, path, what):
    """Values of a repeated integer field: one unpacked element, or a packed run."""
    if wire == 0:
        return [value]
    if wire == 2:
        buf = Buffer(value, path)
        out = []
        while buf.left:
            out.append(varint(buf, what))
        return out
    raise SourceFormatError(f"{path}: corrupt protobuf in {what} (integer field with wire type {wire})")


def repeated_fixed(wire, value, fmt, path, what):
    size = struct.calcsize(fmt)
    if wire == 2 or (wire in (1, 5) and len(value) == size):
        if len(value) % size:
            raise SourceFormatError(f"{path}: corrupt protobuf in {what} (packed run of {len(value)} bytes)")
        return list(struct.unpack(f"<{len(value) // size}{fmt}", value))
    raise SourceFormatError(f"{path}: corrupt protobuf in {what} (fixed field with wire type {wire})")


def text(value, path, what):
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path}: corrupt protobuf in {what} (name is not UTF-8)") from exc


def parse_tensor_desc(data, path, what="TensorDesc"):
    """(VarType.Type code, dims) of a serialized ``VarType.TensorDesc``."""
    dtype, dims = None, []
    for num, wire, value in fields(data, path, what):
        if num == 1 and wire == 0:
            dtype = value
        elif num == 2:
            dims += [signed64(v) for v in repeated_varints(wire, value, path, what)]
    if dtype is None:
        raise SourceFormatError(f"{path}: corrupt {what}: required field data_type is missing")
    return dtype, dims
