"""Paddle Inference's own loading of an official export, for the conversion tool's reference checks.

The runtime reads exports without Paddle (``ppocr_torch.formats``). Here Paddle itself loads the same files: the
PIR program as it is, a ProgramDesc through Paddle's own translator into PIR, parameters from a private scope.
:class:`LoadedProgram` turns that program into the runtime's :class:`~ppocr_torch.formats.graph.Graph`, so that
one extractor (``ppocr_torch.formats.source_ops.extract_ops``) reads both, and the tests can require that the
two readings agree op for op. Paddle Inference (``conversion.paddle_runtime``) and the float64 interpreter
(``conversion.reference64``) run this loaded program.

Tensor names: each op output is named ``<op type>@<op index>.<result>`` after its position in the loaded
program, as the graph names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ppocr_torch.formats import resolve_export_files as resolve_files  # noqa: F401  (re-exported)
from ppocr_torch.formats.graph import Graph
from ppocr_torch.formats.lod_tensor import iter_records
from ppocr_torch.formats.source_ops import extract_ops

from ..errors import SourceFormatError

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    import os

class LoadedProgram:
    """A Paddle inference program in PIR form with its parameters, and its :class:`Graph`."""

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
        self.graph = self._to_graph()

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
        """The folded constant of a PIR value, or None."""
        return self.graph.const(self._values.get(self.key(value)))

    # ----- the graph ----------------------------------------------------------------------------------
    def _param_array(self, name):
        var = self.scope.find_var(name)
        if var is None:
            raise SourceFormatError(f"{self.params_path}: parameter {name!r} of {self.model_path.name} is missing")
        try:
            return np.array(var.get_tensor())
        except Exception as exc:  # an uninitialised tensor
            raise SourceFormatError(f"{self.params_path}: parameter {name!r} was not loaded ({exc})") from exc

    def _to_graph(self):
        params = {}
        graph = Graph(self.model_path, params)
        self._values = {}
        for op in self.ops:
            t, attrs = op.name(), dict(op.attrs())
            if t == "builtin.parameter" or t == "builtin.constant" and "parameter_name" in attrs:
                name = attrs["parameter_name"]
                params[name] = self._param_array(name)
                t, attrs = "builtin.parameter", {"parameter_name": name, "shape": list(op.result(0).shape)}
            inputs = [self._values.get(self.key(v)) for v in op.operands_source()]
            node = graph.add(t, inputs, op.num_results(), attrs)
            for r, value in enumerate(node.outputs):
                self._values[(op.id(), r)] = value
        graph.fold_constants()
        return graph


def check_export(path: str | os.PathLike) -> tuple[Path, Path]:
    """(program file, parameter file) of a Paddle inference export, after a structural check without Paddle: the
    program parses (PIR JSON or ProgramDesc protobuf) and the parameter file holds exactly its persistable
    tensors. Paddle itself does not check this and can crash the process (SIGSEGV) on a corrupt program, so
    every Paddle load of an export goes through here first. Raises SourceFormatError naming the file."""
    from ppocr_torch.formats import _pir_parameter_names
    from ppocr_torch.formats.lod_tensor import read_combined
    from ppocr_torch.formats.program_desc import read_program

    model_path, params_path = resolve_files(path)
    if model_path.suffix == ".json":
        names = _pir_parameter_names(model_path)
    else:
        names = read_program(model_path).persistable_names()
    read_combined(params_path, names)
    return model_path, params_path


def load_program(path: str | os.PathLike) -> LoadedProgram:
    """Load a Paddle inference export (folder, ``.json`` or ``.pdmodel``) as a ``LoadedProgram``."""
    model_path, params_path = check_export(path)
    n_records = sum(1 for _ in iter_records(params_path))  # Paddle reads a cut file without complaint
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
        if len(loaded.graph.param_names) != n_records:
            raise SourceFormatError(f"{params_path}: holds {n_records} tensors but {model_path.name} has "
                                    f"{len(loaded.graph.param_names)} parameters (files of two different exports?)")
        return loaded
    finally:
        if was_dynamic:
            paddle.disable_static()


def read_paddle_ops(path_or_program: str | os.PathLike | LoadedProgram) -> tuple[list, LoadedProgram]:
    """Return (ops, program) for a Paddle inference export (folder, program file or ``LoadedProgram``), as
    Paddle loads it."""
    prog = path_or_program if isinstance(path_or_program, LoadedProgram) else load_program(path_or_program)
    return extract_ops(prog.graph), prog


def read_inference_dictionary(model_path: str | os.PathLike) -> list[str] | None:
    """The character list in the ``inference.yml`` next to a Paddle inference program, or None."""
    from ..official import read_inference_yml

    yml = Path(model_path).with_name("inference.yml") if not Path(model_path).is_dir() else \
        Path(model_path) / "inference.yml"
    if not yml.is_file():
        return None
    return read_inference_yml(yml)["character_dict"]
