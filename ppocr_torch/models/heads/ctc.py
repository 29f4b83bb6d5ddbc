"""CTC heads (PaddleOCR ``heads/rec_ctc_head.py`` and the CTC branch of ``heads/rec_multi_head.py``)."""

from __future__ import annotations

import torch
from torch import nn

from ..necks import SequenceEncoder
from ..layers.conv_bn import fuse_conv_bn, unfuse_conv_bn
from ..layers.paddle_float import BatchNorm1d
from ...errors import SpecMismatchError


def guide_layer(channels: int, kernel_size: int = 5, bn_eps: float = 1e-5) -> nn.Sequential:
    """PP-OCRv6 tiny's ``guide_layer`` (PaddleOCR ``CTCHead(use_guide=True)``), run on [B, C, T]:
    depthwise Conv1D(k=5) -> BatchNorm1D -> Hardswish -> pointwise Conv1D -> BatchNorm1D -> Hardswish.

    A Sequential, so the training names are Paddle's indices: ``guide_layer.0`` / ``.3`` convs (no bias),
    ``guide_layer.1`` / ``.4`` BatchNorm1D. Deploy form: each BatchNorm folded into its conv (the index
    keeps its place, the BatchNorm slot becomes Identity).
    """
    return nn.Sequential(
        nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False),
        BatchNorm1d(channels, bn_eps),
        nn.Hardswish(),
        nn.Conv1d(channels, channels, 1, bias=False),
        BatchNorm1d(channels, bn_eps),
        nn.Hardswish(),
    )


class CTCHead(nn.Module):
    """Linear classifier (``fc``) or two linears (``fc1`` -> ``fc2``, when ``mid_channels`` is set).

    ``use_guide=True`` (PP-OCRv6 tiny) runs ``guide_layer`` over the sequence first, channels-first:
    [B, T, C] -> [B, C, T] -> guide_layer -> [B, T, C] -> classifier.
    Returns logits in train mode and softmax probabilities in eval mode, as PaddleOCR does.
    """

    def __init__(self, in_channels, out_channels, mid_channels=None, use_guide=False, **_training_only):
        super().__init__()
        self.mid_channels = mid_channels
        self.use_guide = bool(use_guide)
        if self.use_guide:
            self.guide_layer = guide_layer(in_channels)
        if mid_channels is None:
            self.fc = nn.Linear(in_channels, out_channels)
        else:
            self.fc1 = nn.Linear(in_channels, mid_channels)
            self.fc2 = nn.Linear(mid_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_guide:
            x = self.guide_layer(x.transpose(1, 2)).transpose(1, 2)
        return self.fc(x) if self.mid_channels is None else self.fc2(self.fc1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.logits(x)
        return y if self.training else torch.softmax(y, dim=2)

    def reparameterize(self) -> nn.Module:
        """Deploy form: fold the guide layer's BatchNorms into their convs (no-op without a guide)."""
        if self.use_guide:
            g = self.guide_layer
            for i in (0, 3):
                if isinstance(g[i + 1], nn.BatchNorm1d):
                    g[i] = fuse_conv_bn(g[i], g[i + 1])
                    g[i + 1] = nn.Identity()
        return self

    def from_deploy(self, deployed: "CTCHead") -> list:
        """Training form of the guide layer from the deployed head: each conv keeps its kernel, each BatchNorm
        is an identity carrying the folded bias (the linears are the same tensors in both forms)."""
        if not self.use_guide:
            return []
        g, d = self.guide_layer, deployed.guide_layer
        if not isinstance(g[1], nn.BatchNorm1d) or isinstance(d[1], nn.BatchNorm1d):
            raise SpecMismatchError("CTCHead.from_deploy needs a training-form guide layer and a deployed one")
        return [t for i in (0, 3) for t in unfuse_conv_bn(g[i], g[i + 1], d[i].weight, d[i].bias)]

    def reset_classifier(self, num_classes: int) -> None:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ctc_head(self.ctc_encoder(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.ctc_head.reset_classifier(num_classes)
        self.out_channels = num_classes
