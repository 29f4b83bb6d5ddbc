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
