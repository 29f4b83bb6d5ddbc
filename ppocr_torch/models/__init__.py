"""Model definitions: specs, families, the builder and the deploy-form walker.

Exports are lazy so that ``ppocr_torch.models.spec`` (used by the registry) does not import torch.
"""

_EXPORTS = {
    "build_model": ".build",
    "reparameterize_model": ".deploy",
    "RecModel": ".rec_model",
    "ModelSpec": ".spec",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
