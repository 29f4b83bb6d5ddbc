"""Page OCR: :class:`OCR` (reusable, thread-safe) and the one-liner :func:`ocr`.

The stages are PaddleOCR's text system (``tools/infer/predict_system.py``), each in its own module:

1. the page is resized and normalised for the detector (:mod:`.det_input`), which returns a text probability
   map;
2. DB post-processing turns the map into quadrilaterals in page pixels (:mod:`.db_postprocess`);
3. the boxes are put in reading order (:mod:`.reading_order`) and cut out as upright crops, vertical lines
   turned by 90 degrees (:mod:`.crop`);
4. optionally, a line classifier turns upside-down crops by 180 degrees (:mod:`.orientation`);
5. the crops are recognised in batches by a :class:`~ppocr_torch.Recognizer` (PaddleOCR's batching, 6 a batch);
6. lines whose recognition score is below ``text_score`` are dropped (PaddleOCR's ``drop_score``, 0.5).

The detector's settings (resize limit and type, normalisation, DB thresholds) default to the detector's own
(its ``.spec``, from the official ``inference.yml``); every one can be overridden.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..registry import DEFAULT_MODEL
from .orientation import CLS_THRESH

__all__ = ["DEFAULT_DET", "DEFAULT_CLS", "TEXT_SCORE", "DetSettings", "OCR", "ocr"]

DEFAULT_DET = "PP-OCRv6_small_det"
"""The detector of the default pipeline."""
DEFAULT_CLS = None
"""No line classifier by default (see docs/ocr.md: PaddleOCR 2.x's ``use_angle_cls=False``)."""
TEXT_SCORE = 0.5
"""PaddleOCR's ``drop_score``: lines recognised with a lower score are left out."""
_SENTINEL = object()


@dataclass(frozen=True)
class DetSettings:
    """Everything between the detector's input and its boxes (PaddleOCR's names)."""

    limit_side_len: int = 960
    limit_type: str = "max"
    max_side_limit: int | None = 4000  # PaddleOCR 3.x's: a huge photo is never run at full size
    resize_long: int | None = None  # DetResizeForTest(resize_long=N), type 2: replaces the three above
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    thresh: float = 0.3
    box_thresh: float = 0.6
    max_candidates: int = 1000
    unclip_ratio: float = 1.5
    use_dilation: bool = False
    score_mode: str = "fast"
    box_type: str = "quad"

    def postprocess(self):
        from .db_postprocess import DBPostProcess

        return DBPostProcess(thresh=self.thresh, box_thresh=self.box_thresh, max_candidates=self.max_candidates,
                             unclip_ratio=self.unclip_ratio, use_dilation=self.use_dilation,
                             score_mode=self.score_mode, box_type=self.box_type)


def settings_from_spec(spec) -> DetSettings:
    """The :class:`DetSettings` a detector's spec records (fields it lacks keep PaddleOCR's defaults)."""
    base = DetSettings()
    values = {}
    for name in DetSettings.__dataclass_fields__:
        for source in (spec, getattr(spec, "preprocess", None), getattr(spec, "postprocess", None)):
            if source is None:
                continue
            value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
            if value is not None:
                values[name] = tuple(value) if name in ("mean", "std") else value
                break
    return replace(base, **values)


def _validate(settings: DetSettings):
    """Raise ValueError for settings PaddleOCR would not take; return their DBPostProcess."""
    from .det_input import det_resize_shape, resize_long_shape

    det_resize_shape(64, 64, settings.limit_side_len, settings.limit_type)
    if settings.resize_long is not None:
        resize_long_shape(64, 64, settings.resize_long)
    if settings.max_side_limit is not None and (isinstance(settings.max_side_limit, bool) or not isinstance(
            settings.max_side_limit, int) or settings.max_side_limit < 32):
        raise ValueError(f"max_side_limit must be an integer of at least 32 or None, got {settings.max_side_limit!r}")
    return settings.postprocess()


def _to_numpy(out) -> np.ndarray:
    if isinstance(out, (list, tuple)):
        out = out[0]
    if hasattr(out, "detach"):
        out = out.detach().float().cpu().numpy()
    return np.asarray(out, dtype=np.float32)


def _load(kind: str, model, device, download):
    """A detector / line classifier module from a registry name or checkpoint path (or the module itself)."""
    import torch

    if isinstance(model, torch.nn.Module):
        from ..api import _to_device

        return _to_device(model, device).eval()
    from .. import page_models

    loader = page_models.load_detector if kind == "det" else page_models.load_orientation
    return loader(model, device=device, download=download)


class OCR:
    """Whole-page OCR: detect text lines, (optionally) fix their orientation, recognise them.

    Args:
        det: detector: registry name (default ``PP-OCRv6_small_det``), checkpoint path, or a loaded detector
            module (``forward`` -> ``[N, 1, H, W]`` probabilities, ``.spec``).
        rec: recogniser: registry name (default ``PP-OCRv6_small_rec``, embedded), checkpoint path, a
            :class:`~ppocr_torch.Recognizer` or a recognition module.
        cls: line orientation classifier (registry name, path or module), or None (default) for none.
        device: torch device of the three models.
        text_score: lines recognised with a lower score are dropped (PaddleOCR's ``drop_score``, 0.5;
            PaddleOCR 3.x's pipeline keeps every line: pass 0).
        cls_thresh: a line is turned when the classifier says "180" with more than this (0.9).
        rec_batch_size: lines per recognition batch (6, PaddleOCR's ``rec_batch_num``); ``rec_mode``: the
            Recognizer's mode: ``"paddle"`` (default: PaddleOCR's batching, so the texts are the official
            pipeline's) or ``"throughput"`` (each line at its own width bucket: its text never depends on the other
            lines of the page; 54 of the 57 test-page lines read the same as PaddleOCR, docs/ocr.md).
        det_settings: a :class:`DetSettings`, or keyword overrides of the detector's own settings:
            ``limit_side_len``, ``limit_type`` (``"max"``, ``"min"``, ``"resize_long"``), ``max_side_limit``
            (4000, PaddleOCR 3.x's cap on the longer resized side; None: no cap), ``resize_long`` (resize type 2,
            PP-OCRv5 mobile det's own; giving ``limit_side_len`` or ``limit_type`` turns it off),
            ``thresh``, ``box_thresh``, ``unclip_ratio``, ``use_dilation``, ``score_mode`` (``"fast"``,
            ``"slow"``), ``max_candidates``, ``mean``, ``std``. ``box_type="poly"`` is not offered: crops and
            reading order need quadrilaterals.
        download: allow downloading registry weights; ``num_threads``: as :class:`~ppocr_torch.Recognizer`.

    Calling it (``ocr(image)``; image: path, bytes, numpy BGR array or PIL image) returns an
    :class:`~ppocr_torch.page.result.OCRResult`. One instance may serve several threads.
    """

    def __init__(self, det: Any = DEFAULT_DET, rec: Any = DEFAULT_MODEL, cls: Any = DEFAULT_CLS, *,
                 device: Any = "cpu", text_score: float = TEXT_SCORE, cls_thresh: float = CLS_THRESH,
                 rec_batch_size: int = 6, rec_mode: str = "paddle", det_settings: DetSettings | None = None,
                 download: bool = True, num_threads: int | None = None, **det_overrides):
        import torch

        from ..api import Recognizer

        for name, value in (("text_score", text_score), ("cls_thresh", cls_thresh)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
        unknown = set(det_overrides) - set(DetSettings.__dataclass_fields__) - {"box_type"}
        if unknown:
            raise TypeError(f"OCR() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if ({"limit_side_len", "limit_type"} & set(det_overrides)) and "resize_long" not in det_overrides:
            det_overrides["resize_long"] = None  # an explicit limit replaces the detector's resize_long
        if det_overrides.get("box_type", "quad") != "quad":
            raise ValueError("OCR needs quadrilateral boxes (box_type='quad'); use DBPostProcess(box_type='poly') "
                             "directly for polygons")
        _validate(replace(DetSettings(), **det_overrides))  # bad overrides fail before any model is loaded
        if isinstance(rec, Recognizer):
            self.recognizer = rec
        else:
            self.recognizer = Recognizer(rec, device=device, batch_size=rec_batch_size, mode=rec_mode,
                                         download=download, num_threads=num_threads)
        self.device = torch.device(device)
        self.det = _load("det", det, self.device, download)
        self.cls = None if cls is None else _load("cls", cls, self.device, download)
        if self.cls is not None:
            from .orientation import check_classifier

            check_classifier(self.cls)
        settings = det_settings if det_settings is not None else settings_from_spec(getattr(self.det, "spec", None))
        self.det_settings = replace(settings, **det_overrides)
        self._postprocess = _validate(self.det_settings)
        self.text_score = float(text_score)
        self.cls_thresh = float(cls_thresh)
        self._lock = threading.Lock()

    @classmethod
    def from_preset(klass, preset: str, **kwargs) -> "OCR":  # noqa: N804  (``cls`` is the classifier argument)
        """The official pipeline ``preset`` (``"PP-OCRv6_small"``, ``"PP-OCRv6_tiny"``, ``"PP-OCRv5_mobile"``:
        :data:`~ppocr_torch.page.presets.PRESETS`); ``kwargs`` as :class:`OCR` (e.g. ``cls=...``, ``device=...``)."""
        from ..errors import UnknownModelError
        from .presets import PRESETS

        if preset not in PRESETS:
            raise UnknownModelError(f"unknown OCR preset {preset!r}; known: {', '.join(PRESETS)}")
        det, rec = PRESETS[preset]
        return klass(det=det, rec=rec, **kwargs)

    def __repr__(self) -> str:
        name = lambda m: getattr(getattr(m, "spec", None), "name", type(m).__name__)  # noqa: E731
        return (f"OCR(det={name(self.det)!r}, rec={self.recognizer.spec.name!r}, "
                f"cls={None if self.cls is None else name(self.cls)!r}, device={str(self.device)!r})")

    def __call__(self, image: Any):
        """Same as :meth:`ocr`."""
        return self.ocr(image)

    def ocr(self, image: Any):
        """Read one page; returns an :class:`~ppocr_torch.page.result.OCRResult` (lines in reading order).

        Raises:
            InvalidImageError: the image cannot be read.
        """
        from ..image_io import load_image
        from .crop import crop_quad
        from .reading_order import reading_order
        from .result import OCRLine, OCRResult

        img = load_image(image, channel_order=self.recognizer.channel_order)
        boxes, box_scores = self.detect(img)
        order = reading_order(boxes)
        boxes = [boxes[i] for i in order]
        box_scores = [box_scores[i] for i in order]
        crops = [crop_quad(img, box) for box in boxes]
        verdicts = [None] * len(crops)
        if self.cls is not None and crops:
            crops, verdicts = self.classify(crops)
        recs = self.recognizer(crops) if crops else []
        kept, dropped = [], []
        for box, bscore, rec, verdict in zip(boxes, box_scores, recs, verdicts):
            line = OCRLine(polygon=box, text=rec.text, score=float(rec.score), chars=rec.chars,
                           box_score=float(bscore), orientation=verdict)
            (kept if rec.score >= self.text_score else dropped).append(line)
        return OCRResult(lines=tuple(kept), image_size=tuple(img.shape[:2]), dropped=tuple(dropped))

    def detect(self, img: np.ndarray) -> tuple:
        """Boxes (float32 ``[N, 4, 2]``, page pixels, in the detector's contour order) and their scores of a
        uint8 BGR page."""
        import torch

        from .det_input import normalize_for_det, resize_for_det

        s = self.det_settings
        resized, _ = resize_for_det(img, s.limit_side_len, s.limit_type, s.max_side_limit, s.resize_long)
        x = torch.from_numpy(normalize_for_det(resized, s.mean, s.std)[None])
        with self._lock, torch.inference_mode():
            prob = _to_numpy(self.det(x.to(self.device)))
        return self._postprocess(prob, img.shape[:2])

    def classify(self, crops: list) -> tuple:
        """``(crops, verdicts)``: the crops, upside-down ones turned (see :mod:`.orientation`)."""
        from .orientation import classify

        return classify(self.cls, crops, cls_thresh=self.cls_thresh, device=self.device, lock=self._lock)


_pipelines: dict = {}
_pipelines_lock = threading.Lock()


def ocr(image: Any, *, det: Any = DEFAULT_DET, rec: Any = DEFAULT_MODEL, cls: Any = DEFAULT_CLS,
        device: Any = "cpu", text_score: float = TEXT_SCORE):
    """One-liner: read a page with a process-wide shared :class:`OCR` (built on first use per models/device).

    Returns an :class:`~ppocr_torch.page.result.OCRResult`; ``for line in result: line.polygon, line.text,
    line.score``.
    """
    names = (det, rec, cls)
    if not all(m is None or isinstance(m, str) for m in names):
        return OCR(det, rec, cls, device=device, text_score=text_score)(image)
    key = (det, rec, cls, str(device), float(text_score))
    pipe = _pipelines.get(key)
    if pipe is None:
        with _pipelines_lock:
            pipe = _pipelines.get(key)
            if pipe is None:
                pipe = _pipelines[key] = OCR(det, rec, cls, device=device, text_score=text_score)
    return pipe(image)
