"""torch.hub support: one entrypoint per registry model, generated from the registry.

``hubconf.py`` at the repository root calls :func:`entrypoints` and :func:`make_entrypoint`; everything
here reads the registry only (no torch import) until an entrypoint is called.

Entrypoint names are the registry's canonical names as Python identifiers: lowercased, every character
that cannot appear in an identifier replaced by ``_`` (``PP-OCRv6_small_rec`` -> ``pp_ocrv6_small_rec``,
``ch_ppocr_mobile_v2.0_rec`` -> ``ch_ppocr_mobile_v2_0_rec``).
"""

from __future__ import annotations

import keyword
import re

from . import __version__
from .errors import RegistryError

__all__ = ["HUB_REPO", "HUB_REF", "entrypoint_name", "entrypoints", "make_entrypoint", "build_recognizer",
           "entrypoint_doc"]

HUB_REPO = "ppocr-torch/ppocr-torch"
"""GitHub repository of the project (what ``torch.hub.load`` takes before the ``:``)."""
HUB_REF = f"v{__version__}"
"""Release tag matching this version."""

RESERVED = frozenset({"dependencies", "list_models", "load_model", "load_recognizer"})
"""Names hubconf.py defines itself; no model entrypoint may take them."""


def entrypoint_name(model_name: str) -> str:
    """The torch.hub entrypoint name of a registry model (a lowercase Python identifier)."""
    name = re.sub(r"\W", "_", model_name.strip().lower(), flags=re.ASCII)
    if not name or name[0].isdigit():
        name = "m_" + name
    if name.startswith("_"):
        name = "m" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def entrypoints(entries=None) -> dict[str, str]:
    """``{entrypoint name: canonical model name}`` for every registry model, sorted by entrypoint name.

    Raises:
        RegistryError: two models map to the same entrypoint name, or one takes a reserved name.
    """
    if entries is None:
        from .registry import entries as _entries

        entries = _entries()
    out: dict[str, str] = {}
    for e in entries:
        ep = entrypoint_name(e.name)
        if ep in RESERVED:
            raise RegistryError(f"model {e.name!r} would shadow the hub function {ep!r}")
        if ep in out:
            raise RegistryError(f"models {out[ep]!r} and {e.name!r} both map to the entrypoint {ep!r}")
        out[ep] = e.name
    return dict(sorted(out.items()))


def build_recognizer(name, *, pretrained: bool = True, device="cpu", download: bool = True, weights=None,
                     **kwargs):
    """A :class:`~ppocr_torch.Recognizer` for registry model ``name`` (what every entrypoint returns).

    Args:
        name: registry name or alias, or the path of a ppocr_torch checkpoint.
        pretrained: False builds the architecture with random weights (no file needed).
        device: torch device.
        download: allow downloading registry weights that are not cached.
        weights: path of a checkpoint file to use instead of the registry's (e.g. one you converted or
            fine-tuned); it must describe the same model (classes, input height).
        **kwargs: passed on to :class:`~ppocr_torch.Recognizer` (``batch_size``, ``mode``,
            ``channel_order``).
    """
    from .api import Recognizer, _check_against_entry, _is_checkpoint_path, load_model

    if weights is not None:
        from pathlib import Path

        from .registry import get_entry

        model = load_model(Path(weights), device=device)
        if not _is_checkpoint_path(name):
            _check_against_entry(model, get_entry(name), Path(weights))
    else:
        model = load_model(name, device=device, pretrained=pretrained, download=download)
    return Recognizer(model, device=device, **kwargs)


def _describe_weights(entry) -> str:
    from .official import official_urls

    w = entry.weights
    if w is None and not official_urls(entry):
        return ("Weights: not converted yet and no official download known. ``pretrained=True`` raises "
                "WeightsNotCachedError (unless $PPOCR_TORCH_WEIGHTS_DIR holds a checkpoint you converted, or "
                "``weights=PATH`` is given); ``pretrained=False`` builds the architecture with random weights.")
    if w is None:
        return ("Weights: PaddleOCR's official download, converted here on first use and cached (no Paddle "
                "needed). Unverified: the conversion is checked by structure only, not yet against the official "
                "runtime.")
    if w.embedded:
        return "Weights: embedded in the package (works offline)."
    return (f"Weights: {w.file} ({w.size / 1e6:.1f} MB, content digest {(w.digest or w.sha256)[:16]}...), from "
            "the project's release, else PaddleOCR's official download converted here; fetched on first use "
            "into the cache ($PPOCR_TORCH_HOME or $TORCH_HOME/hub/checkpoints) and verified.")


def entrypoint_doc(model_name: str, ep: str | None = None, entry=None) -> str:
    """The docstring of a model's entrypoint: what it is, where its weights come from, a runnable example."""
    if entry is None:
        from .registry import get_entry

        entry = get_entry(model_name)
    ep = ep or entrypoint_name(entry.name)
    spec = entry.spec
    family = entry.architecture or spec.family or ""
    aliases = f" (alias: {', '.join(entry.aliases)})" if entry.aliases else ""
    langs = f", languages: {', '.join(entry.languages)}" if entry.languages else ""
    from .official import official_urls

    extra = "" if entry.weights is not None or official_urls(entry) else ", pretrained=False"
    return f"""{entry.name}{aliases}: {family}; {spec.num_classes} classes, input 3x{spec.input_height}xW{langs}.

{_describe_weights(entry)}

Args:
    pretrained (bool): load the converted official weights (default); False: random weights.
    device (str | torch.device): where the model runs (default "cpu").
    download (bool): allow downloading weights that are not cached (default True; also disabled by
        PPOCR_TORCH_OFFLINE=1).
    weights (str | Path): a checkpoint file to use instead of the registry's.
    batch_size, mode, channel_order: passed on to ppocr_torch.Recognizer.

Returns:
    ppocr_torch.Recognizer: call it on text-line images (path, bytes, numpy BGR array, PIL image, or a
    list of them); ``.model`` is the torch.nn.Module.

Example::

    import torch
    rec = torch.hub.load("{HUB_REPO}:{HUB_REF}", "{ep}"{extra}, trust_repo=True)
    # from a checkout: torch.hub.load(".", "{ep}"{extra}, source="local")
    result = rec("samples/sample_line.png")
    print(result.text, result.score)
"""


def make_entrypoint(model_name: str, ep: str, module: str, entry=None):
    """A function ``ep(pretrained=True, device="cpu", **kwargs)`` returning a Recognizer of ``model_name``."""

    def entrypoint(pretrained=True, device="cpu", **kwargs):
        return build_recognizer(model_name, pretrained=pretrained, device=device, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = ep
    entrypoint.__module__ = module
    entrypoint.__doc__ = entrypoint_doc(model_name, ep, entry)
    return entrypoint
