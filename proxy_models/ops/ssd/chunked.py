"""Chunked SSD in plain PyTorch (the Mamba-2 "ssd_minimal_discrete" form, written as batched
matmuls in the layouts they want).

Within a chunk of L positions the output is a masked, decayed attention:
    o_intra = ((q k^T) * exp(segsum(g)) * scale) v
The state each chunk hands on, S_c = (k * exp(G_end - G))^T v, is passed between chunks with
one [n+1, n+1] matrix of chunk-level decays (exp of a segment sum), so there is no Python loop
over chunks, and the inter-chunk term is o_inter = (q * exp(G)) S_in * scale.

Design choices:
- Decays are handled in fp32 as log-space differences (never a division by a cumulative decay),
  so any g <= 0 is safe; the matmuls run in the input dtype (bf16 under autocast).
- q and k may carry one group shared by all heads ([B, T, 1, K], Mamba-2 with ngroups = 1): the
  q k^T product is then computed once and broadcast over heads.
- T that is not a multiple of the chunk is padded with g = 0, k = v = 0 (decay 1, no input),
  which changes neither the outputs kept nor the final state.
- The chunk-level segment sums use the masked-cumsum construction (no difference of two large
  cumulative sums), which keeps long sequences accurate in fp32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def segsum(x: torch.Tensor) -> torch.Tensor:
    """[..., n] -> [..., n, n] with out[i, j] = sum_{m=j+1..i} x[m] for j <= i, -inf above."""
    n = x.shape[-1]
    x = x[..., None].expand(*x.shape, n)  # [..., i, j] = x[i]
    low = torch.ones(n, n, dtype=torch.bool, device=x.device).tril(-1)
    s = x.masked_fill(~low, 0).cumsum(dim=-2)
    return s.masked_fill(~torch.ones_like(low).tril(), float("-inf"))


def ssd_chunked(q, k, v, g, scale: float = 1.0, initial_state=None, chunk: int = 64):
    """Returns (o [B, T, H, V] in v's dtype, final state [B, H, K, V] in fp32)."""
    B, T, H, V = v.shape
    K = q.shape[-1]
    L = max(1, min(chunk, T))
    pad = (-T) % L
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
        g = F.pad(g, (0, 0, 0, pad))
    n = (T + pad) // L
    dt = v.dtype
    # head-first chunks: [B, H, n, L, *]
    qc = q.transpose(1, 2).reshape(B, q.shape[2], n, L, K)
    kc = k.transpose(1, 2).reshape(B, k.shape[2], n, L, K)
    vc = v.transpose(1, 2).reshape(B, H, n, L, V)
    gc = g.float().transpose(1, 2).reshape(B, H, n, L).cumsum(-1)     # inclusive, within chunk

    # 1. intra-chunk: decayed causal attention
    causal = torch.ones(L, L, dtype=torch.bool, device=v.device).tril()
    seg = (gc[..., :, None] - gc[..., None, :]).masked_fill(~causal, float("-inf"))
    scores = qc @ kc.transpose(-1, -2)                                 # [B, H|1, n, L, L]
    attn = (scores.float() * seg.exp() * scale).to(dt)
    o = attn @ vc                                                      # [B, H, n, L, V]

    # 2. the state each chunk contributes, decayed to the chunk's end
    g_end = gc[..., -1:]                                               # [B, H, n, 1]
    k_dec = kc * (g_end - gc).exp()[..., None].to(dt)                  # [B, H, n, L, K]
    states = k_dec.transpose(-1, -2) @ vc                              # [B, H, n, K, V]

    # 3. pass states between chunks: one matmul with the chunk-level decay matrix
    if initial_state is None:
        init = states.new_zeros(B, H, 1, K, V)
    else:
        init = initial_state.to(states.dtype)[:, :, None]
    states = torch.cat([init, states], dim=2)                         # [B, H, n+1, K, V]
    decay_chunk = segsum(F.pad(g_end[..., 0], (1, 0))).exp()           # [B, H, n+1, n+1]
    passed = (decay_chunk.to(dt) @ states.reshape(B, H, n + 1, K * V)).reshape(B, H, n + 1, K, V)
    s_in, final = passed[:, :, :-1], passed[:, :, -1]

    # 4. inter-chunk output: what the incoming state contributes at each position
    q_dec = qc * (gc.exp()[..., None] * scale).to(dt)                  # [B, H, n, L, K]
    o = o + q_dec @ s_in
    o = o.reshape(B, H, n * L, V)[:, :, :T].transpose(1, 2)
    return o, final.float()
