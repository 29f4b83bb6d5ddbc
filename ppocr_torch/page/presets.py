"""The official pipelines as (detector, recogniser) pairs: what ``OCR.from_preset`` and the torch.hub entrypoints
build (stdlib only, so that hubconf.py stays light)."""

from __future__ import annotations

PRESETS = {
    "PP-OCRv6_small": ("PP-OCRv6_small_det", "PP-OCRv6_small_rec"),
    "PP-OCRv6_tiny": ("PP-OCRv6_tiny_det", "PP-OCRv6_tiny_rec"),
    "PP-OCRv5_mobile": ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"),
}
"""Preset name -> (detector, recogniser) registry names. The line classifier is off in every preset
(``cls="ch_ppocr_mobile_v2.0_cls"`` turns it on)."""


def hub_name(preset: str) -> str:
    """The torch.hub entrypoint of a preset: ``PP-OCRv6_small`` -> ``pp_ocrv6_small``."""
    return preset.lower().replace("-", "_").replace(".", "_")
