"""Backbone families, one per file; looked up by PaddleOCR's class name."""

from .lcnet_v4 import PPLCNetV4
from .mv1_enhance import MobileNetV1Enhance

BACKBONES = {
    "PPLCNetV4": PPLCNetV4,
    "MobileNetV1Enhance": MobileNetV1Enhance,
}

__all__ = ["BACKBONES", "PPLCNetV4", "MobileNetV1Enhance"]
