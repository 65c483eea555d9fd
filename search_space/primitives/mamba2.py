"""Mamba-2 (Dao & Gu 2024), the SSD form: a scalar decay per head, so the scan is chunked into
matrix products. One group of B/C shared by all heads (ngroups = 1).

Weights: in_proj [d, 2*di + 2N + H] (z, x, B, C, dt), conv over (x, B, C) [di+2N, d_conv] + bias,
dt_bias [H], A_log [H], D [H], gated RMSNorm [di], out_proj [di, d] (di = expand*d, H = di/head_dim).
Decoding state: h [H, head_dim, N] and the conv window [di+2N, d_conv-1]."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import TokenMixerSpec


class Mamba2Spec(TokenMixerSpec):
    type: Literal["mamba2"]
    d_state: int = Field(64, ge=1, le=256)
    head_dim: int = Field(32, ge=1, le=256)
    expand: int = Field(2, ge=1, le=8)
    d_conv: int = Field(4, ge=1, le=16)
    chunk: int = Field(64, ge=1, le=1024, description="chunk length of the SSD scan")
    code: ClassVar[str] = "M2"

    def check(self, d_model):
        di = self.expand * d_model
        if di % self.head_dim:
            return [("head_dim", f"{self.head_dim} does not divide expand*d_model {di}")]
        return []

    def heads(self, d_model: int) -> int:
        return self.expand * d_model // self.head_dim

    def params(self, d_model, value_residual=False):
        di, n, h = self.expand * d_model, self.d_state, self.heads(d_model)
        conv_dim = di + 2 * n
        return d_model * (2 * di + 2 * n + h) + conv_dim * (self.d_conv + 1) + 3 * h + di + di * d_model

    def flops_per_token(self, d_model, context):
        di, n, h = self.expand * d_model, self.d_state, self.heads(d_model)
        mm = d_model * (2 * di + 2 * n + h) + di * d_model
        conv = 2 * (di + 2 * n) * self.d_conv
        # chunked SSD: intra-chunk (C B^T)x ~ 2*chunk/2*(N + head_dim) per head-dim, state in/out 4 di N
        q = min(self.chunk, max(context, 1))
        return 2.0 * mm + conv + 2.0 * h * (q / 2) * (n + self.head_dim) + 4.0 * di * n

    def cache_elems(self, d_model, context):
        di, n = self.expand * d_model, self.d_state
        return self.heads(d_model) * self.head_dim * n + (di + 2 * n) * (self.d_conv - 1)
