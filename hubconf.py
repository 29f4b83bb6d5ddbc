"""torch.hub entrypoints: one per registry model, plus ``list_models`` and ``load_model``.

    import torch
    rec = torch.hub.load("ppocr-torch/ppocr-torch:v0.1.0", "pp_ocrv6_small_rec", trust_repo=True)
    print(rec("line.png").text)

Each model entrypoint is the model's registry name as a Python identifier (``PP-OCRv6_small_rec`` ->
``pp_ocrv6_small_rec``), takes ``(pretrained=True, device="cpu", **kwargs)`` and returns a ready
:class:`ppocr_torch.Recognizer` (its ``.model`` is the ``nn.Module``); ``load_recognizer(name)`` does the same by
name, and ``load_model(name)`` returns the ``nn.Module`` itself, like ``ppocr_torch.load_model``. ``torch.hub.help(repo, name)``
shows what the model is and where its weights come from.

Importing this file stays light: the entrypoints are generated from the registry (JSON) without importing
torch; torch and OpenCV are imported when a model is built.
"""

dependencies = ["torch", "numpy", "cv2", "requests", "tqdm"]

from ppocr_torch import hub as _hub  # noqa: E402  (torch.hub reads `dependencies` first)
from ppocr_torch import registry as _registry  # noqa: E402


def list_models(pattern=None, with_weights=False):
    """Registry model names (what ``load_model`` takes), optionally filtered.

    Args:
        pattern (str): fnmatch pattern on the name, case-insensitive, e.g. ``"*v5*"``.
        with_weights (bool): only models that have converted weights.

    Example::

        import torch
        print(torch.hub.load("ppocr-torch/ppocr-torch:v0.1.0", "list_models", trust_repo=True))
    """
    return _registry.list_models(pattern, with_weights=with_weights)


def load_recognizer(name, pretrained=True, device="cpu", **kwargs):
    """A ready ``ppocr_torch.Recognizer`` for a registry name or alias, or a checkpoint path.

    The same as the model's own entrypoint (``load_recognizer("PP-OCRv6_small_rec")`` ==
    ``pp_ocrv6_small_rec()``); ``.model`` is the ``torch.nn.Module``. Keyword arguments: ``download``,
    ``weights`` (a checkpoint file to use instead of the registry's), ``batch_size``, ``mode``,
    ``channel_order``.

    Example::

        import torch
        rec = torch.hub.load("ppocr-torch/ppocr-torch:v0.1.0", "load_recognizer", "PP-OCRv6_small_rec",
                             trust_repo=True)
        print(rec("samples/sample_line.png").text)
    """
    return _hub.build_recognizer(name, pretrained=pretrained, device=device, **kwargs)


def load_model(name, pretrained=True, device="cpu", download=True):
    """The ``torch.nn.Module`` of a registry model or checkpoint path, as ``ppocr_torch.load_model`` returns it:
    eval mode, ``.spec`` and ``.charset`` attached; it takes ``[B, 3, H, W]`` in [-1, 1] and returns CTC
    probabilities.

    Example::

        import torch
        model = torch.hub.load("ppocr-torch/ppocr-torch:v0.1.0", "load_model", "PP-OCRv6_small_rec",
                               trust_repo=True)
        probs = model(torch.zeros(1, 3, model.spec.input_height, 320))
    """
    from ppocr_torch import load_model as _load_model

    return _load_model(name, pretrained=pretrained, device=device, download=download)


def _define_entrypoints():
    entries = {e.name: e for e in _registry.entries()}
    for ep, model_name in _hub.entrypoints(entries.values()).items():
        globals()[ep] = _hub.make_entrypoint(model_name, ep, __name__, entries[model_name])


def _pipeline_entrypoint(preset, ep):
    def entrypoint(device="cpu", **kwargs):
        from ppocr_torch.page.pipeline import OCR

        return OCR.from_preset(preset, device=device, **kwargs)

    det, rec = _PRESETS[preset]
    entrypoint.__name__ = entrypoint.__qualname__ = ep
    entrypoint.__doc__ = f"""Whole-page OCR with {preset}: {det} + {rec}, no line classifier (``cls=...`` adds one).

    Returns a ``ppocr_torch.OCR``: ``result = ocr("page.jpg")``, then ``for line in result: line.polygon, line.text,
    line.score``. Keyword arguments go to ``ppocr_torch.OCR`` (``device``, ``cls``, ``text_score``, detector
    settings such as ``limit_side_len``).

    Example::

        import torch
        ocr = torch.hub.load("{_hub.HUB_REPO}:{_hub.HUB_REF}", "{ep}", trust_repo=True)
        print(ocr("page.jpg").text)
    """
    return entrypoint


from ppocr_torch.page.presets import PRESETS as _PRESETS, hub_name as _hub_name  # noqa: E402  (stdlib only)

_define_entrypoints()
for _preset in _PRESETS:
    _ep = _hub_name(_preset)
    if _ep in globals():
        raise RuntimeError(f"pipeline entrypoint {_ep!r} clashes with a model entrypoint")
    globals()[_ep] = _pipeline_entrypoint(_preset, _ep)
