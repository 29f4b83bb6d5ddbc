"""PaddleOCR's official files read without Paddle, ONNX or protobuf.

* a Paddle 3 inference export: ``inference.json`` (PIR) + ``inference.pdiparams``;
* an older inference export: ``inference.pdmodel`` (ProgramDesc protobuf) + ``inference.pdiparams``;
* a training checkpoint ``.pdparams`` (:mod:`.pdparams`, a restricted unpickler).

:func:`read_export_ops` gives an export's parametric ops (:class:`~.source_ops.SourceOp`), which
``ppocr_torch.mapping`` loads into a model of the registry's spec.
"""

from pathlib import Path

from ..errors import SourceFormatError

PROGRAM_FILES = ("inference.json", "inference.pdmodel")


def resolve_export_files(path):
    """(program file, parameter file) of a Paddle inference export given its folder or program file.

    A folder holds ``inference.json`` (preferred) or ``inference.pdmodel``; the parameters are the
    ``.pdiparams`` file with the program's stem. Missing files raise SourceFormatError naming them.
    """
    path = Path(path)
    if path.is_dir():
        for name in PROGRAM_FILES:
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise SourceFormatError(f"{path / 'inference.json'}: no Paddle inference program (inference.json or "
                                    f"inference.pdmodel) in {path}")
    if path.suffix not in (".json", ".pdmodel"):
        raise SourceFormatError(f"{path}: not a Paddle inference program (expected .json or .pdmodel)")
    if not path.is_file():
        raise SourceFormatError(f"{path}: Paddle inference program not found")
    params = path.with_suffix(".pdiparams")
    if not params.is_file():
        raise SourceFormatError(f"{params}: Paddle inference parameters not found (next to {path.name})")
    return path, params


def read_export_graph(path):
    """The folded :class:`~.graph.Graph` of a Paddle inference export (folder or program file)."""
    from .lod_tensor import read_combined
    from .program_desc import graph_from_program, read_program

    model_path, params_path = resolve_export_files(path)
    if model_path.suffix == ".json":
        from .pir_json import graph_from_pir_json

        names = _pir_parameter_names(model_path)
        return graph_from_pir_json(model_path, read_combined(params_path, names))
    program = read_program(model_path)
    return graph_from_program(program, read_combined(params_path, program.persistable_names()), model_path)


def _pir_parameter_names(model_path):
    import io
    import json

    from ..files import open_regular_file

    try:
        with io.TextIOWrapper(open_regular_file(model_path, name=str(model_path), error=SourceFormatError),
                              encoding="utf-8") as fh:
            ops = json.load(fh)["program"]["regions"][0]["blocks"][0]["ops"]
        names = [op["A"][3] for op in ops if op.get("#") == "p"]
    except SourceFormatError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        raise SourceFormatError(f"{model_path}: not a readable PIR program ({type(exc).__name__}: {exc})") from exc
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise SourceFormatError(f"{model_path}: not a readable PIR program (parameter name {bad!r:.80} is not a "
                                "string)")
    return names


def read_export_ops(path):
    """The parametric ops of a Paddle inference export, in program order."""
    from .source_ops import extract_ops

    return extract_ops(read_export_graph(path))
