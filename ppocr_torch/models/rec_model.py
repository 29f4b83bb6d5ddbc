"""The recognition network: backbone -> neck -> head, with stage outputs on demand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
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

    def forward(self, x: torch.Tensor, return_stages: bool = False) -> torch.Tensor | dict:
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
    def num_classes(self) -> int:
        return self.head.out_channels

    def classifier(self) -> nn.Linear:
        """The last linear layer: the CTC classifier over ``charset``."""
        head = self.head.ctc_head if hasattr(self.head, "ctc_head") else self.head
        return head.fc if head.mid_channels is None else head.fc2

    def train_form(self, calibration=None) -> RecModel:
        """A new model in training form, computing in eval mode what this deploy-form model computes.

        Built from this model's spec and character set with PaddleOCR's training layers (module names as in
        PaddleOCR's training code), then filled from this model's weights:

        * every BatchNorm that the deploy form folded is back, as an identity (running mean 0, running
          variance 1, weight sqrt(1 + eps)) carrying the folded bias; the convolution keeps the folded kernel;
        * every re-parameterised block is unfused: the merged kernel goes into its main kxk branch, the other
          branches (1x1, identity BatchNorm, further kxk branches) are set to add exactly nothing, so that
          :meth:`deploy` gives back the same kernels (``from_deploy`` of each block says how);
        * everything else (linears, LSTMs, LayerNorms, learnable affine scalars) is copied.

        Every tensor is written exactly once (checked). On this model's device and dtype, in eval mode (call
        ``.train()`` to train it); this model is unchanged. A training-form model gives a copy of itself.

        Args:
            calibration: an iterable of preprocessed input batches ([B, 3, H, W]) like the training data.
                Recommended before training: the re-inserted BatchNorms then get running statistics from
                these inputs, with weight and bias adjusted so that the eval-mode function is unchanged
                (:meth:`calibrate_batchnorm`). Without it, train mode (batch statistics) starts from a
                function far from this model's.

        The official BatchNorm statistics and branch weights are lost in the deploy form. Where PaddleOCR
        publishes a ``*_pretrained.pdparams`` training checkpoint (the registry's ``official["train_url"]``),
        starting from it keeps them: ``conversion.training.convert_checkpoint(..., form="train")``
        (docs/training.md).

        Raises:
            SpecError: a block of this model has no deploy-form inverse (the message names it).
            SpecMismatchError: the weights do not fit the model's spec.
        """
        import copy

        from .deploy import train_form_model

        model = copy.deepcopy(self) if self.form == "train" else train_form_model(self)
        return model if calibration is None else model.calibrate_batchnorm(calibration)

    def calibrate_batchnorm(self, batches) -> RecModel:
        """Set the running statistics of every BatchNorm to those of its input over ``batches`` (input tensors
        [B, 3, H, W], run in eval mode), adjusting weight and bias so that the eval-mode function does not
        change; in place, returns ``self``. See :func:`ppocr_torch.models.deploy.calibrate_batchnorm`."""
        from .deploy import calibrate_batchnorm

        return calibrate_batchnorm(self, batches)

    def deploy(self) -> RecModel:
        """A deploy-form copy of this model (BatchNorms folded, branches merged: ``reparameterize_model``), in
        eval mode. This model is not changed (training can go on); a deploy-form model gives a copy of itself.
        """
        import copy

        from .deploy import reparameterize_model

        out = copy.deepcopy(self)
        for p in out.parameters():
            p.grad = None
        return reparameterize_model(out).eval()

    def reset_head(self, charset: str | os.PathLike | Sequence[str], *, use_space_char: bool | None = None,
                   name: str | None = None, keep_common: bool = True) -> RecModel:
        """Replace the CTC classifier by one for a new character set, in place; returns ``self``.

        Args:
            charset: a PaddleOCR dictionary file (one character per line) or the characters themselves, in
                class order; the blank class is put first.
            use_space_char: append the space class (PaddleOCR's ``use_space_char``); default: as the model.
            name: the new model's name in its spec (default: unchanged).
            keep_common: copy the old classifier's rows (weight and bias) for the blank and every character
                present in both sets, so that common characters start trained; the other rows are freshly
                initialised (``nn.Linear``'s default, under the caller's torch seed).

        The spec records the new class count, dictionary (the file's name, or ``"custom"``) and space flag, and
        ``charset`` the new class list, so a saved checkpoint describes itself.
        """
        from ..charset import build_charset, read_dict_file

        if isinstance(charset, (str, os.PathLike)) and not isinstance(charset, str) or \
                isinstance(charset, str) and Path(charset).is_file():
            chars, dictionary = read_dict_file(charset), Path(charset).name
        elif isinstance(charset, str):
            raise FileNotFoundError(f"reset_head: dictionary file {charset!r} does not exist (pass a list of "
                                    "characters to give them directly)")
        else:
            chars, dictionary = [str(c) for c in charset], "custom"
        if not chars:
            raise ValueError("reset_head: the new character set is empty")
        space = self.spec.use_space_char if use_space_char is None and self.spec is not None else bool(use_space_char)
        new = build_charset(chars, space)
        old_fc, old = self.classifier(), list(self.charset or [])
        self.head.reset_classifier(len(new))
        fc = self.classifier()
        if keep_common and old:
            where = {c: i for i, c in reversed(list(enumerate(old)))}  # first occurrence wins
            pairs = [(i, where[c]) for i, c in enumerate(new) if c in where]
            with torch.no_grad():
                dst = torch.tensor([i for i, _ in pairs], dtype=torch.long)
                src = torch.tensor([j for _, j in pairs], dtype=torch.long)
                fc.weight[dst] = old_fc.weight[src].to(fc.weight.dtype)
                if fc.bias is not None and old_fc.bias is not None:
                    fc.bias[dst] = old_fc.bias[src].to(fc.bias.dtype)
        if self.spec is not None:
            self.spec = self.spec.replace(num_classes=len(new), dictionary=dictionary, use_space_char=space,
                                          name=name or self.spec.name)
        self.charset = new
        return self
