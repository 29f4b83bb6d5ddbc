"""Map a PaddleOCR training state dict onto the torch training-form module by a few generic name rules.

Rules (each unit-tested): take one distillation branch (``Student.`` by default); drop MultiHead's
training-only branches (``head.sar_head``, ``head.gtc_head``, ``head.before_gtc``), a backbone's declared
unused classifier tail (``UNUSED_CHECKPOINT_KEYS``, e.g. PPHGNetV2's ``last_conv``/``fc``) and Paddle's duplicated
per-cell LSTM aliases (``...lstm.N.cell_fw/cell_bw...``, checked equal to the flattened weights first);
rename BatchNorm statistics (``_mean``/``_variance`` -> ``running_mean``/``running_var``); transpose the
weights of Linear layers (Paddle stores [in, out]). Everything else must match a torch name exactly, every
torch tensor must be filled once, and every source tensor used or dropped for a stated reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .errors import ConversionError, SpecMismatchError

TRAINING_ONLY_PREFIXES = ("head.sar_head.", "head.gtc_head.", "head.before_gtc.")
_CELL_ALIAS = re.compile(r"^(?P<base>.*)\.(?P<layer>\d+)\.cell_(?P<dir>fw|bw)\.(?P<param>weight_ih|weight_hh|bias_ih|bias_hh)$")
_CELL_SINGLE = re.compile(r"^(?P<base>.*)\.(?P<layer>\d+)\.cell\.(?P<param>weight_ih|weight_hh|bias_ih|bias_hh)$")


@dataclass
class MappingReport:
    flavour: str
    branch: str | None = None
    dropped: dict = field(default_factory=dict)  # reason -> count
    notes: list = field(default_factory=list)


def detect_flavour(keys: list[str]) -> tuple[str, str | None]:
    """("distillation", [branches]) when keys carry model prefixes like ``Student.``; else ("plain", [])."""
    prefixes = sorted({k.split(".", 1)[0] for k in keys})
    if any(p in ("Student", "Teacher") or re.fullmatch(r"(Student|Teacher)\d*", p) for p in prefixes):
        return "distillation", prefixes
    return "plain", []


def _drop(report, reason):
    report.dropped[reason] = report.dropped.get(reason, 0) + 1


def map_training_state(src: dict, model: torch.nn.Module, *, branch: str = "Student") -> tuple[dict, object]:
    """Return (state_dict for ``model`` (training form), MappingReport)."""
    flavour, branches = detect_flavour(src)
    report = MappingReport(flavour)
    if flavour == "distillation":
        if branch not in branches:
            raise ConversionError(f"distillation checkpoint: no branch {branch!r}; branches: {branches}")
        report.branch = branch
        for b in branches:
            if b != branch:
                report.dropped[f"other distillation branch {b}"] = sum(k.startswith(b + ".") for k in src)
        src = {k[len(branch) + 1:]: v for k, v in src.items() if k.startswith(branch + ".")}

    import sys

    unused = {"backbone." + k for k in getattr(sys.modules[type(model.backbone).__module__],
                                               "UNUSED_CHECKPOINT_KEYS", ())}
    modules = dict(model.named_modules())
    target = model.state_dict()
    out, used = {}, set()
    pending_aliases = []
    for key, value in src.items():
        if key.startswith(TRAINING_ONLY_PREFIXES):
            _drop(report, "training-only MultiHead branch (SAR/NRTR)")
            continue
        if key in unused:
            _drop(report, "backbone classifier tail never used by recognition")
            continue
        m = _CELL_ALIAS.match(key) or _CELL_SINGLE.match(key)
        if m:
            pending_aliases.append((key, m, value))
            continue
        tkey = re.sub(r"\._mean$", ".running_mean", re.sub(r"\._variance$", ".running_var", key))
        if tkey not in target:
            raise ConversionError(f"checkpoint tensor {key!r} has no place in the {model.spec.name} architecture "
                                  f"(wrong model family or config?)")
        parent = modules.get(tkey.rsplit(".", 1)[0])
        arr = np.asarray(value)
        if isinstance(parent, nn.Linear) and tkey.endswith(".weight") and arr.ndim == 2:
            arr = arr.T
        want = tuple(target[tkey].shape)
        if tuple(arr.shape) != want:
            classifier = tkey.startswith("head.") and tkey.rsplit(".", 2)[-2] in ("fc", "fc2")
            if classifier and arr.shape[0] != want[0]:
                raise SpecMismatchError(
                    f"classifier {tkey}: the checkpoint has {arr.shape[0]} classes but the dictionary/config give "
                    f"{want[0]} (blank + dictionary + space if use_space_char): wrong dictionary, or "
                    f"use_space_char set wrongly?")
            raise SpecMismatchError(f"tensor {key!r}: checkpoint shape {tuple(arr.shape)} vs architecture {want} "
                                    f"(wrong model family or config?)")
        out[tkey] = torch.from_numpy(np.ascontiguousarray(arr)).to(target[tkey].dtype)
        used.add(key)

    for key, m, value in pending_aliases:  # Paddle's per-cell copies: must equal the flattened tensors
        d = m.groupdict()
        sfx = "_reverse" if d.get("dir") == "bw" else ""
        flat = f"{d['base']}.{d['param']}_l{d['layer']}{sfx}"
        if flat not in out:
            raise ConversionError(f"LSTM alias {key!r} without its flattened tensor {flat!r}")
        if not np.array_equal(out[flat].numpy(), np.asarray(value)):
            raise ConversionError(f"LSTM alias {key!r} differs from {flat!r}: inconsistent checkpoint")
        _drop(report, "duplicated per-cell LSTM alias")

    missing = [k for k, v in target.items() if k not in out and v.is_floating_point()]
    if missing:
        raise ConversionError(f"{len(missing)} tensors of {model.spec.name} are missing from the checkpoint, "
                              f"e.g. {missing[:4]} (wrong model family or a partial checkpoint?)")
    for k, v in target.items():
        if k not in out:  # integer buffers, e.g. BatchNorm's num_batches_tracked
            out[k] = v
    return out, report
