"""Opt-in inference modes that trade a little fidelity or a compile for speed (see docs/speed.md).

* ``"compile"``: ``torch.compile`` with inductor and weight freezing (CPU: oneDNN fused kernels, dynamic
  widths); the first call at each new shape family compiles (tens of seconds).
* ``"int8"``: dynamic int8 quantisation of the CTC classifier (the ``[C, 18k]`` linear layer), weights
  int8 per tensor, activations quantised per call; everything else stays float32.

The measured speed and parity cost of each (text agreement and |Δscore| against the float32 default on the
rendered test lines) are in docs/speed.md, from ``python benchmarks/modes.py``.
"""

from __future__ import annotations

import warnings
from typing import Iterable

from torch import nn

from ..errors import PPOCRTorchError

OPTIMIZATIONS = ("compile", "int8")


class OptimizationError(PPOCRTorchError, ValueError):
    """An unknown optimisation name, or one this torch cannot apply."""


def parse_optimize(optimize: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"compile,int8"`` / ``["int8"]`` / None -> a tuple of known names, in ``OPTIMIZATIONS`` order."""
    if optimize is None:
        return ()
    names = optimize.split(",") if isinstance(optimize, str) else list(optimize)
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in OPTIMIZATIONS]
    if unknown:
        raise OptimizationError(f"unknown optimisation {unknown[0]!r}; choose from {', '.join(OPTIMIZATIONS)}")
    return tuple(n for n in OPTIMIZATIONS if n in names)


def quantize_classifier(model: nn.Module) -> nn.Module:
    """Replace ``model``'s CTC classifier by a dynamically quantised int8 linear layer (in place, CPU)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    from .onednn import to_plain

    head = model.head.ctc_head if hasattr(model.head, "ctc_head") else model.head
    attr = "fc" if getattr(head, "mid_channels", None) is None else "fc2"
    linear = to_plain(getattr(head, attr))
    with warnings.catch_warnings():  # torch marks its quantised tensor API deprecated; it still ships it
        warnings.simplefilter("ignore")
        linear.qconfig = _dynamic_qconfig()
        setattr(head, attr, DynamicQuantizedLinear.from_float(linear))
    return model


def _dynamic_qconfig():
    from torch.ao.quantization import default_dynamic_qconfig

    return default_dynamic_qconfig


def compile_model(model: nn.Module):
    """``torch.compile`` (inductor, freezing, dynamic shapes) of ``model`` in its plain-module form."""
    import torch

    from .onednn import to_plain

    if not hasattr(torch, "compile"):
        raise OptimizationError("optimisation 'compile' needs torch.compile (torch >= 2.0)")
    to_plain(model)
    return torch.compile(model, dynamic=True, options={"freezing": True})


def apply_optimizations(model: nn.Module, names: tuple[str, ...]):
    """The model to call for ``names`` (a compiled wrapper for "compile"; ``model`` itself otherwise)."""
    if "int8" in names:
        quantize_classifier(model)
    if "compile" in names:
        return compile_model(model)
    return model
