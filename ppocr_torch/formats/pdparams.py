"""Read a PaddlePaddle ``.pdparams`` file (``paddle.save`` of a state dict) without PaddlePaddle.

The file is a pickle of ``{name: numpy.ndarray}`` (plus Paddle's ``StructuredToParameterName@@`` name table).
It is unpickled with a restricted unpickler that resolves only the few globals such files contain
(numpy array reconstruction, dtypes, scalars, OrderedDict), so a crafted file cannot run code.
"""

import pickle

import numpy as np

from ..errors import SourceFormatError
from ..files import open_regular_file

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}
NAME_TABLE_KEY = "StructuredToParameterName@@"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a .pdparams file")


def read_pdparams(path):
    """Return ``{name: float32/int ndarray}`` from a ``.pdparams`` file (the name table is dropped)."""
    try:
        with open_regular_file(path, name=str(path), error=SourceFormatError) as fh:
            obj = _RestrictedUnpickler(fh, encoding="latin1").load()
    except SourceFormatError:
        raise
    except FileNotFoundError:
        raise SourceFormatError(f"{path}: no such file") from None
    except pickle.UnpicklingError as exc:
        raise SourceFormatError(f"{path}: refused or not a .pdparams pickle: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise SourceFormatError(f"{path}: truncated or corrupt .pdparams file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise SourceFormatError(f"{path}: expected a dict of arrays, found {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if k == NAME_TABLE_KEY:
            continue
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise SourceFormatError(f"{path}: entry {k!r} is a {type(v).__name__}, not an array")
        out[k] = v
    if not out:
        raise SourceFormatError(f"{path}: holds no parameters")
    return out
