"""PaddleOCR ``ppocr/modeling/necks/rnn.py``: Im2Seq and the sequence encoders behind ``SequenceEncoder``.

SVTR-style encoders run on the 2-D map before ``Im2Seq``; rnn/fc/reshape run on the sequence after it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct
from ..layers.conv_bn import unfuse_conv_bn
from ..layers.paddle_float import BatchNorm2d, LayerNorm
from .svtr_block import Block
from .rnn_v1 import EncoderWithRNNv1
from ...errors import SpecError, SpecMismatchError


def _svtr_conv(in_c, out_c, k, padding=None):
    # PaddleOCR rec_svtrnet ConvBNLayer: conv (no bias) -> norm -> Swish
    return ConvBNAct(in_c, out_c, k, 1, padding, act="swish", conv_name="conv", bn_name="norm", act_name="act")


class Im2Seq(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 1:
            raise ValueError(f"Im2Seq expects a feature map of height 1, got {tuple(x.shape)}")
        return x.squeeze(2).transpose(1, 2)  # [B, C, 1, W] -> [B, W, C]


class EncoderWithRNN(nn.Module):
    """Two-layer bidirectional LSTM (Paddle and PyTorch share gate order i, f, g, o and parameter names)."""

    def __init__(self, in_channels, hidden_size):
        super().__init__()
        self.out_channels = hidden_size * 2
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


class EncoderWithFC(nn.Module):
    def __init__(self, in_channels, hidden_size):
        super().__init__()
        self.out_channels = hidden_size
        self.fc = nn.Linear(in_channels, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class EncoderWithSVTR(nn.Module):
    """PP-OCRv3/v4/v5 SVTR neck: reduce -> global blocks -> restore -> concat shortcut -> fuse."""

    def __init__(self, in_channels, dims=64, depth=2, hidden_dims=120, use_guide=False, num_heads=8,
                 qkv_bias=True, mlp_ratio=2.0, kernel_size=(3, 3), qk_scale=None, **_training_only):
        super().__init__()
        k = tuple(kernel_size)
        pad = (k[0] // 2, k[1] // 2)
        self.conv1 = _svtr_conv(in_channels, in_channels // 8, k, pad)
        self.conv2 = _svtr_conv(in_channels // 8, hidden_dims, 1, 0)
        self.svtr_block = nn.ModuleList([
            Block(hidden_dims, num_heads, mlp_ratio, qkv_bias, qk_scale, act="swish", eps=1e-5) for _ in range(depth)
        ])
        self.norm = LayerNorm(hidden_dims, 1e-6)
        self.conv3 = _svtr_conv(hidden_dims, in_channels, 1, 0)
        self.conv4 = _svtr_conv(2 * in_channels, in_channels // 8, k, pad)
        self.conv1x1 = _svtr_conv(in_channels // 8, dims, 1, 0)
        self.out_channels = dims
        self.use_guide = use_guide

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_guide:  # PaddleOCR: stop_gradient on the input (GTC: the CTC branch does not train the backbone)
            x = x.detach()
        h = x
        z = self.conv2(self.conv1(x))
        b, c, hh, ww = z.shape
        z = z.flatten(2).transpose(1, 2)
        for blk in self.svtr_block:
            z = blk(z)
        z = self.norm(z)
        z = z.reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        z = self.conv3(z)
        z = torch.cat((h, z), dim=1)
        return self.conv1x1(self.conv4(z))


class EncoderWithLightSVTR(nn.Module):
    """PP-OCRv6 light SVTR neck: 1x1 reduce + depthwise (1, k) local conv, global blocks, 1x1 skip added."""

    def __init__(self, in_channels, dims=64, depth=1, num_heads=8, qkv_bias=True, mlp_ratio=4.0, qk_scale=None,
                 local_kernel=7, use_guide=False, **_training_only):
        super().__init__()
        self.conv_reduce = _svtr_conv(in_channels, dims, 1, 0)
        self.local_conv = nn.Sequential(
            nn.Conv2d(dims, dims, (1, local_kernel), padding=(0, local_kernel // 2), groups=dims, bias=False),
            BatchNorm2d(dims, 1e-5),
            nn.SiLU(),
        )
        self.svtr_block = nn.ModuleList([
            Block(dims, num_heads, mlp_ratio, qkv_bias, qk_scale, act="swish", eps=1e-5) for _ in range(depth)
        ])
        self.norm = LayerNorm(dims, 1e-6)
        self.skip_conv = _svtr_conv(in_channels, dims, 1, 0)
        self.out_channels = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip_conv(x)  # PaddleOCR computes the skip first: keep its execution order
        z = self.conv_reduce(x)
        z = z + self.local_conv(z)
        b, c, h, w = z.shape
        z = z.flatten(2).transpose(1, 2)
        for blk in self.svtr_block:
            z = blk(z)
        z = self.norm(z)
        z = z.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return z + skip

    def reparameterize(self) -> nn.Module:
        from ..layers import fuse_conv_bn

        if isinstance(self.local_conv[1], nn.BatchNorm2d):
            self.local_conv[0] = fuse_conv_bn(self.local_conv[0], self.local_conv[1])
            self.local_conv[1] = nn.Identity()
        return self

    def from_deploy(self, deployed: "EncoderWithLightSVTR") -> list:
        """Training form of ``local_conv`` from the deployed one (the ConvBNAct layers fill themselves)."""
        if not isinstance(self.local_conv[1], nn.BatchNorm2d) or isinstance(deployed.local_conv[1], nn.BatchNorm2d):
            raise SpecMismatchError("EncoderWithLightSVTR.from_deploy needs a training-form neck and a deployed one")
        fused = deployed.local_conv[0]
        return unfuse_conv_bn(self.local_conv[0], self.local_conv[1], fused.weight, fused.bias)


ENCODERS = {
    "reshape": None,
    "fc": EncoderWithFC,
    "rnn": EncoderWithRNN,
    "svtr": EncoderWithSVTR,
    "lightsvtr": EncoderWithLightSVTR,
    "rnn_v1": EncoderWithRNNv1,  # PaddleOCR 1.x static-graph encoder (two unidirectional stacks)
}


class SequenceEncoder(nn.Module):
    """``encoder_reshape`` (Im2Seq) plus an optional ``encoder``, named as in PaddleOCR."""

    def __init__(self, in_channels, encoder_type, hidden_size=48, **kwargs):
        super().__init__()
        if encoder_type not in ENCODERS:
            raise SpecError(f"unknown neck encoder_type {encoder_type!r}; known: {sorted(ENCODERS)}")
        self.encoder_type = encoder_type
        self.encoder_reshape = Im2Seq(in_channels)
        self.out_channels = in_channels
        self.encoder = None
        if encoder_type in ("svtr", "lightsvtr"):
            self.encoder = ENCODERS[encoder_type](in_channels, **kwargs)
        elif encoder_type != "reshape":
            self.encoder = ENCODERS[encoder_type](in_channels, hidden_size)
        if self.encoder is not None:
            self.out_channels = self.encoder.out_channels
        self._map_first = encoder_type in ("svtr", "lightsvtr")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._map_first:
            return self.encoder_reshape(self.encoder(x))
        x = self.encoder_reshape(x)
        return x if self.encoder is None else self.encoder(x)
