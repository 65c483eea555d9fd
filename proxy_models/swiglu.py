"""SwiGLU MLP (Shazeer 2020): W2(SiLU(W1 x) * W3 x), no biases, hidden = round(expand * d).

Channel mixers share one shape: `Cls(spec, d_model)`, `forward(x_BTD, ctx) -> y_BTD`. They act
per token, so decoding calls `forward` on a length-1 sequence."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_space.primitives.swiglu import hidden_size


class SwiGLUCore(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, hidden, bias=False)  # gate
        self.w3 = nn.Linear(d_model, hidden, bias=False)  # up
        self.w2 = nn.Linear(hidden, d_model, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SwiGLU(nn.Module):
    backend = "torch"

    def __init__(self, spec, d_model: int):
        super().__init__()
        self.spec = spec
        self.mlp = SwiGLUCore(d_model, hidden_size(spec.expand, d_model))

    def forward(self, x_BTD: torch.Tensor, ctx=None) -> torch.Tensor:
        return self.mlp(x_BTD)
