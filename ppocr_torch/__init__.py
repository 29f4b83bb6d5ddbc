"""ppocr_torch: PaddleOCR text-recognition models in PyTorch.

Quick start::

    import ppocr_torch
    result = ppocr_torch.recognize("line.png")   # RecResult(text=..., score=..., chars=...)
    print(result.text, result.score)
    page = ppocr_torch.ocr("page.jpg")           # whole pages: OCRResult, lines in reading order

The public names are imported lazily (on first attribute access), so ``import ppocr_torch`` is cheap and
does not import torch or OpenCV.
"""

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "recognize": (".api", "recognize"),
    "Recognizer": (".api", "Recognizer"),
    "load_model": (".api", "load_model"),
    "list_models": (".api", "list_models"),
    "recognize_files": (".bulk", "recognize_files"),
    "RecResult": (".decode", "RecResult"),
    "load_detector": (".page_models", "load_detector"),
    "load_orientation": (".page_models", "load_orientation"),
    "list_detectors": (".page_models", "list_detectors"),
    "list_orientation_models": (".page_models", "list_orientation_models"),
    "ocr": (".page.pipeline", "ocr"),
    "OCR": (".page.pipeline", "OCR"),
    "OCRResult": (".page.result", "OCRResult"),
    "OCRLine": (".page.result", "OCRLine"),
    "errors": (".errors", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
