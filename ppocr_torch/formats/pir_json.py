"""Paddle 3's PIR program (``inference.json``) as a :class:`~ppocr_torch.formats.graph.Graph`, without Paddle.

The file is Paddle's JSON serialisation of the program (``"base_code": {"magic": "pir"}``): a region of blocks of
ops, each op ``{"#": type, "I": [{"%": value id}], "O": [{"%": value id, "TT": type}], "A": [attributes]}``.
Op types carry their dialect as a number (``1.conv2d`` is ``pd_op.conv2d``, ``0.combine`` is
``builtin.combine``); ``"p"`` is a parameter, ``"A": [.., .., .., name]``; value id 0 is an absent operand;
an attribute is ``{"N": name, "AT": {"#": type, "D": data}}``.
"""

from __future__ import annotations

import io
import json

from ..errors import SourceFormatError
from ..files import open_regular_file
from .graph import Graph

DIALECTS = {"0": "builtin", "1": "pd_op"}


def _attr(node, path):
    kind, data = node.get("#", ""), node.get("D")
    if kind.endswith("a_array"):
        return [_attr(x, path) for x in data]
    if kind.endswith(("a_i32", "a_i64", "a_f32", "a_f64", "a_bool", "a_str", "a_intarray", "a_dtype", "a_place",
                      "a_pointer", "a_type", "a_tensor_name", "a_complex64")):
        return data
    raise SourceFormatError(f"{path}: unknown PIR attribute type {kind!r}")


def _op_type(code, path):
    dialect, _, name = str(code).partition(".")
    if not name:
        raise SourceFormatError(f"{path}: unknown PIR op {code!r}")
    return f"{DIALECTS.get(dialect, 'dialect' + dialect)}.{name}"


def _value_shape(out):
    tt = (out or {}).get("TT") or {}
    data = tt.get("D")
    if isinstance(data, list) and len(data) > 1 and isinstance(data[1], list):
        return [int(s) for s in data[1]]
    return None


def graph_from_pir_json(path, parameters: dict) -> Graph:
    """Build the graph of ``inference.json`` at ``path``; ``parameters`` maps names to arrays."""
    try:
        with io.TextIOWrapper(open_regular_file(path, name=str(path), error=SourceFormatError),
                              encoding="utf-8") as fh:
            doc = json.load(fh)
    except SourceFormatError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise SourceFormatError(f"{path}: not a readable PIR program ({exc})") from exc
    try:
        if (doc.get("base_code") or {}).get("magic") != "pir":
            raise SourceFormatError(f"{path}: not a Paddle PIR program (no base_code.magic 'pir')")
        regions = doc["program"]["regions"]
        if len(regions) != 1 or len(regions[0]["blocks"]) != 1:
            raise SourceFormatError(f"{path}: programs with control flow ({len(regions)} regions) are not supported")
        raw_ops = regions[0]["blocks"][0]["ops"]
        graph = Graph(path, parameters)
        values = {}
        for raw in raw_ops:
            code = raw["#"]
            if code == "p":  # a parameter: "A": [.., .., .., name], "O": one value
                a = raw["A"]
                out = raw["O"]
                op = graph.add("builtin.parameter", [], 1, {"parameter_name": a[3], "shape": _value_shape(out)})
                values[out["%"]] = op.outputs[0]
                continue
            inputs = []
            for ref in raw.get("I", []):
                vid = ref["%"]
                if vid == 0:
                    inputs.append(None)
                elif vid not in values:
                    raise SourceFormatError(f"{path}: op {code} uses value %{vid} before it is defined")
                else:
                    inputs.append(values[vid])
            outs = raw.get("O", [])
            attrs = {a["N"]: _attr(a["AT"], path) for a in raw.get("A", [])}
            op = graph.add(_op_type(code, path), inputs, len(outs), attrs)
            for out, value in zip(outs, op.outputs):
                values[out["%"]] = value
    except SourceFormatError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise SourceFormatError(f"{path}: malformed PIR program ({type(exc).__name__}: {exc})") from exc
    graph.fold_constants()
    return graph
