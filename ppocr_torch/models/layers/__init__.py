"""Shared building blocks: conv+norm+activation with a fusable deploy form, SE, activations, Paddle padding."""

from .activations import HardSigmoid, make_act
from .affine import LearnableAffineBlock
from .conv_bn import ConvBNAct, Conv2dBN, fuse_conv_bn
from .padding import SamePad2d
from .squeeze_excite import SqueezeExcite, make_divisible

__all__ = ["HardSigmoid", "LearnableAffineBlock", "make_act", "ConvBNAct", "Conv2dBN", "fuse_conv_bn", "SamePad2d",
           "SqueezeExcite", "make_divisible"]
