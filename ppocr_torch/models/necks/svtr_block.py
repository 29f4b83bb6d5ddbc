"""SVTR global-mixing transformer block (PaddleOCR ``rec_svtrnet.py`` Block with mixer="Global")."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import make_act
from ..layers.paddle_float import LayerNorm, paddle_float


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=True, qk_scale=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = paddle_float(qk_scale or self.head_dim ** -0.5)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        # PaddleOCR scales q before the product (q * scale) @ k^T
        attn = torch.softmax(torch.matmul(q * self.scale, k.transpose(-2, -1)), dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, act="swish"):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = make_act(act)
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block (PaddleOCR ``prenorm=False``): x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim, num_heads=8, mlp_ratio=4.0, qkv_bias=True, qk_scale=None, act="swish", eps=1e-5):
        super().__init__()
        self.norm1 = LayerNorm(dim, eps)
        self.mixer = Attention(dim, num_heads, qkv_bias, qk_scale)
        self.norm2 = LayerNorm(dim, eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))
