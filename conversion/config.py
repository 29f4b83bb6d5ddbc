"""PaddleOCR training YAML (``Architecture``, ``Global``) -> ModelSpec.

Handles plain models, distillation configs (``Architecture.Models.{Teacher,Student}``: the student by
default) and MultiHead heads (the CTC branch; SAR/NRTR are training-only). Constructor arguments our modules
do not take (learning-rate multipliers, regularisation, ``use_rep`` ...) are dropped and listed in ``notes``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ppocr_torch.models.spec import ModelSpec

from .errors import ConversionError

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    import os


def load_yaml(path: str | os.PathLike) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConversionError(f"{path}: not a valid YAML file: {exc}") from exc


def _accepted(cls, kwargs, notes, where):
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    keep = {k: v for k, v in kwargs.items() if k in params}
    dropped = sorted(set(kwargs) - set(keep))
    if dropped:
        notes.append(f"{where}: ignored training-only arguments {dropped}")
    return keep


def _architecture(cfg, branch):
    arch = cfg.get("Architecture")
    if not isinstance(arch, dict):
        raise ConversionError("config has no Architecture section")
    if "Models" in arch:
        models = arch["Models"]
        if branch not in models:
            raise ConversionError(f"distillation config: no branch {branch!r}; branches: {sorted(models)}")
        return models[branch], f"distillation branch {branch}"
    return arch, None


def _input_height(cfg):
    g = cfg.get("Global", {}) or {}
    if g.get("d2s_train_image_shape"):
        return int(g["d2s_train_image_shape"][1])
    for section in ("Eval", "Train"):
        for t in ((cfg.get(section) or {}).get("dataset") or {}).get("transforms") or []:
            if isinstance(t, dict) and "RecResizeImg" in t:
                return int(t["RecResizeImg"]["image_shape"][1])
    raise ConversionError("cannot find the input shape (Global.d2s_train_image_shape or RecResizeImg.image_shape)")


def _extra(g, reverse_text, notes):
    """``max_text_length`` and the reading order. ``reverse_text``: True/False as the caller says; None: what
    PaddleOCR's decoder would do with this config (it reverses the text iff the dictionary path contains
    "arabic"), stated in the notes so that the choice is visible and can be overridden."""
    extra = {}
    if g.get("max_text_length"):
        extra["max_text_length"] = g["max_text_length"]
    if reverse_text is None:
        reverse_text = "arabic" in str(g.get("character_dict_path", ""))
        if reverse_text:
            notes.append("reverse_text: PaddleOCR's decoder reverses the text of this config (its dictionary path "
                         "contains 'arabic'); pass --no-reverse-text to keep the model's order")
    if reverse_text:
        extra["reverse_text"] = True
    return extra


def spec_from_config(cfg: dict, *, name: str, dict_chars: list[str], dictionary_file: str | None = None,
                     branch: str = "Student", reverse_text: bool | None = None) -> tuple[ModelSpec, list[str]]:
    """Return (ModelSpec, notes). ``dict_chars``: the dictionary lines (without blank/space); ``reverse_text``:
    the right-to-left display order (None: PaddleOCR's behaviour for this config, see ``_extra``)."""
    from ppocr_torch.models.backbones import get_backbone
    from ppocr_torch.models.necks.sequence_encoder import ENCODERS

    notes = []
    arch, how = _architecture(cfg, branch)
    if how:
        notes.append(how)
    if arch.get("Transform"):
        raise ConversionError(f"{name}: a Transform (e.g. TPS) is not supported")
    g = cfg.get("Global", {}) or {}
    use_space = bool(g.get("use_space_char", False))
    num_classes = 1 + len(dict_chars) + int(use_space)

    b = dict(arch["Backbone"])
    bname = b.pop("name")
    backbone = {"name": bname, **_accepted(get_backbone(bname), b, notes, f"Backbone {bname}")}

    neck = None
    if arch.get("Neck"):
        n = dict(arch["Neck"])
        if n.pop("name") != "SequenceEncoder":
            raise ConversionError(f"{name}: only SequenceEncoder necks are supported")
        enc = n.pop("encoder_type")
        neck = {"name": enc, **n}

    h = dict(arch["Head"])
    hname = h.pop("name")
    if hname == "CTCHead":
        head = {"name": "CTCHead", **{k: v for k, v in h.items() if k == "mid_channels"}}
    elif hname == "MultiHead":
        ctc = next((item["CTCHead"] for item in h.get("head_list", []) if "CTCHead" in item), None)
        if ctc is None:
            raise ConversionError(f"{name}: MultiHead without a CTCHead branch")
        others = [list(item)[0] for item in h.get("head_list", []) if "CTCHead" not in item]
        notes.append(f"MultiHead: CTC branch converted; training-only {others} dropped")
        cneck = dict(ctc.get("Neck") or {"name": "reshape"})
        if cneck["name"] not in ENCODERS:
            raise ConversionError(f"{name}: unknown CTC neck {cneck['name']!r}")
        chead = {k: v for k, v in (ctc.get("Head") or {}).items() if k in ("mid_channels",)}
        head = {"name": "MultiHead", "neck": cneck, "head": chead}
    else:
        raise ConversionError(f"{name}: head {hname!r} is not a CTC head; only CTC recognisers are supported")
    dict_name = Path(dictionary_file or g.get("character_dict_path") or "custom_dict.txt").name
    spec = ModelSpec(name=name, backbone=backbone, neck=neck, head=head, input_height=_input_height(cfg),
                     num_classes=num_classes, dictionary=dict_name, use_space_char=use_space,
                     family=bname, extra=_extra(g, reverse_text, notes))
    return spec, notes
