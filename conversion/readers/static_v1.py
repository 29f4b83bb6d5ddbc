"""Read Paddle 1.x (fluid, static graph) saved models without PaddlePaddle: a folder (``model`` + ``params``,
``__model__`` + ``__params__``, ``__model__`` + one file per variable, ``inference.pdmodel`` +
``inference.pdiparams``), a combined parameter file or a single variable file.

The file formats themselves (LoDTensor records, combined files, the ProgramDesc protobuf) are read by
``ppocr_torch.formats``, which the runtime uses for official exports too. Every inconsistency raises
:class:`~ppocr_torch.errors.SourceFormatError` naming the file (and the variable or record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ppocr_torch.formats.lod_tensor import (  # noqa: F401  (re-exported: the 1.x tests and tools use them)
    DTYPES, TensorRecord, iter_records, read_bytes, read_combined, read_tensor_file)
from ppocr_torch.formats.program_desc import (  # noqa: F401
    BlockInfo, OpInfo, ProgramInfo, VarInfo, parse_program, read_program)
from ppocr_torch.formats.protobuf import parse_tensor_desc  # noqa: F401

from ..errors import SourceFormatError

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    import os

# (program file, combined params file or None) tried in a folder, in this order
FOLDER_LAYOUTS = (
    ("model", "params"),  # PaddleOCR 1.x tools/export_model.py (save_inference_model model/params)
    ("__model__", "__params__"),  # fluid save_inference_model(params_filename="__params__")
    ("inference.pdmodel", "inference.pdiparams"),  # Paddle 2.x ProgramDesc export
    ("__model__", None),  # fluid default: one file per variable next to __model__
)


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


def read_static_model(path: str | os.PathLike, *, names: list[str] | None = None) -> StaticModel:
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
            from ppocr_torch.formats.pdparams import read_pdparams
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
