"""Read a PaddlePaddle ``.pdparams`` file (``paddle.save`` of a state dict) without PaddlePaddle.

The file is a pickle of ``{name: numpy.ndarray}`` (plus Paddle's ``StructuredToParameterName@@`` name table).
It is unpickled with a restricted unpickler that resolves only the few globals such files contain
(numpy array reconstruction, dtypes, scalars, OrderedDict), so a crafted file cannot run code. Pickle protocol 2
(``paddle.save(..., protocol=2)``) writes bytes as ``_codecs.encode(text, "latin1")`` and empty bytes as
``bytes()``: those two calls are answered by wrappers that accept exactly these arguments.
"""

import pickle

import numpy as np

from ..errors import SourceFormatError
from ..files import open_regular_file


def _latin1_bytes(*args):
    """``_codecs.encode(text, "latin1")`` as pickle protocol 2 writes bytes; nothing else is accepted."""
    if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only as encode(str, 'latin1'), the form pickle "
                                     "protocol 2 writes bytes in")
    try:
        return args[0].encode("latin-1")
    except UnicodeEncodeError:
        raise pickle.UnpicklingError("_codecs.encode(str, 'latin1') of a string that is not latin-1") from None


def _empty_bytes(*args):
    """``bytes()`` as pickle protocol 2 writes ``b""``; any argument is refused."""
    if args:
        raise pickle.UnpicklingError("bytes() is allowed only without arguments, the form pickle protocol 2 writes "
                                     "empty bytes in")
    return b""


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}
_WRAPPED = {("_codecs", "encode"): _latin1_bytes, ("__builtin__", "bytes"): _empty_bytes,
            ("builtins", "bytes"): _empty_bytes}
NAME_TABLE_KEY = "StructuredToParameterName@@"
# the dtypes a parameter can have; object (arbitrary Python objects), complex, strings and records are refused
ACCEPTED_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _WRAPPED:
            return _WRAPPED[module, name]
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a .pdparams file")


def read_pdparams(path):
    """Return ``{name: float/int/bool ndarray}`` from a ``.pdparams`` file (the name table is dropped)."""
    try:
        with open_regular_file(path, name=str(path), error=SourceFormatError) as fh:
            obj = _RestrictedUnpickler(fh, encoding="latin1").load()
    except SourceFormatError:
        raise
    except FileNotFoundError:
        raise SourceFormatError(f"{path}: no such file") from None
    except pickle.UnpicklingError as exc:
        raise SourceFormatError(f"{path}: refused or not a .pdparams pickle: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError,
            RecursionError) as exc:
        raise SourceFormatError(f"{path}: truncated or corrupt .pdparams file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise SourceFormatError(f"{path}: expected a dict of arrays, found {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if k == NAME_TABLE_KEY:
            continue
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise SourceFormatError(f"{path}: entry {k!r} is a {type(v).__name__}, not an array")
        if v.dtype.fields is not None or v.dtype.subdtype is not None or v.dtype.name not in ACCEPTED_DTYPES:
            raise SourceFormatError(f"{path}: tensor {k!r} has dtype {v.dtype.str!r} ({v.dtype.name}); a parameter "
                                    f"must be one of {', '.join(ACCEPTED_DTYPES)} (save the checkpoint with "
                                    "real-valued float32 parameters)")
        out[k] = v
    if not out:
        raise SourceFormatError(f"{path}: holds no parameters")
    return out
