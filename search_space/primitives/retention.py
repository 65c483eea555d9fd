"""RetNet multi-scale retention (Sun et al. 2023): per-head fixed decays
gamma_h = 1 - 2^(-5-h), rotary positions on q/k, a per-head group norm (no affine, as in
torchscale) and a SiLU gate.

Weights: Wq, Wk [d, d]; Wv, Wg [d, v_expand*d]; Wo [v_expand*d, d].
Decoding state: S [H, d/H, v_expand*d/H]."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import TokenMixerSpec


class RetentionSpec(TokenMixerSpec):
    type: Literal["retention"]
    heads: int = Field(4, ge=1, le=256)
    v_expand: int = Field(2, ge=1, le=4, description="value expansion (RetNet uses 2)")
    chunk: int = Field(64, ge=1, le=1024, description="chunk length of the chunkwise form")
    code: ClassVar[str] = "RN"

    def check(self, d_model):
        if d_model % self.heads:
            return [("heads", f"{self.heads} does not divide d_model {d_model}")]
        if (d_model // self.heads) % 2:
            return [("heads", f"head_dim {d_model // self.heads} must be even for the rotary positions")]
        return []

    def params(self, d_model, value_residual=False):
        return 2 * d_model * d_model + 3 * self.v_expand * d_model * d_model

    def flops_per_token(self, d_model, context):
        dk, dv = d_model // self.heads, self.v_expand * d_model // self.heads
        q = min(self.chunk, max(context, 1))
        return 2.0 * self.params(d_model) + self.heads * (2.0 * q * (dk + dv) + 4.0 * dk * dv)

    def cache_elems(self, d_model, context):
        return self.heads * (d_model // self.heads) * (self.v_expand * d_model // self.heads)
