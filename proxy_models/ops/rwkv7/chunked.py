"""RWKV-7's generalized delta rule, chunked, in plain PyTorch.

Inside a chunk (positions 1..L, incoming state S0, cumulative decays G_t = prod_{s<=t} w_s),
the only unknowns that couple positions are the rank-one read-outs s_t = S_{t-1}^T a_t. Unrolling
    S_t = G_t * S0 + sum_{j<=t} (G_t / G_j) * (b_j s_j^T + k_j v_j^T)
gives a unit lower-triangular system for all s of the chunk at once (the WY / UT-transform idea
of DeltaNet and fla's chunk_dplr):
    (I - A_ab) s = (a * G_{t-1}) S0 + A_ak v,   A_xy[t, j] = sum_k x_t G_{t-1}/G_j y_j  (j < t)
so s = W S0 + U with W, U from one triangular solve per chunk. Then, per chunk,
    o   = (r * G_t + A_rb W) S0 + (A_rb U + A_rk v)            = Q S0 + O
    S_L = (diag(G_L) + (b G_L/G)^T W) S0 + ((b G_L/G)^T U + (k G_L/G)^T v) = M S0 + N
All of W, U, Q, O, M, N are computed for every chunk in parallel with batched matmuls; only
S_{c+1} = M_c S_c + N_c runs over chunks (one batched matmul-add each), and o = Q S_in + O is
one more batched matmul.

Design choices:
- Pairwise decays G_{t-1}/G_j are factored around the chunk's middle position (as fla does), so
  each factor is exp of at most L/2 log-decays: finite in fp32 for RWKV-7's decay (>= exp(-0.607)
  per step) up to L = 256; entries above the diagonal may be large and are masked, never used.
- The chunk algebra (including the triangular solve, which has no bf16 kernel) runs in fp32
  whatever the autocast dtype; the result is cast back to v's dtype.
- T not a multiple of L is padded with w = 0 (log), k = v = a = b = r = 0: the padded steps keep
  the state unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rwkv7_chunked(r, w, k, v, a, b, initial_state=None, chunk: int = 16):
    """Returns (o [B, T, H, V] in v's dtype, final state [B, H, K, V] fp32)."""
    B, T, H, K = r.shape
    V = v.shape[-1]
    out_dtype = v.dtype
    L = max(1, min(chunk, T))
    pad = (-T) % L
    if pad:
        r, w, k, v, a, b = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (r, w, k, v, a, b))
    n = (T + pad) // L

    with torch.autocast(device_type=r.device.type, enabled=False):
        def hf(t):  # [B, T, H, X] -> [B, H, n, L, X] fp32
            return t.float().transpose(1, 2).reshape(B, H, n, L, t.shape[-1])
        r, w, k, v, a, b = (hf(t) for t in (r, w, k, v, a, b))
        gi = w.cumsum(dim=3)                     # log G_t (inclusive)
        ge = gi - w                              # log G_{t-1} (exclusive)
        mid = gi[:, :, :, L // 2: L // 2 + 1]    # reference point of the factorisation
        a_t = a * (ge - mid).exp()
        r_t = r * (gi - mid).exp()
        b_j = b * (mid - gi).exp()
        k_j = k * (mid - gi).exp()
        strict = torch.ones(L, L, dtype=torch.bool, device=r.device).tril(-1)
        incl = torch.ones(L, L, dtype=torch.bool, device=r.device).tril()
        zero = r.new_zeros(())
        A_ab = torch.where(strict, a_t @ b_j.transpose(-1, -2), zero)
        A_ak = torch.where(strict, a_t @ k_j.transpose(-1, -2), zero)
        A_rb = torch.where(incl, r_t @ b_j.transpose(-1, -2), zero)
        A_rk = torch.where(incl, r_t @ k_j.transpose(-1, -2), zero)

        # s = W S0 + U from one unit-lower-triangular solve per chunk
        eye = torch.eye(L, device=r.device, dtype=r.dtype)
        rhs = torch.cat([a * ge.exp(), A_ak @ v], dim=-1)               # [B, H, n, L, K+V]
        sol = torch.linalg.solve_triangular(eye - A_ab, rhs, upper=False, unitriangular=True)
        W, U = sol[..., :K], sol[..., K:]

        Q = r * gi.exp() + A_rb @ W                                     # [B, H, n, L, K]
        O = A_rb @ U + A_rk @ v                                         # [B, H, n, L, V]
        g_end = gi[:, :, :, -1:]                                        # [B, H, n, 1, K]
        to_end = (g_end - gi).exp()                                     # G_L / G_j <= 1
        b_e, k_e = b * to_end, k * to_end
        M = torch.diag_embed(g_end[:, :, :, 0].exp()) + b_e.transpose(-1, -2) @ W  # [B, H, n, K, K]
        N = b_e.transpose(-1, -2) @ U + k_e.transpose(-1, -2) @ v                 # [B, H, n, K, V]

        # chunk-major, unbound once: each step is one batched matmul-add on views, and the
        # backward stacks the per-chunk gradients once (indexing per step would not)
        M_c = M.permute(2, 0, 1, 3, 4).reshape(n, B * H, K, K).unbind(0)
        N_c = N.permute(2, 0, 1, 3, 4).reshape(n, B * H, K, V).unbind(0)
        S = (r.new_zeros(B * H, K, V) if initial_state is None else initial_state.float().reshape(B * H, K, V))
        entering = []
        for c in range(n):
            entering.append(S)
            S = torch.baddbmm(N_c[c], M_c[c], S)
        S_in = torch.stack(entering, dim=1).view(B, H, n, K, V)
        S = S.view(B, H, K, V)
        o = Q @ S_in + O
        o = o.reshape(B, H, n * L, V)[:, :, :T].transpose(1, 2)
    return o.to(out_dtype), S
