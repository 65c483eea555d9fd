"""RetNet multi-scale retention (Sun et al. 2023).

    q, k = RoPE(x Wq), RoPE(x Wk);  v = x Wv
    per head h:  S_n = gamma_h S_{n-1} + k_n^T v_n,  o_n = q_n S_n / sqrt(d_k),  gamma_h = 1 - 2^(-5-h)
    out = (swish(x Wg) * GroupNorm_heads(o)) Wo

Design choices:
- Positions: plain rotary (RoPE, theta 10000, the rotate-half layout shared with attention)
  instead of RetNet's xPos, whose extra per-position scaling is an extrapolation device; the
  recurrent, parallel and chunkwise forms stay exactly equivalent.
- The 1/sqrt(d_k) scale is applied to q·k (torchscale scales k). RetNet's parallel-form row
  normalisations are per-(token, head) scalings removed by the group norm; omitted (as in fla).
- Group norm without affine per head = layer norm over each head's value channels (eps 1e-5).
- The kernel is `ops.retention`: fla's ungated `chunk_retention` on a GPU (forward and backward
  run on Hopper), else the chunkwise PyTorch form with chunk length `spec.chunk`.
- Decoding state: S [B, H, d_k, d_v] (fp32) and the position (for RoPE).
Legend: B batch, T time, D d_model, H heads, K key head dim, V value head dim.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .attention import apply_rope, rope_angles
from .base import Ctx, TokenMixer
from .ops import dispatch
from .ops.retention import retention_chunked, retention_decays
from .ops.retention.fla import retention_fla

ROPE_THETA = 10000.0


class Retention(TokenMixer):
    backend = dispatch.TORCH

    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__(spec, d_model, value_residual)
        H = spec.heads
        dv_total = spec.v_expand * d_model
        self.heads, self.dk, self.dv = H, d_model // H, dv_total // H
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, d_model, bias=False)
        self.wv = nn.Linear(d_model, dv_total, bias=False)
        self.wg = nn.Linear(d_model, dv_total, bias=False)
        self.wo = nn.Linear(dv_total, d_model, bias=False)
        self.scale = self.dk ** -0.5
        self._impls = {dispatch.TORCH: functools.partial(retention_chunked, chunk=spec.chunk),
                       "fla-chunk": functools.partial(retention_fla, chunk=spec.chunk)}

    def _qkv(self, x, pos_T):
        lead = x.shape[:-1]
        q = self.wq(x).view(*lead, self.heads, self.dk)
        k = self.wk(x).view(*lead, self.heads, self.dk)
        v = self.wv(x).view(*lead, self.heads, self.dv)
        cos, sin = rope_angles(pos_T, self.dk, ROPE_THETA)   # [T, K/2]
        cos, sin = cos[:, None], sin[:, None]                 # broadcast over heads
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _out(self, o, x):
        o = F.layer_norm(o.float(), (self.dv,), eps=1e-5)
        o = o.reshape(*x.shape[:-1], self.heads * self.dv)
        return self.wo(F.silu(self.wg(x)) * o.to(x.dtype))

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        T = x_BTD.shape[1]
        q, k, v = self._qkv(x_BTD, torch.arange(T, device=x_BTD.device))
        (o, _), name = dispatch.run("retention", self._impls, x_BTD.device, v.dtype, q, k, v, self.scale, None)
        if not torch.compiler.is_compiling():
            self.backend = name
        return self._out(o, x_BTD)

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        return {"S": torch.zeros(batch, self.heads, self.dk, self.dv, device=device, dtype=torch.float32),
                "pos": 0}

    def step(self, x_BD: torch.Tensor, state: dict, ctx: Ctx | None = None):
        pos = state["pos"]
        q, k, v = self._qkv(x_BD[:, None], torch.tensor([pos], device=x_BD.device))
        q, k, v = q[:, 0].float(), k[:, 0].float(), v[:, 0].float()   # [B, H, *]
        gamma = retention_decays(self.heads, x_BD.device)[None, :, None, None]
        S = gamma * state["S"] + k[..., None] * v[:, :, None, :]
        o = self.scale * torch.einsum("bhk,bhkv->bhv", q, S)
        return self._out(o, x_BD), {"S": S, "pos": pos + 1}
