"""Loading the page-level models: DB text detectors (``load_detector``) and text-line orientation classifiers
(``load_orientation``).

Weights resolve as the recognisers' do (:func:`ppocr_torch.download.resolve_weights`): the folders of
``$PPOCR_TORCH_WEIGHTS_DIR``, the cache, the project's release, then PaddleOCR's official download converted
here on first use, checked against the content digest the registry records (``zoo/page/*.json``).

The returned module carries ``.spec`` (a :class:`~ppocr_torch.models.page_spec.PageModelSpec`): a detector's
``spec.preprocess`` (``mean``, ``std``, ``scale``, ``limit_side_len``, ``limit_type``) and ``spec.postprocess``
(DB ``thresh``, ``box_thresh``, ``unclip_ratio``, ``max_candidates``), a classifier's ``spec.labels`` and
``spec.input_shape``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError

_TASK_WORDS = {"det": "text detector", "cls": "orientation classifier"}


def list_detectors(pattern: str | None = None) -> list[str]:
    """Names of the registry's text detectors (fnmatch ``pattern``, case-insensitive)."""
    from .registry import list_page_models

    return list_page_models("det", pattern)


def list_orientation_models(pattern: str | None = None) -> list[str]:
    """Names of the registry's text-line orientation classifiers."""
    from .registry import list_page_models

    return list_page_models("cls", pattern)


def load_detector(name_or_path: str | os.PathLike = "PP-OCRv6_small_det", *, pretrained: bool = True,
                  download: bool = True, device: Any = "cpu"):
    """A DB text detector in eval mode: ``forward(x)`` maps a normalised [N, 3, H, W] float32 batch (H, W
    multiples of 32; BGR, ``(x / 255 - mean) / std``) to the text probability map [N, 1, H, W].

    Args:
        name_or_path: a registry name (:func:`list_detectors`) or the path of a converted checkpoint.
        pretrained: False builds the architecture with random weights (no file needed).
        download: allow fetching weights that are not cached.
        device: torch device.

    Raises:
        UnknownModelError: not a registry detector; CheckpointError: the file is not a detector checkpoint;
        WeightsNotCachedError, DownloadError, ChecksumError, CacheError: as :func:`ppocr_torch.load_model`.
    """
    return _load(name_or_path, "det", pretrained=pretrained, download=download, device=device)


def load_orientation(name_or_path: str | os.PathLike = "ch_ppocr_mobile_v2.0_cls", *, pretrained: bool = True,
                     download: bool = True, device: Any = "cpu"):
    """A text-line orientation classifier in eval mode: ``forward(x)`` maps a normalised [N, *spec.input_shape]
    batch to [N, len(spec.labels)] probabilities (``spec.labels``, e.g. ``["0", "180"]``). Arguments and errors as
    :func:`load_detector`."""
    return _load(name_or_path, "cls", pretrained=pretrained, download=download, device=device)


def _is_path(obj) -> bool:
    return isinstance(obj, os.PathLike) or (isinstance(obj, str) and (
        obj.lower().endswith((".pth", ".pt")) or os.path.isfile(obj)))


def _load(name_or_path, task, *, pretrained, download, device):
    from .api import _load_cpu_model, _to_device

    if _is_path(name_or_path):
        path = Path(name_or_path)
        model = _load_cpu_model(path)
        _check_task(model, task, path)
    elif isinstance(name_or_path, str):
        from .registry import get_page_entry

        entry = get_page_entry(name_or_path, task)
        if not pretrained:
            from .models.page_model import build_page_model

            model = build_page_model(entry.spec)
        else:
            from .download import resolve_weights

            path = resolve_weights(entry, download=download)
            model = _load_cpu_model(path)
            _check_task(model, task, path)
            if model.spec.name != entry.name:
                raise CheckpointError(f"checkpoint {str(path)!r} holds model {model.spec.name!r}, not {entry.name!r}")
    else:
        raise TypeError(f"name_or_path must be a model name or a checkpoint path, got {type(name_or_path).__name__}")
    return _to_device(model, device).eval()


def _check_task(model, task, path) -> None:
    got = getattr(model.spec, "task", "rec")
    if got != task:
        what = _TASK_WORDS.get(got, "text recogniser")
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {what} ({model.spec.name!r}), not a "
                              f"{_TASK_WORDS[task]}: load it with "
                              f"{ {'det': 'load_detector', 'cls': 'load_orientation'}.get(got, 'load_model') }()")
