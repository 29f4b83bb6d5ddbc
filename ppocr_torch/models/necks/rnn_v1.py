"""PaddleOCR 1.x sequence encoder (static graph ``EncoderWithRNN``, ``ppocr/modeling/heads/rec_seq_encoder.py``).

Not PaddleOCR 2.x's bidirectional LSTM: two *independent* unidirectional 2-layer stacks read the same
sequence and their last outputs are concatenated (forward first)::

    forward  stack: lstm_st1_fc1 (fc, in -> 4H) -> lstm_st1_out1 (dynamic_lstm)
                    -> lstm_st2_fc1 (fc, H -> 4H) -> lstm_st2_out1 (dynamic_lstm)
    backward stack: lstm_st1_fc2 -> lstm_st1_out2 -> lstm_st2_fc2 -> lstm_st2_out2, all is_reverse=True
                    (its second layer reads the backward first layer, not the concatenation)

fluid's ``dynamic_lstm`` (Paddle ``lstm`` operator, ``use_peepholes=False``, sigmoid gates, tanh cell and
candidate) receives the input already projected by the separate fc (weight [in, 4H], bias [4H]) and adds
``h_{t-1} @ W + b`` with W [H, 4H], b [1, 4H]. Its four gate blocks are ordered (candidate c, input i,
forget f, output o); PyTorch orders (i, f, g=c, o). An fc followed by such a cell is exactly one PyTorch LSTM
layer with ``weight_ih = reorder(fc_w.T)``, ``bias_ih = reorder(fc_b)``, ``weight_hh = reorder(W.T)``,
``bias_hh = reorder(b)``, so each stack is one ``nn.LSTM(num_layers=2)``; the reverse stack runs on the
time-flipped sequence (1.x inference batches are padded to one width, so every sequence has the full
length). ``conversion/rules_v1.py`` does the mapping; tests/test_static_v1.py checks it against a numpy
implementation of the documented equations and against Paddle's own ``lstm`` kernel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FLUID_GATE_ORDER = ("c", "i", "f", "o")  # Paddle lstm op: Weight = {W_ch, W_ih, W_fh, W_oh}, Bias = {b_c, ...}
TORCH_GATE_ORDER = ("i", "f", "c", "o")  # nn.LSTM: (i, f, g, o), g being the candidate


def fluid_gates_to_torch(a: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Reorder the four gate blocks of ``a`` along ``axis`` from fluid (c, i, f, o) to torch (i, f, c, o)."""
    a = np.asarray(a)
    blocks = np.split(a, 4, axis=axis)
    by_gate = dict(zip(FLUID_GATE_ORDER, blocks))
    return np.concatenate([by_gate[g] for g in TORCH_GATE_ORDER], axis=axis)


class EncoderWithRNNv1(nn.Module):
    """``lstm_fw`` / ``lstm_bw``: the forward and backward 2-layer stacks (fc folded into ``weight_ih``)."""

    def __init__(self, in_channels, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.out_channels = 2 * hidden_size
        self.lstm_fw = nn.LSTM(in_channels, hidden_size, num_layers=2, batch_first=True)
        self.lstm_bw = nn.LSTM(in_channels, hidden_size, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, 2H]
        fw = self.lstm_fw(x)[0]
        bw = self.lstm_bw(torch.flip(x, dims=[1]))[0]
        return torch.cat((fw, torch.flip(bw, dims=[1])), dim=2)


__all__ = ["EncoderWithRNNv1", "fluid_gates_to_torch", "FLUID_GATE_ORDER", "TORCH_GATE_ORDER"]
