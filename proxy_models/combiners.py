"""Combiners of a parallel group: how 2-3 token mixers run on the same (normed) block input are
merged back into one d_model stream.

- `norm_mean`: each branch output gets its own RMSNorm (with weight), then the mean (Hymba: the
  branches' output scales differ by orders of magnitude, so they are normalised before mixing).
- `concat_proj`: concatenate the branches and project back, Linear(n*d, d, bias=False).
- `gated_sum`: per-token sigmoid gates per branch from the block input, Linear(d, n, bias=False).
Parameter counts match `ParallelGroup.combiner_params`. All act per token, so decoding uses the
same `forward` on one position.
"""
from __future__ import annotations

import torch
from torch import nn

from .norms import RMSNorm


class NormMean(nn.Module):
    def __init__(self, n: int, d_model: int):
        super().__init__()
        self.norms = nn.ModuleList(RMSNorm(d_model) for _ in range(n))

    def forward(self, ys: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.stack([norm(y) for norm, y in zip(self.norms, ys)]).mean(0)


class ConcatProj(nn.Module):
    def __init__(self, n: int, d_model: int):
        super().__init__()
        self.proj = nn.Linear(n * d_model, d_model, bias=False)

    def forward(self, ys: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat(ys, dim=-1))


class GatedSum(nn.Module):
    def __init__(self, n: int, d_model: int):
        super().__init__()
        self.gate = nn.Linear(d_model, n, bias=False)

    def forward(self, ys: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(x))
        return sum(g[..., i:i + 1] * y for i, y in enumerate(ys))


COMBINERS = {"norm_mean": NormMean, "concat_proj": ConcatProj, "gated_sum": GatedSum}


def make_combiner(kind: str, n: int, d_model: int) -> nn.Module:
    return COMBINERS[kind](n, d_model)
