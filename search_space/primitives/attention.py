"""Multi-head / grouped-query causal attention with RoPE and an optional sliding window.

Weights: Wq [d, d], Wk and Wv [d, kv_heads*head_dim], Wo [d, d]; no biases (LLaMA style).
Decoding cache: K and V for min(context, window) positions."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import TokenMixerSpec, avg_causal_context


class AttentionSpec(TokenMixerSpec):
    type: Literal["attention"]
    heads: int = Field(4, ge=1, le=256)
    kv_heads: int | None = Field(None, ge=1, le=256, description="GQA groups; None = heads")
    window: int | None = Field(None, ge=1, description="sliding window; None = full causal")
    rope: bool = True
    rope_theta: float = Field(10000.0, gt=0)
    code: ClassVar[str] = "A"

    @property
    def n_kv(self) -> int:
        return self.kv_heads or self.heads

    def canonical(self, d_model):
        # kv_heads equal to heads is plain multi-head attention, the same layer as kv_heads: null
        d = super().canonical(d_model)
        if d["kv_heads"] == self.heads:
            d["kv_heads"] = None
        return d

    def check(self, d_model):
        out = []
        if d_model % self.heads:
            out.append(("heads", f"{self.heads} does not divide d_model {d_model}"))
        elif self.rope and (d_model // self.heads) % 2:
            out.append(("heads", f"head_dim {d_model // self.heads} must be even for rope"))
        if self.kv_heads is not None and self.heads % self.kv_heads:
            out.append(("kv_heads", f"{self.kv_heads} does not divide heads {self.heads}"))
        return out

    def params(self, d_model, value_residual=False):
        hd = d_model // self.heads
        return 2 * d_model * d_model + 2 * d_model * self.n_kv * hd

    def flops_per_token(self, d_model, context):
        hd = d_model // self.heads
        # QK^T and AV: 2 matmuls x 2 FLOPs x heads*head_dim per key seen
        return 2.0 * self.params(d_model) + 4.0 * self.heads * hd * avg_causal_context(context, self.window)

    def cache_elems(self, d_model, context):
        hd = d_model // self.heads
        keep = min(context, self.window) if self.window else context
        return 2 * self.n_kv * hd * keep
