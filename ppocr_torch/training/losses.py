"""The CTC loss of PaddleOCR's CTC recognisers, in torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ctc_loss"]


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, *,
             log_probs: bool = False) -> torch.Tensor:
    """CTC loss of batch-major class scores, averaged over the batch like PaddleOCR's ``CTCLoss``.

    Args:
        logits: ``[B, T, C]`` logits (the model's train-mode output); with ``log_probs=True``, log-probabilities.
        targets: all labels' class indices concatenated (class 0 is the blank and never a target).
        target_lengths: ``[B]`` label lengths.

    The logits go through ``log_softmax`` over the classes in float32, are made time-major ``[T, B, C]`` as
    :func:`torch.nn.functional.ctc_loss` expects, every sample uses all ``T`` steps, the blank is class 0 and an
    impossible alignment costs 0 instead of infinity (``zero_infinity=True``). Each sample's loss is its negative
    log-likelihood, not divided by its label length; the result is their mean (PaddleOCR: ``reduction="none"``,
    then the mean), so longer labels weigh more.
    """
    x = logits.float()
    if not log_probs:
        x = x.log_softmax(dim=2)
    x = x.transpose(0, 1)  # [T, B, C]
    steps, batch = x.shape[0], x.shape[1]
    input_lengths = torch.full((batch,), steps, dtype=torch.long, device=x.device)
    losses = F.ctc_loss(x, targets.to(x.device, torch.long), input_lengths, target_lengths.to(x.device, torch.long),
                        blank=0, reduction="none", zero_infinity=True)
    return losses.mean()
