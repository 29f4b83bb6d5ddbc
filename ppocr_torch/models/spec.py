"""Declarative model specs: one object builds the module, drives the converter and fills the registry."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from ..errors import SpecError


@dataclass(frozen=True)
class ModelSpec:
    """A recognition model: backbone -> (neck) -> head, plus what preprocessing and decoding need.

    ``backbone``/``neck``/``head`` are ``{"name": <PaddleOCR class or encoder type>, **kwargs}`` with plain
    JSON values, exactly as in PaddleOCR's ``Architecture`` config. ``num_classes`` = blank + dictionary
    (+ space when ``use_space_char``).
    """

    name: str
    backbone: dict
    head: dict
    input_height: int
    num_classes: int
    dictionary: str
    use_space_char: bool
    neck: dict | None = None
    base_width: int = 320
    family: str = ""
    extra: dict = field(default_factory=dict)

    def component(self, part: str) -> tuple[str, dict]:
        """A deep copy of ``backbone``/``neck``/``head`` split into (name, kwargs)."""
        c = copy.deepcopy(getattr(self, part))
        return c.pop("name"), c

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # plain str/int/float/bool/list/dict only

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"unknown ModelSpec fields {sorted(unknown)}")
        return cls(**copy.deepcopy(d))

    def replace(self, **changes) -> ModelSpec:
        d = self.to_dict()
        d.update(changes)
        return ModelSpec.from_dict(d)
