"""Squeeze-and-excitation as in PaddleOCR's rec backbones: mean -> conv1 -> relu -> conv2 -> gate."""

from torch import nn

from .activations import make_act


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduction=4, gate="hardsigmoid"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)
        self.gate = make_act(gate)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        s = self.gate(self.conv2(self.relu(self.conv1(s))))
        return x * s
