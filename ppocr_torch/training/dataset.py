"""Text-line datasets for CTC training: labels encoded to class indices, PaddleOCR's training resize, batching.

:class:`LineDataset` reads any mix of label files and LMDB folders (:mod:`.labels`), drops the samples a CTC model
cannot learn from (counted in ``skipped``), and returns each sample resized and normalised exactly like PaddleOCR's
``RecResizeImg`` for CTC training: the line is resized to the model height keeping its aspect ratio, its width
capped at the configured image width (wider lines are squeezed), mapped to ``[-1, 1]`` with ``(x / 255 - 0.5) /
0.5`` in float32 (the same arithmetic as inference, :mod:`ppocr_torch.preprocess`) and zero-padded on the right.

Skip reasons (``LineDataset.skipped``):

* ``malformed``: a label-file line without the delimiter, or an LMDB label that is missing or not UTF-8;
* ``missing_image``: the image file of a label-file line does not exist;
* ``empty``: the label is empty (after removing unknown characters, with ``unknown_chars="remove"``);
* ``unknown_chars``: the label holds a character outside the character set (``unknown_chars="skip"``, the default);
  PaddleOCR instead removes such characters from the label and keeps the sample (``unknown_chars="remove"``);
* ``too_long``: more characters than ``max_text_length`` (PaddleOCR's ``max_text_length``, 25 by default);
* ``too_long_for_ctc``: more than the model's time steps can align: CTC needs one step per character plus one
  blank step between equal neighbours (``"ll"``), so ``len(label) + repeats <= T``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DatasetError, InvalidImageError
from .labels import LmdbReader, Source, parse_sources, read_label_file, read_lmdb_labels, sample_ratio

__all__ = ["LineDataset", "rec_resize", "collate", "ctc_steps_needed", "SKIP_REASONS"]

SKIP_REASONS = ("malformed", "missing_image", "empty", "unknown_chars", "too_long", "too_long_for_ctc")


def rec_resize(img_bgr: np.ndarray, height: int, width: int) -> tuple[np.ndarray, int]:
    """PaddleOCR's training ``RecResizeImg`` (``resize_norm_img`` with padding) for one uint8 BGR line.

    Returns a float32 ``[3, height, width]`` array (the line at ``min(width, ceil(height * w / h))`` pixels wide,
    normalised to ``[-1, 1]``, zeros on the right) and that resized width.
    """
    import math

    from ..preprocess import _resize_norm_into

    h, w = img_bgr.shape[:2]
    out = np.zeros((3, int(height), int(width)), dtype=np.float32)
    _resize_norm_into(img_bgr, out)  # resized to min(width, ceil(height * w / h)), written left-aligned
    return out, min(int(width), int(math.ceil(height * (w / float(h)))))


def ctc_steps_needed(indices: Sequence[int]) -> int:
    """The fewest CTC time steps that can emit ``indices``: one per label plus one blank between equal neighbours."""
    return len(indices) + sum(1 for a, b in zip(indices, indices[1:]) if a == b)


class LineDataset:
    """A map-style dataset (``torch.utils.data.Dataset`` protocol) of labelled text lines.

    Args:
        sources: label files / LMDB folders: a string ``"a.txt,b.txt:0.5"``, :class:`~.labels.Source` objects or a
            list of strings (see :func:`~.labels.parse_sources`).
        charset: the model's class list (``model.charset``: index 0 is the CTC blank).
        image_height, image_width: the training input size (PaddleOCR's ``image_shape`` ``[3, H, W]``).
        max_text_length: longest label kept (PaddleOCR's ``max_text_length``).
        max_steps: the model's time steps in training; labels CTC cannot align in them are skipped (None: no check).
        augment: a callable on uint8 BGR images (e.g. :class:`~.augment.LineAugment`), or None.
        unknown_chars: ``"skip"`` a sample whose label holds a character outside ``charset``, or ``"remove"`` the
            character (PaddleOCR's behaviour).
        data_dir: folder the label files' image paths are relative to (default: each label file's folder).
        seed: seed of the ratio sampling.
        delimiter: the label files' field separator.

    Attributes:
        samples: the kept samples, ``(source index, reference, text, class indices)``.
        skipped: ``Counter`` of skip reasons (see the module docstring).
        per_source: one dict per source: ``source``, ``lines`` (samples read), ``kept`` (after sampling), ``skipped``.

    Raises:
        DatasetError: a source cannot be read.
        TrainingDependencyError: an LMDB source without the ``lmdb`` package.
    """

    def __init__(self, sources: Any, charset: Sequence[str], *, image_height: int, image_width: int = 320,
                 max_text_length: int | None = 25, max_steps: int | None = None, augment=None,
                 unknown_chars: str = "skip", data_dir: str | os.PathLike | None = None, seed: int = 0,
                 delimiter: str = "\t"):
        if unknown_chars not in ("skip", "remove"):
            raise ValueError(f"unknown_chars must be 'skip' or 'remove', got {unknown_chars!r}")
        self.sources = parse_sources(sources)
        self.charset = list(charset)
        # PaddleOCR's label encoder maps a character to its last index in the dictionary; class 0 is the blank
        self.index = {c: i for i, c in enumerate(self.charset) if i > 0}
        self.image_height, self.image_width = int(image_height), int(image_width)
        self.max_text_length, self.max_steps = max_text_length, max_steps
        self.augment, self.unknown_chars = augment, unknown_chars
        self.skipped: Counter = Counter()
        self.samples: list[tuple[int, Any, str, list[int]]] = []
        self.per_source: list[dict] = []
        self._lmdb = LmdbReader()
        for number, source in enumerate(self.sources):
            rng = random.Random(f"{seed}:{number}")
            kept, counts, total = self._read_source(number, source, data_dir, delimiter)
            kept = sample_ratio(kept, source.ratio, rng)
            self.samples.extend(kept)
            self.skipped.update(counts)
            self.per_source.append({"source": str(source), "lines": total, "kept": len(kept),
                                    "skipped": dict(counts)})

    def _read_source(self, number: int, source: Source, data_dir, delimiter):
        if source.kind == "lmdb":
            triples, malformed = read_lmdb_labels(source.path)
            entries: Iterable = (((folder, index), text) for folder, index, text in triples)
            total = len(triples) + malformed
        else:
            if not os.path.exists(source.path):
                raise DatasetError(f"data source {source.path!r} does not exist (a label file or an LMDB folder)")
            pairs, malformed = read_label_file(source.path, data_dir, delimiter=delimiter)
            entries, total = pairs, len(pairs) + malformed
        counts: Counter = Counter()
        if malformed:
            counts["malformed"] = malformed
        kept = []
        for ref, text in entries:
            reason, indices = self.encode(text)
            if reason is None and isinstance(ref, str) and not os.path.isfile(ref):
                reason = "missing_image"
            if reason is not None:
                counts[reason] += 1
                continue
            kept.append((number, ref, text, indices))
        return kept, counts, total

    def encode(self, text: str) -> tuple[str | None, list[int]]:
        """``(None, class indices)`` for a usable label, else ``(skip reason, [])``."""
        if not text:
            return "empty", []
        indices = []
        for ch in text:
            i = self.index.get(ch)
            if i is None:
                if self.unknown_chars == "skip":
                    return "unknown_chars", []
                continue
            indices.append(i)
        if not indices:
            return "empty", []
        if self.max_text_length is not None and len(indices) > self.max_text_length:
            return "too_long", []
        if self.max_steps is not None and ctc_steps_needed(indices) > self.max_steps:
            return "too_long_for_ctc", []
        return None, indices

    @property
    def texts(self) -> list[str]:
        """The labels of the kept samples, in order (with unknown characters removed under ``"remove"``)."""
        return [self.label_text(i) for i in range(len(self.samples))]

    def label_text(self, i: int) -> str:
        return "".join(self.charset[k] for k in self.samples[i][3])

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> np.ndarray:
        """Sample ``i``'s image as a uint8 BGR array; InvalidImageError when it cannot be decoded."""
        from ..image_io import load_image

        _, ref, _, _ = self.samples[i]
        if isinstance(ref, str):
            return load_image(ref)
        data = self._lmdb.image_bytes(*ref)
        if data is None:
            raise InvalidImageError(f"LMDB {ref[0]!r}: no image-{ref[1]:09d} entry")
        return load_image(data, name=f"LMDB {ref[0]!r} image {ref[1]}")

    def __getitem__(self, i: int) -> dict | None:
        """``{"image": float32 [3, H, W], "width": resized width, "label": class indices, "text": label}``, or
        None when the image cannot be decoded (the collate drops it)."""
        try:
            img = self.load(i)
        except InvalidImageError:
            return None
        if self.augment is not None:
            img = self.augment(img)
        image, width = rec_resize(img, self.image_height, self.image_width)
        return {"image": image, "width": width, "label": self.samples[i][3], "text": self.label_text(i)}


def collate(items: Sequence[dict | None], pad_width: int | None = None) -> dict:
    """Stack samples into a batch padded on the right to ``pad_width`` (None: the widest resized image).

    Returns ``{"images": float32 [B, 3, H, W], "targets": int64 (all labels concatenated), "target_lengths": int64
    [B], "texts": [str], "dropped": number of undecodable samples left out}``.
    """
    import torch

    kept = [it for it in items if it is not None]
    dropped = len(items) - len(kept)
    if not kept:
        return {"images": None, "targets": None, "target_lengths": None, "texts": [], "dropped": dropped}
    height = kept[0]["image"].shape[1]
    width = int(pad_width) if pad_width is not None else max(it["width"] for it in kept)
    images = np.zeros((len(kept), 3, height, width), dtype=np.float32)
    for j, it in enumerate(kept):
        w = min(width, it["image"].shape[2])
        images[j, :, :, :w] = it["image"][:, :, :w]
    targets = [k for it in kept for k in it["label"]]
    return {"images": torch.from_numpy(images), "targets": torch.tensor(targets, dtype=torch.long),
            "target_lengths": torch.tensor([len(it["label"]) for it in kept], dtype=torch.long),
            "texts": [it["text"] for it in kept], "dropped": dropped}
