"""The recognition network: backbone -> neck -> head, with stage outputs on demand."""

from torch import nn


class RecModel(nn.Module):
    """``forward(x)`` returns CTC probabilities [B, T, num_classes] in eval mode (logits in train mode).

    ``forward(x, return_stages=True)`` returns ``{"backbone": ..., "neck": ..., "head": ...}``. For MultiHead
    models PaddleOCR's CTC neck lives inside the head (``head.ctc_encoder``), and ``neck`` is its output.
    """

    def __init__(self, backbone, neck, head, spec=None, charset=None):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.spec = spec
        self.charset = charset
        self.weights_meta = {}
        self.form = "train"

    def forward(self, x, return_stages=False):
        feats = self.backbone(x)
        if self.neck is not None:
            seq = self.neck(feats)
            out = self.head(seq)
        elif hasattr(self.head, "ctc_encoder"):
            seq = self.head.ctc_encoder(feats)
            out = self.head.ctc_head(seq)
        else:
            seq = feats
            out = self.head(seq)
        if return_stages:
            return {"backbone": feats, "neck": seq, "head": out}
        return out

    @property
    def num_classes(self):
        return self.head.out_channels
