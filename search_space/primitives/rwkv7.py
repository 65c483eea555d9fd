"""RWKV-7 "Goose" time mixing (Peng et al. 2025): the generalized delta rule
S_t = S_{t-1} (diag(w_t) - k^_t^T (a_t * k^_t)) + v_t^T k_t, token shift, the output gate and the
bonus term (r*k*r_k) v, and the value residual toward the first RWKV-7 layer's values.

Weights (H = d/head_dim): six token-shift mixes [d] each; decay LoRA w0 [d], w1 [d, decay_lora],
w2 [decay_lora, d]; in-context learning rate LoRA a0, a1, a2 (a_lora); value-residual LoRA v0,
v1, v2 (v_lora, only in layers that have a first layer to mix toward: `value_residual`); gate
LoRA g1 [d, gate_lora], g2 [gate_lora, d]; k_k [d], k_a [d], r_k [H, head_dim]; receptance, key,
value, output [d, d]; GroupNorm(H, d) with affine ln_x.
Decoding state: S [H, head_dim, head_dim] and the previous token's x [d]."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import TokenMixerSpec


class RWKV7Spec(TokenMixerSpec):
    type: Literal["rwkv7"]
    head_dim: int = Field(64, ge=2, le=256)
    decay_lora: int = Field(32, ge=1, le=1024)
    a_lora: int = Field(32, ge=1, le=1024)
    v_lora: int = Field(16, ge=1, le=1024)
    gate_lora: int = Field(64, ge=1, le=1024)
    chunk: int = Field(64, ge=1, le=64, description="chunk length of the parallel form (<= 64 keeps its factored decays finite in fp32)")
    code: ClassVar[str] = "R7"

    def check(self, d_model):
        if d_model % self.head_dim:
            return [("head_dim", f"{self.head_dim} does not divide d_model {d_model}")]
        return []

    def params(self, d_model, value_residual=False):
        d = d_model
        p = 4 * d * d + 6 * d
        p += d + 2 * d * self.decay_lora
        p += d + 2 * d * self.a_lora
        if value_residual:
            p += d + 2 * d * self.v_lora
        p += 2 * d * self.gate_lora
        p += 3 * d  # k_k, k_a, r_k
        p += 2 * d  # ln_x weight and bias
        return p

    def flops_per_token(self, d_model, context):
        # state update and readout: ~ 6 FLOPs per state element (decay, delta rule, k v^T, r S)
        return 2.0 * self.params(d_model, True) + 6.0 * d_model * self.head_dim

    def cache_elems(self, d_model, context):
        return d_model * self.head_dim + d_model
