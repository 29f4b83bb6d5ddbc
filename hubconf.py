"""torch.hub entrypoints: ``torch.hub.load("<owner>/ppocr-torch:<tag>", "pp_ocrv6_small_rec", trust_repo=True)``.

Each entrypoint returns a ready :class:`ppocr_torch.Recognizer`; its ``.model`` is the ``nn.Module``.
Imports stay light: ppocr_torch loads torch and OpenCV only when a model is built.
"""

dependencies = ["torch", "numpy", "cv2"]


def pp_ocrv6_small_rec(pretrained=True, device="cpu", **kwargs):
    """PP-OCRv6_small_rec (PPLCNetV4 small + light SVTR + CTC, 18710 classes, input 3x48xW), embedded.

    Example::

        rec = torch.hub.load("ppocr-torch/ppocr-torch", "pp_ocrv6_small_rec", trust_repo=True)
        print(rec("line.png").text)
    """
    return _recognizer("PP-OCRv6_small_rec", pretrained, device, **kwargs)


def _recognizer(name, pretrained, device, **kwargs):
    from ppocr_torch import Recognizer, load_model

    return Recognizer(load_model(name, device=device, pretrained=pretrained), device=device, **kwargs)
