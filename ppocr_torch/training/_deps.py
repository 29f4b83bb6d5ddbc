"""Optional dependencies of training, imported only when a feature needs them."""

from __future__ import annotations

import importlib

from ..errors import TrainingDependencyError

INSTALL_HINT = "pip install 'ppocr-torch[train]'"


def require(module: str, feature: str):
    """Import ``module`` or raise :class:`TrainingDependencyError` naming ``feature`` and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrainingDependencyError(
            f"{feature} needs the optional package {module.split('.')[0]!r}, which is not installed "
            f"({exc}); install the training extras with `{INSTALL_HINT}`") from exc
