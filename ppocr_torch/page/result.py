"""What page OCR returns: :class:`OCRLine` per text line and :class:`OCRResult` per page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["OCRLine", "OCRResult"]


@dataclass(frozen=True, repr=False)
class OCRLine:
    """One text line of a page.

    Attributes:
        polygon: float32 ``[4, 2]`` corners in original image pixels (integer values), clockwise from the
            top-left: the detector's box, not the crop.
        text, score: the recogniser's text and score (mean probability of the kept characters).
        chars: per-character data of the recogniser (:class:`~ppocr_torch.decode.CharResult`: char, prob, first
            and last CTC step).
        box_score: the detector's mean probability inside the box.
        orientation: the line classifier's verdict (:class:`~ppocr_torch.page.orientation.Orientation`), or None
            when no classifier ran.
    """

    polygon: np.ndarray
    text: str
    score: float
    chars: tuple = ()
    box_score: float = 0.0
    orientation: Any = None

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        out = {"polygon": np.asarray(self.polygon).astype(int).tolist(), "text": self.text, "score": self.score,
               "box_score": self.box_score, "chars": [[c.char, c.prob, c.first, c.last] for c in self.chars]}
        if self.orientation is not None:
            out["orientation"] = {"label": self.orientation.label, "score": self.orientation.score,
                                  "rotated": self.orientation.rotated}
        return out

    def __repr__(self) -> str:
        return (f"OCRLine(text={self.text!r}, score={self.score:.4f}, "
                f"polygon={np.asarray(self.polygon).astype(int).tolist()})")


@dataclass(frozen=True)
class OCRResult:
    """The text lines of one page, in reading order (a sequence of :class:`OCRLine`).

    Attributes:
        lines: the kept lines. ``dropped``: lines detected but recognised with a score below ``text_score``
            (kept here for inspection, never in ``lines``). ``image_size``: ``(height, width)`` of the page.
    """

    lines: tuple
    image_size: tuple
    dropped: tuple = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self):
        return iter(self.lines)

    def __getitem__(self, i):
        return self.lines[i]

    @property
    def text(self) -> str:
        """The lines' texts joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict:
        """JSON-friendly form: ``{"image_size": [h, w], "lines": [...]}``."""
        return {"image_size": list(self.image_size), "lines": [line.to_dict() for line in self.lines]}
