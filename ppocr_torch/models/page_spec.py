"""Declarative specs of the page-level models: DB text detectors and text-line orientation classifiers.

Like :class:`~ppocr_torch.models.spec.ModelSpec` for the recognisers, one frozen object builds the module
(``build_page_model``), drives the converter and fills the registry (``zoo/page/*.json``). ``backbone``/``neck``/
``head`` are ``{"name": <PaddleOCR class>, **kwargs}`` with plain JSON values, as in PaddleOCR's
``Architecture`` config.

* ``task == "det"``: ``preprocess`` holds PaddleOCR's detection preprocessing (``mean``, ``std``, ``scale``,
  ``limit_side_len``, ``limit_type``, BGR input) and ``postprocess`` the DB post-processing defaults of the
  model's ``inference.yml`` (``thresh``, ``box_thresh``, ``unclip_ratio``, ``max_candidates``...). The module
  maps a normalised [N, 3, H, W] batch (H, W multiples of 32) to the text probability map [N, 1, H, W].
* ``task == "cls"``: ``labels`` are the class names in output order (``["0", "180"]``), ``input_shape`` the
  (C, H, W) the image is resized and padded to, ``preprocess`` its normalisation. The module returns
  [N, len(labels)] probabilities.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field

from ..errors import SpecError
from .spec import check_parts

TASKS = ("det", "cls")


@dataclass(frozen=True)
class PageModelSpec:
    name: str
    task: str  # "det" | "cls"
    backbone: dict
    head: dict
    neck: dict | None = None
    family: str = ""
    preprocess: dict = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)
    labels: tuple = ()
    input_shape: tuple = ()
    extra: dict = field(default_factory=dict)

    def component(self, part: str) -> tuple[str, dict]:
        """A deep copy of ``backbone``/``neck``/``head`` split into (name, kwargs)."""
        c = copy.deepcopy(getattr(self, part))
        return c.pop("name"), c

    @property
    def num_classes(self) -> int:
        """Output channels: 1 probability map for a detector, one probability per label for a classifier."""
        return 1 if self.task == "det" else len(self.labels)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples become lists: plain JSON data only

    @classmethod
    def from_dict(cls, d: dict) -> PageModelSpec:
        """A spec from its plain-data form; raises SpecError naming the first field of a wrong kind."""
        _check_fields(d)
        d = copy.deepcopy(d)
        d["labels"] = tuple(d.get("labels", ()))
        d["input_shape"] = tuple(d.get("input_shape", ()))
        return cls(**d)

    def replace(self, **changes) -> PageModelSpec:
        d = self.to_dict()
        d.update(changes)
        return PageModelSpec.from_dict(d)


def _check_fields(d) -> None:
    from .spec import _check_plain

    if not isinstance(d, dict):
        raise SpecError(f"a page model spec is a dict of fields, not a {type(d).__name__}")
    fields = PageModelSpec.__dataclass_fields__
    unknown = sorted(str(k) for k in d if k not in fields)
    if unknown:
        raise SpecError(f"unknown PageModelSpec fields {unknown}")
    missing = [k for k in ("name", "task", "backbone", "head") if k not in d]
    if missing:
        raise SpecError(f"the page model spec lacks the fields {missing}")
    if not isinstance(d["name"], str) or not isinstance(d.get("family", ""), str):
        raise SpecError("spec fields 'name' and 'family' must be strings")
    if d["task"] not in TASKS:
        raise SpecError(f"spec field 'task' must be one of {list(TASKS)}, got {d['task']!r:.80}")
    check_parts(d)
    for k in ("preprocess", "postprocess", "extra"):
        if not isinstance(d.get(k, {}), dict):
            raise SpecError(f"spec field {k!r} must be a dict, got {d[k]!r:.80}")
    labels = d.get("labels", ())
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise SpecError(f"spec field 'labels' must be a list of strings, got {labels!r:.80}")
    shape = d.get("input_shape", ())
    if not isinstance(shape, (list, tuple)) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 4096 for x in shape):
        raise SpecError(f"spec field 'input_shape' must be positive integers up to 4096, got {shape!r:.80}")
    if d["task"] == "cls" and (len(labels) < 2 or len(shape) != 3):
        raise SpecError(f"classifier spec {d['name']!r} needs at least 2 labels and an input_shape (C, H, W)")
    for k, v in d.items():
        _check_plain(list(v) if isinstance(v, tuple) else v, k)
