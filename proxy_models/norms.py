"""Normalisation layers: `rmsnorm` (weight only, as in LLaMA) and `layernorm` (weight and bias).

Their parameter counts match `search_space.costs.norm_params` (d, or 2d for layernorm)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in fp32 (bf16 inputs under autocast would otherwise miss the fused kernel and lose precision)
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


def make_norm(kind: str, d: int) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(d)
    if kind == "layernorm":
        return nn.LayerNorm(d, eps=1e-5)
    raise ValueError(f"unknown norm {kind!r}")
