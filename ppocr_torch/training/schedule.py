"""Learning-rate schedule: linear warm-up, then cosine decay, one value per optimizer step."""

from __future__ import annotations

import math

__all__ = ["warmup_cosine_factor", "warmup_cosine"]


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> float:
    """The factor on the base learning rate for optimizer step ``step`` (0-based).

    * warm-up, ``step < warmup_steps``: ``(step + 1) / warmup_steps``, rising linearly to 1 (the first step is not
      wasted at 0);
    * then cosine decay over the remaining ``total_steps - warmup_steps`` steps, from 1 at the first of them to
      ``min_ratio`` after the last: ``min_ratio + (1 - min_ratio) * (1 + cos(pi * p)) / 2`` with
      ``p = (step - warmup_steps) / (total_steps - warmup_steps)``;
    * ``min_ratio`` from ``total_steps`` on.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    warmup_steps = max(0, min(int(warmup_steps), total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return float(min_ratio)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0):
    """A ``torch.optim.lr_scheduler.LambdaLR`` applying :func:`warmup_cosine_factor`; call its ``step()`` after every
    optimizer step. Its ``state_dict()`` holds plain numbers only (the factor is a function, which LambdaLR does not
    save), so it loads with ``weights_only=True``."""
    from torch.optim.lr_scheduler import LambdaLR

    def factor(step):
        return warmup_cosine_factor(step, total_steps, warmup_steps, min_ratio)

    return LambdaLR(optimizer, factor)
