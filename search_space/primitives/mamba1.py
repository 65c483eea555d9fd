"""Mamba-1 selective SSM (Gu & Dao 2023): in_proj to (x, z), short causal depthwise conv,
input-dependent dt (low rank dt_rank), B, C; diagonal A per channel and state; gate by SiLU(z).

Weights: in_proj [d, 2*di], conv [di, d_conv] + bias di, x_proj [di, dt_rank + 2N],
dt_proj [dt_rank, di] + bias di, A_log [di, N], D [di], out_proj [di, d]  (di = expand*d).
Decoding state: h [di, N] and the conv window [di, d_conv-1]."""
from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from .base import TokenMixerSpec


class Mamba1Spec(TokenMixerSpec):
    type: Literal["mamba1"]
    d_state: int = Field(16, ge=1, le=256)
    d_conv: int = Field(4, ge=1, le=16)
    expand: int = Field(2, ge=1, le=8)
    dt_rank: int | Literal["auto"] = "auto"
    code: ClassVar[str] = "M1"

    def rank(self, d_model: int) -> int:
        return math.ceil(d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)

    def canonical(self, d_model):
        # a dt_rank equal to what "auto" resolves to at this d_model is the same layer
        d = super().canonical(d_model)
        if d["dt_rank"] == math.ceil(d_model / 16):
            d["dt_rank"] = "auto"
        return d

    def check(self, d_model):
        if self.dt_rank != "auto" and int(self.dt_rank) < 1:
            return [("dt_rank", f"{self.dt_rank} must be 'auto' or >= 1")]
        return []

    def params(self, d_model, value_residual=False):
        di, n, r, k = self.expand * d_model, self.d_state, self.rank(d_model), self.d_conv
        return (d_model * 2 * di + di * k + di + di * (r + 2 * n) + r * di + di
                + di * n + di + di * d_model)

    def flops_per_token(self, d_model, context):
        di, n = self.expand * d_model, self.d_state
        conv = 2 * di * self.d_conv
        # matmul params exclude conv/A/D/biases; scan: dA, dBx, state update, C h, D x ~ 9 di N
        mm = self.params(d_model) - (di * self.d_conv + 3 * di + di * n)
        return 2.0 * mm + conv + 9.0 * di * n

    def cache_elems(self, d_model, context):
        di = self.expand * d_model
        return di * self.d_state + di * (self.d_conv - 1)
