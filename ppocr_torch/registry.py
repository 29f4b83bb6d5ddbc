"""The model registry: every known model as data (``zoo/<family>.json``), looked up by PaddleOCR's name
or alias.

One JSON file per architecture family holds that family's models (spec, dictionary, official sources,
converted weights, measured parity). The conversion tool writes the weights and parity fields; API, CLI,
torch.hub entrypoints and the README table all read this one source, lazily.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import warnings
from dataclasses import dataclass, field
from importlib import resources

from .errors import RegistryError, UnknownModelError
from .models.spec import ModelSpec

DEFAULT_MODEL = "PP-OCRv6_small_rec"


@dataclass(frozen=True)
class WeightsInfo:
    file: str  # "<name>-<sha8>.pth"
    sha256: str
    size: int
    embedded: bool = False  # shipped inside the package (ppocr_torch/weights/)
    url: str | None = None  # explicit URL; otherwise the release base URL + file
    digest: str | None = None  # checkpoint.state_dict_digest of the weights: their identity, however they arrive


@dataclass(frozen=True)
class ModelEntry:
    name: str
    spec: ModelSpec
    dictionary: str  # file name under ppocr_torch/dicts/
    aliases: tuple = ()
    architecture: str = ""  # what the model is, in words ("PPLCNetV3 + SVTR neck + CTC"); spec.family is the backbone family
    languages: tuple = ()
    official: dict = field(default_factory=dict)  # inference/train URLs, reachable republished sources
    weights: WeightsInfo | None = None
    parity: dict = field(default_factory=dict)  # measured parity vs the official runtime
    verification: str = ""  # which check this model passed
    license: str = "Apache-2.0"
    accuracy: dict = field(default_factory=dict)
    notes: tuple = ()  # further facts (cross-checks, dictionary provenance); the converter leaves them alone

    @property
    def has_weights(self):
        return self.weights is not None


def _entry_from_dict(d):
    d = dict(d)
    spec = ModelSpec.from_dict(d.pop("spec"))
    w = d.pop("weights", None)
    return ModelEntry(spec=spec, weights=WeightsInfo(**w) if w else None,
                      aliases=tuple(d.pop("aliases", ())), languages=tuple(d.pop("languages", ())),
                      notes=tuple(d.pop("notes", ())), **d)


@functools.lru_cache(maxsize=1)
def _load():
    return load_zoo(resources.files("ppocr_torch").joinpath("zoo"))


def load_zoo(folder):
    """``(entries by name, alias -> name)`` from the ``*.json`` family files of ``folder``.

    Raises RegistryError naming the file for a duplicate name or alias, or an entry that does not parse."""
    entries = []
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if f.name.endswith(".json"):
            try:
                entries += [(f.name, _entry_from_dict(d)) for d in json.loads(f.read_text(encoding="utf-8"))["models"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise RegistryError(f"zoo/{f.name}: invalid registry entry ({type(exc).__name__}: {exc})") from exc
    by_name, aliases = {}, {}
    for fname, e in entries:
        if e.name in by_name or e.name in aliases:
            raise RegistryError(f"zoo/{fname}: duplicate model {e.name!r}")
        by_name[e.name] = e
        for a in e.aliases:
            if a in aliases or a in by_name:
                raise RegistryError(f"zoo/{fname}: duplicate alias {a!r}")
            aliases[a] = e.name
    return by_name, aliases


def get_entry(name):
    """Return the ModelEntry for a canonical name or alias (aliases warn once)."""
    by_name, aliases = _load()
    if name in by_name:
        return by_name[name]
    if name in aliases:
        _warn_alias(name, aliases[name])
        return by_name[aliases[name]]
    lowered = {n.lower(): n for n in list(by_name) + list(aliases)}
    if name.lower() in lowered:
        return get_entry(lowered[name.lower()])
    close = [n for n in by_name if name.lower().replace("-", "_") in n.lower().replace("-", "_")][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else "; see ppocr_torch.list_models()"
    raise UnknownModelError(f"unknown model {name!r}{hint}")


@functools.lru_cache(maxsize=None)
def _warn_alias(alias, name):
    warnings.warn(f"model name {alias!r} is an alias of {name!r}", stacklevel=4)


def list_models(pattern=None, *, with_weights=False):
    """Canonical names, optionally filtered by an fnmatch ``pattern`` and to models with weights."""
    by_name, _ = _load()
    names = [n for n, e in by_name.items() if not with_weights or e.has_weights]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]
    return sorted(names)


def entries():
    return list(_load()[0].values())


def reload():
    """Forget the cached registry (after the conversion tool rewrote a zoo file)."""
    _load.cache_clear()
    _load_page.cache_clear()


# -- page-level models: text detectors and line-orientation classifiers (``zoo/page/*.json``) ---------------


@dataclass(frozen=True)
class PageModelEntry:
    """A detector (``task`` "det") or orientation classifier ("cls"): the fields of :class:`ModelEntry` that
    weights resolution reads (``name``, ``official``, ``weights``), with a :class:`PageModelSpec`."""

    name: str
    spec: object  # models.page_spec.PageModelSpec
    aliases: tuple = ()
    architecture: str = ""
    official: dict = field(default_factory=dict)
    weights: WeightsInfo | None = None
    parity: dict = field(default_factory=dict)
    verification: str = ""
    license: str = "Apache-2.0"
    notes: tuple = ()

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def has_weights(self):
        return self.weights is not None


def _page_entry_from_dict(d):
    from .models.page_spec import PageModelSpec

    d = dict(d)
    spec = PageModelSpec.from_dict(d.pop("spec"))
    w = d.pop("weights", None)
    return PageModelEntry(spec=spec, weights=WeightsInfo(**w) if w else None, aliases=tuple(d.pop("aliases", ())),
                          notes=tuple(d.pop("notes", ())), **d)


@functools.lru_cache(maxsize=1)
def _load_page():
    folder = resources.files("ppocr_torch").joinpath("zoo").joinpath("page")
    by_name, aliases = {}, {}
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if not f.name.endswith(".json"):
            continue
        try:
            found = [_page_entry_from_dict(d) for d in json.loads(f.read_text(encoding="utf-8"))["models"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"zoo/page/{f.name}: invalid registry entry ({type(exc).__name__}: {exc})") from exc
        for e in found:
            if e.name in by_name or e.name in aliases:
                raise RegistryError(f"zoo/page/{f.name}: duplicate model {e.name!r}")
            by_name[e.name] = e
            for a in e.aliases:
                if a in aliases or a in by_name:
                    raise RegistryError(f"zoo/page/{f.name}: duplicate alias {a!r}")
                aliases[a] = e.name
    return by_name, aliases


def get_page_entry(name, task=None):
    """The :class:`PageModelEntry` of a detector/orientation classifier name or alias (case-insensitive), of
    ``task`` ("det" or "cls") when given; UnknownModelError naming the known ones otherwise."""
    by_name, aliases = _load_page()
    lowered = {n.lower(): n for n in by_name}
    lowered.update({a.lower(): n for a, n in aliases.items()})
    entry = by_name.get(lowered.get(str(name).lower(), ""))
    if entry is None or (task is not None and entry.task != task):
        known = list_page_models(task)
        what = {"det": "text detector", "cls": "orientation classifier"}.get(task, "page model")
        raise UnknownModelError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return entry


def list_page_models(task=None, pattern=None):
    """Canonical names of the detectors/orientation classifiers (``task`` "det"/"cls" filters)."""
    names = [n for n, e in _load_page()[0].items() if task is None or e.task == task]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]
    return sorted(names)


def page_entries():
    return list(_load_page()[0].values())
