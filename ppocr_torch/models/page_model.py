"""The page-level networks and their builder: DB text detector (backbone -> neck -> head) and text-line
orientation classifier (backbone -> head), built from a :class:`~.page_spec.PageModelSpec`."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SpecError
from .page_spec import PageModelSpec


class DetModel(nn.Module):
    """``forward(x)``: normalised [N, 3, H, W] (H, W multiples of 32) -> probability map [N, 1, H, W].

    ``forward(x, return_stages=True)`` returns ``{"backbone": [c2..c5], "neck": ..., "head": ...}``."""

    def __init__(self, backbone, neck, head, spec=None):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.spec = spec
        self.weights_meta = {}
        self.form = "train"

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        feats = self.backbone(x)
        fused = self.neck(feats)
        out = self.head(fused)
        return {"backbone": feats, "neck": fused, "head": out} if return_stages else out


class ClsModel(nn.Module):
    """``forward(x)``: normalised [N, 3, H, W] -> [N, len(spec.labels)] probabilities (eval mode)."""

    def __init__(self, backbone, head, spec=None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.neck = None
        self.spec = spec
        self.weights_meta = {}
        self.form = "train"

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        feats = self.backbone(x)
        out = self.head(feats)
        return {"backbone": feats, "head": out} if return_stages else out

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)


NECKS = {"RSEFPN": "rse_fpn:RSEFPN"}
HEADS = {"DBHead": "db:DBHead", "ClsHead": "cls:ClsHead"}


def _lookup(table, name, package, what):
    import importlib

    if name not in table:
        raise SpecError(f"unknown {what} {name!r}; known: {sorted(table)}")
    module, cls = table[name].split(":")
    return getattr(importlib.import_module(f".{package}.{module}", __package__), cls)


def build_page_model(spec: PageModelSpec, *, form: str = "deploy") -> nn.Module:
    """The torch module described by ``spec`` (random weights) in ``form`` "train" or "deploy", in eval mode."""
    from .backbones import get_backbone
    from .deploy import reparameterize_model

    if form not in ("train", "deploy"):
        raise SpecError(f"form must be 'train' or 'deploy', got {form!r}")
    bname, bargs = spec.component("backbone")
    backbone = get_backbone(bname)(**bargs)
    hname, hargs = spec.component("head")
    head_cls = _lookup(HEADS, hname, "heads", "head")
    if spec.task == "det":
        if spec.neck is None:
            raise SpecError(f"detector spec {spec.name!r} has no neck")
        nname, nargs = spec.component("neck")
        neck = _lookup(NECKS, nname, "necks", "neck")(backbone.out_channels, **nargs)
        model = DetModel(backbone, neck, head_cls(neck.out_channels, **hargs), spec=spec)
    else:
        hargs.setdefault("class_dim", len(spec.labels))
        if hargs["class_dim"] != len(spec.labels):
            raise SpecError(f"{spec.name}: head class_dim {hargs['class_dim']} but {len(spec.labels)} labels")
        model = ClsModel(backbone, head_cls(backbone.out_channels, **hargs), spec=spec)
    model.eval()
    if form == "deploy":
        reparameterize_model(model)
    return model
