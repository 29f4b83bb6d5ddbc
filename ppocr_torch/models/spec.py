"""Declarative model specs: one object builds the module, drives the converter and fills the registry."""

from __future__ import annotations

import copy
import json
from dataclasses import MISSING, asdict, dataclass, field
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
        """A spec from its plain-data form; raises SpecError naming the first field of a wrong kind."""
        _check_fields(d)
        return cls(**copy.deepcopy(d))

    def replace(self, **changes) -> ModelSpec:
        d = self.to_dict()
        d.update(changes)
        return ModelSpec.from_dict(d)


# positive integers, with the largest value accepted (input_height and base_width size every preprocessed line;
# the registry's models use 32/48 and 320; num_classes is bounded by the character set's length instead)
_SIZE_FIELDS = {"input_height": 1024, "num_classes": None, "base_width": 32000}
_STR_FIELDS = ("name", "dictionary", "family")
_MAX_DEPTH = 32  # nesting of a component's options (PaddleOCR configs nest 3-4 levels)


def _check_plain(value, where: str, depth: int = 0) -> None:
    """``value`` is JSON data (str, int, float, bool, None, lists, dicts with str keys), not nested deeper than
    ``_MAX_DEPTH``."""
    if depth > _MAX_DEPTH:
        raise SpecError(f"spec field {where} is nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(f"spec field {where} has a key {k!r} that is not a string")
            _check_plain(v, f"{where}.{k}", depth + 1)
        return
    raise SpecError(f"spec field {where} holds a {type(value).__name__}; a spec holds plain JSON values only")


def _check_fields(d) -> None:
    """Raise SpecError unless ``d`` has the fields of a ModelSpec, each of the right kind."""
    if not isinstance(d, dict):
        raise SpecError(f"a model spec is a dict of fields, not a {type(d).__name__}")
    fields = ModelSpec.__dataclass_fields__
    unknown = [k for k in d if k not in fields]
    if unknown:
        raise SpecError(f"unknown ModelSpec fields {sorted(map(str, unknown))}")
    required = [f.name for f in fields.values() if f.default is MISSING and f.default_factory is MISSING]
    missing = [k for k in required if k not in d]
    if missing:
        raise SpecError(f"the spec lacks the fields {missing}")
    for k in _STR_FIELDS:
        if k in d and not isinstance(d[k], str):
            raise SpecError(f"spec field {k!r} must be a string, got {d[k]!r:.80}")
    for k, most in _SIZE_FIELDS.items():
        if k in d and (isinstance(d[k], bool) or not isinstance(d[k], int) or d[k] < 1):
            raise SpecError(f"spec field {k!r} must be a positive integer, got {d[k]!r:.80}")
        if k in d and most is not None and d[k] > most:
            raise SpecError(f"spec field {k!r} is {d[k]}, above the limit of {most}")
    if not isinstance(d["use_space_char"], bool):
        raise SpecError(f"spec field 'use_space_char' must be true or false, got {d['use_space_char']!r:.80}")
    check_parts(d)
    if "extra" in d and not isinstance(d["extra"], dict):
        raise SpecError(f"spec field 'extra' must be a dict, got {d['extra']!r:.80}")
    for k, v in d.items():
        _check_plain(v, k)


def check_parts(d: dict) -> None:
    """A spec's ``backbone``, ``neck`` (optional) and ``head``: dicts with a string ``name``, else SpecError."""
    for k in ("backbone", "neck", "head"):
        part = d.get(k)
        if part is None and k == "neck":
            continue
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise SpecError(f"spec field {k!r} must be a dict with a string 'name', got {part!r:.80}")
