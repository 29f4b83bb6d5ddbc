"""``build_model(spec)``: name -> class tables and in/out channel threading (PaddleOCR base_model.py)."""

from __future__ import annotations

from .backbones import get_backbone
from .deploy import reparameterize_model
from .heads import CTCHead, MultiHead
from .necks import SequenceEncoder
from .rec_model import RecModel
from .spec import ModelSpec
from ..errors import SpecError

HEADS = {"CTCHead": CTCHead, "MultiHead": MultiHead}


def build_model(spec: ModelSpec, *, form: str = "deploy", charset: list[str] | None = None) -> RecModel:
    """Build the torch module described by ``spec`` (random weights) in ``form`` "train" or "deploy"."""
    if form not in ("train", "deploy"):
        raise SpecError(f"form must be 'train' or 'deploy', got {form!r}")
    bname, bargs = spec.component("backbone")
    backbone = get_backbone(bname)(**bargs)
    channels = backbone.out_channels
    neck = None
    if spec.neck is not None:
        nname, nargs = spec.component("neck")
        neck = SequenceEncoder(channels, nname, **nargs)
        channels = neck.out_channels
    hname, hargs = spec.component("head")
    if hname not in HEADS:
        raise SpecError(f"unknown head {hname!r}; known: {sorted(HEADS)}")
    head = HEADS[hname](channels, spec.num_classes, **hargs)
    model = RecModel(backbone, neck, head, spec=spec, charset=charset)
    model.eval()
    if form == "deploy":
        reparameterize_model(model)
    return model
