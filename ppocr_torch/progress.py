"""Progress bars on stderr (tqdm), shown only when wanted: ``progress=True``, or ``None`` and stderr a terminal."""

from __future__ import annotations

import sys


def show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(total: int | None, label: str, initial: int, progress: bool | None):
    """A tqdm bar on stderr, or None when not wanted (``progress=False``, or stderr not a terminal)."""
    if not show_progress(progress):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                file=sys.stderr, leave=False)


def seconds(value: float) -> str:
    """A duration for messages: ``316`` (whole seconds) or ``0.3`` (tenths, below ten seconds)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
