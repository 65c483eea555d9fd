"""Multi-head / grouped-query causal attention with RoPE and an optional sliding window.

Design choices:
- Everything goes through `torch.nn.functional.scaled_dot_product_attention`. Without a window we
  pass `is_causal=True` and no mask, so on a GPU with bf16/fp16 SDPA takes its flash kernel; a
  sliding window is an explicit boolean mask (query i sees keys i-window+1 .. i, itself
  included), which SDPA runs with its memory-efficient kernel on a GPU. GQA uses SDPA's
  `enable_gqa` rather than copying K/V per head.
- RoPE in the rotate-half (GPT-NeoX / LLaMA) layout, angles computed in fp32 from absolute
  positions, so a cached key keeps the rotation of the position it was written at.
- Decoding: the KV cache holds at most `window` positions. With a window it is a ring buffer of
  exactly `window` slots (slot = position mod window; order does not matter to attention since
  the keys carry their positions through RoPE); without a window it grows in blocks of 256
  positions. Under `torch.no_grad` (decoding) the cache is written in place, as serving stacks
  do, so the state passed in is consumed: use the returned one. With gradients enabled `step`
  is functional.
Weights (no biases): Wq [d, d], Wk and Wv [d, kv_heads*head_dim], Wo [d, d].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import backends
from .base import Ctx, TokenMixer


def rope_angles(pos_T: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=pos_T.device, dtype=torch.float32) / head_dim))
    ang = pos_T.to(torch.float32)[:, None] * inv_freq[None, :]
    return ang.cos(), ang.sin()


def apply_rope(x_BHTP: torch.Tensor, cos_TP: torch.Tensor, sin_TP: torch.Tensor) -> torch.Tensor:
    half = x_BHTP.shape[-1] // 2
    x = x_BHTP.float()
    x1, x2 = x[..., :half], x[..., half:]
    out = torch.cat((x1 * cos_TP - x2 * sin_TP, x2 * cos_TP + x1 * sin_TP), dim=-1)
    return out.to(x_BHTP.dtype)


_CACHE_BLOCK = 256  # positions a full-attention KV cache grows by


class Attention(TokenMixer):
    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__(spec, d_model, value_residual)
        self.heads = spec.heads
        self.kv_heads = spec.n_kv
        self.head_dim = d_model // spec.heads
        self.window = spec.window
        self.wq = nn.Linear(d_model, self.heads * self.head_dim, bias=False)
        self.wk = nn.Linear(d_model, self.kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(d_model, self.kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(self.heads * self.head_dim, d_model, bias=False)
        self._op = "sdpa_causal" if self.window is None else "sdpa_masked"
        self.backend = backends.choose(self._op, "cpu", torch.float32, shape=(self.head_dim,))

    def _qkv(self, x_BTD: torch.Tensor, pos_T: torch.Tensor):
        B, T, _ = x_BTD.shape
        q = self.wq(x_BTD).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = self.wk(x_BTD).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x_BTD).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.spec.rope:
            cos, sin = rope_angles(pos_T, self.head_dim, self.spec.rope_theta)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def _out(self, o_BHTP: torch.Tensor) -> torch.Tensor:
        B, H, T, P = o_BHTP.shape
        return self.wo(o_BHTP.transpose(1, 2).reshape(B, T, H * P))

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        T = x_BTD.shape[1]
        pos = torch.arange(T, device=x_BTD.device)
        q, k, v = self._qkv(x_BTD, pos)
        self.backend = backends.choose(self._op, x_BTD.device, q.dtype, shape=(self.head_dim,))
        k, v, gqa = self._gqa(k, v)
        if self.window is None or self.window >= T:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            delta = pos[:, None] - pos[None, :]
            mask = (delta >= 0) & (delta < self.window)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return self._out(o)

    def _gqa(self, k, v):
        """SDPA's native GQA where the kernel takes it (flash, CPU); the CUDA memory-efficient
        kernel does not, and SDPA would silently drop to the math kernel, so K/V are repeated."""
        if self.kv_heads == self.heads:
            return k, v, False
        if self.backend in ("sdpa-flash", "sdpa-cpu"):
            return k, v, True
        rep = self.heads // self.kv_heads
        return k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1), False

    def reference(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        """Attention written out (softmax(q k^T / sqrt(P) + mask) v, K/V repeated per group),
        the plain-PyTorch meaning that the SDPA path is tested against."""
        T = x_BTD.shape[1]
        pos = torch.arange(T, device=x_BTD.device)
        q, k, v = self._qkv(x_BTD, pos)
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        delta = pos[:, None] - pos[None, :]
        allowed = (delta >= 0) & (delta < (self.window or T))
        s = (q @ k.transpose(-1, -2)) / self.head_dim ** 0.5
        o = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1) @ v
        return self._out(o)

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        slots = self.window or 0
        shape = (batch, self.kv_heads, slots, self.head_dim)
        return {"k": torch.zeros(shape, device=device, dtype=dtype),
                "v": torch.zeros(shape, device=device, dtype=dtype), "pos": 0}

    def step(self, x_BD: torch.Tensor, state: dict, ctx: Ctx | None = None):
        pos = state["pos"]
        q, k, v = self._qkv(x_BD[:, None, :], torch.tensor([pos], device=x_BD.device))
        K, V = state["k"], state["v"]
        k, v = k.to(K.dtype), v.to(V.dtype)
        if self.window is None:
            slot, n = pos, pos + 1
            if K.shape[2] <= pos:  # grow by a block: amortised copies stay small, spare room bounded
                grow = pos + _CACHE_BLOCK - K.shape[2]
                K = torch.cat((K, K.new_zeros(*K.shape[:2], grow, K.shape[3])), dim=2)
                V = torch.cat((V, V.new_zeros(*V.shape[:2], grow, V.shape[3])), dim=2)
        else:  # ring buffer: while it is filling, slots 0..pos are the written ones
            slot, n = pos % self.window, min(pos + 1, self.window)
        if torch.is_grad_enabled():  # functional, so autograd never sees a cache modified in place
            idx = torch.tensor([slot], device=x_BD.device)
            K, V = K.index_copy(2, idx, k), V.index_copy(2, idx, v)
        else:  # decoding: write in place, as a real KV cache does
            K[:, :, slot] = k[:, :, 0]
            V[:, :, slot] = v[:, :, 0]
        Kq, Vq, gqa = self._gqa(K[:, :, :n].to(q.dtype), V[:, :, :n].to(q.dtype))
        o = F.scaled_dot_product_attention(q, Kq, Vq, enable_gqa=gqa)
        return self._out(o)[:, 0], {"k": K, "v": V, "pos": pos + 1}
