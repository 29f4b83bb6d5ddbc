"""CTC heads (PaddleOCR ``heads/rec_ctc_head.py`` and the CTC branch of ``heads/rec_multi_head.py``)."""

import torch
from torch import nn

from ..necks import SequenceEncoder


class CTCHead(nn.Module):
    """Linear classifier (``fc``) or two linears (``fc1`` -> ``fc2``, when ``mid_channels`` is set).

    Returns logits in train mode and softmax probabilities in eval mode, as PaddleOCR does.
    """

    def __init__(self, in_channels, out_channels, mid_channels=None, **_training_only):
        super().__init__()
        self.mid_channels = mid_channels
        if mid_channels is None:
            self.fc = nn.Linear(in_channels, out_channels)
        else:
            self.fc1 = nn.Linear(in_channels, mid_channels)
            self.fc2 = nn.Linear(mid_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels

    def logits(self, x):
        return self.fc(x) if self.mid_channels is None else self.fc2(self.fc1(x))

    def forward(self, x):
        y = self.logits(x)
        return y if self.training else torch.softmax(y, dim=2)

    def reset_classifier(self, num_classes):
        """Replace the last linear layer by a freshly initialised one with ``num_classes`` outputs."""
        last = "fc" if self.mid_channels is None else "fc2"
        old = getattr(self, last)
        setattr(self, last, nn.Linear(old.in_features, num_classes).to(old.weight.device))
        self.out_channels = num_classes


class MultiHead(nn.Module):
    """CTC branch of PaddleOCR's MultiHead: ``ctc_encoder`` (a SequenceEncoder) then ``ctc_head``.

    The training-only SAR / NRTR branches are not built: inference uses the CTC branch only.
    """

    def __init__(self, in_channels, out_channels, neck, head=None):
        super().__init__()
        neck = dict(neck)
        self.ctc_encoder = SequenceEncoder(in_channels, neck.pop("name"), **neck)
        self.ctc_head = CTCHead(self.ctc_encoder.out_channels, out_channels, **dict(head or {}))
        self.out_channels = out_channels

    def forward(self, x):
        return self.ctc_head(self.ctc_encoder(x))

    def reset_classifier(self, num_classes):
        self.ctc_head.reset_classifier(num_classes)
        self.out_channels = num_classes
