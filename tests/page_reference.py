"""The references of the page-OCR tests: RapidOCR 3.10 (which mirrors PaddleOCR's text system) set up to run
PaddleOCR's arithmetic with the official ONNX files, and quad IoU."""

from __future__ import annotations

import numpy as np

from ort_standin import PIPELINE_FILES, official_file


def rapidocr_pipeline(pipeline: str, settings, *, text_score=0.5, rec_batch=6, threads=None, cls=False):
    """A ``rapidocr.RapidOCR`` with the official det/rec ONNX files of ``pipeline`` and the detector settings
    ``settings`` (a DetSettings): no resizing of its own before detection, no vertical padding; with ``cls``, the
    official ch_ppocr_mobile_v2.0_cls ONNX file (cls_thresh 0.9), else no classifier."""
    from rapidocr import RapidOCR

    assert settings.resize_long is None, "RapidOCR has no resize type 2 (resize_long)"
    assert settings.max_side_limit is None or settings.max_side_limit >= 4000, "pages stay under the cap"
    files = PIPELINE_FILES[pipeline]
    params = {
        "Global.use_cls": bool(cls), "Global.use_preprocess_img": False, "Global.use_vertical_padding": False,
        "Global.text_score": text_score, "Global.log_level": "error",
        "Det.model_path": str(official_file(*files["det"])), "Rec.model_path": str(official_file(*files["rec"])),
        "Det.limit_side_len": settings.limit_side_len, "Det.limit_type": settings.limit_type,
        "Det.mean": list(settings.mean), "Det.std": list(settings.std), "Det.thresh": settings.thresh,
        "Det.box_thresh": settings.box_thresh, "Det.unclip_ratio": settings.unclip_ratio,
        "Det.use_dilation": settings.use_dilation, "Det.score_mode": settings.score_mode,
        "Det.max_candidates": settings.max_candidates, "Rec.rec_batch_num": rec_batch,
    }
    if cls:
        params["Cls.model_path"] = str(official_file(*PIPELINE_FILES["cls"]))
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    if "dict" in files:
        params["Rec.rec_keys_path"] = str(official_file(*files["dict"]))
    return RapidOCR(params=params)


def quad_iou(a, b) -> float:
    """Intersection over union of two convex quadrilaterals."""
    import cv2

    a = np.asarray(a, dtype=np.float32).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 2)
    inter, _ = cv2.intersectConvexConvex(a, b)
    union = cv2.contourArea(a) + cv2.contourArea(b) - inter
    return float(inter / union) if union > 0 else 0.0


def match_lines(ours, ref_boxes, ref_texts):
    """Pair each reference line with our line of highest IoU (each of ours used once):
    a list of (iou, our text, reference text)."""
    free = list(range(len(ours)))
    pairs = []
    for box, text in zip(ref_boxes, ref_texts):
        if not free:
            pairs.append((0.0, None, text))
            continue
        best = max(free, key=lambda i: quad_iou(ours[i].polygon, box))
        free.remove(best)
        pairs.append((quad_iou(ours[best].polygon, box), ours[best].text, text))
    return pairs
