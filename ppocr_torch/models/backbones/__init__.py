"""Backbone families, one per file, looked up by PaddleOCR's class name (imported on first use)."""

import importlib
from ...errors import SpecError

# PaddleOCR class name -> "module:class" in this package
BACKBONES = {
    "PPLCNetV4": "lcnet_v4:PPLCNetV4",
    "MobileNetV1Enhance": "mv1_enhance:MobileNetV1Enhance",
    "MobileNetV3": "mobilenet_v3:MobileNetV3",
    "ResNet": "resnet_vd:ResNet",
    "PPLCNetV3": "lcnet_v3:PPLCNetV3",
    "PPHGNet_small": "hgnet:PPHGNet_small",
    "PPHGNetV2_B4": "hgnet_v2:PPHGNetV2_B4",
}


def get_backbone(name):
    """The backbone class registered under PaddleOCR's ``name``."""
    if name not in BACKBONES:
        raise SpecError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    module, cls = BACKBONES[name].split(":")
    return getattr(importlib.import_module(f".{module}", __name__), cls)


__all__ = ["BACKBONES", "get_backbone"]
