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
All of W, U, Q, O, M, N are computed for every chunk in parallel with batched matmuls. The
states entering the chunks follow the affine recurrence S_{c+1} = M_c S_c + N_c, run as a
plain loop (one batched matmul-add per chunk, `states_forward`; its backward is the adjoint loop,
`states_backward`), or in Triton on a GPU (`scan_triton.py`). The whole chunk algebra is one
autograd Function (`_Chunked`) with a hand-written backward.

Why it is written this way (speed): at proxy sizes on a GPU this op is bound by the number of
kernel launches, not by FLOPs (one layer at T=2K, batch 4 does a few GFLOP), so the code keeps
the launch count low in both directions:
- r, a, b, k and w travel as ONE fp32 tensor laid out [B, H, n, 5, L, K] (one copy in), so that
  [r; a] and [b; k] are contiguous [2L, K] views and all four interaction matrices
  A_rb, A_rk, A_ab, A_ak come from ONE [2L, K] x [K, 2L] matmul and one mask;
- the three exponentials of decay differences come from one `exp`;
- [W | U] is one triangular solve, [Q | O] one matmul-add, [M | N] one matmul-add;
- the chunk recurrence records no autograd nodes per step: one launch per chunk and direction
  (a parallel prefix scan over chunks was tried: fewer steps, but more launches per step in the
  backward and 4x the FLOPs of the square-matrix composition).

Numerics:
- Pairwise decays G_{t-1}/G_j are factored around the chunk's middle position (as fla does), so
  each factor is exp of at most L/2 log-decays: for RWKV-7's decay (>= exp(-0.607) per step) the
  factors stay below exp(0.607 L / 2) and the masked-out products below exp(0.607 L) * K: finite
  in fp32 for L <= 64 (exp(38.8) * K * |r| |b|). Larger chunks are split
  (`MAX_CHUNK`). Every product that is used is <= |x||y|.
- The chunk algebra (including the triangular solve, which has no bf16 kernel) runs in fp32
  whatever the autocast dtype; the result is cast back to v's dtype.
- T not a multiple of L is padded with w = 0 (log), k = v = a = b = r = 0: the padded steps keep
  the state unchanged.
Legend: B batch, T time, H heads, K key dim, V value dim, n chunks, L chunk length.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

MAX_CHUNK = 64
# How (I - A_ab)^-1 is applied: "trsm" (torch.linalg.solve_triangular) or "doubling" (the
# explicit inverse from log2(L) squarings, (I - A)^-1 = (I + A)(I + A^2)(I + A^4)...: matmuls
# only, exact since A is strictly lower triangular, so A^L = 0). Which is faster depends on the
# GPU's batched trsm; benchmarks/primitives.py --rwkv7-solve measures both.
SOLVE = "trsm"


@functools.lru_cache(maxsize=16)
def _constants(L: int, device: torch.device):
    """Constant operands, made once per chunk length and device:
    - mask [2L, 2L] over the stacked product [r; a] x [b; k]^T: r-rows see j <= t, a-rows see
      j < t; the a-b block is negated, so it is directly the off-diagonal of the unit-triangular
      matrix (I - A_ab) that the solve needs;
    - sel [2, L]: row 0 sums log-decays up to the middle position, row 1 over the whole chunk
      (log G_mid and log G_L by one matmul, with no slicing)."""
    incl = torch.ones(L, L, device=device).tril()
    strict = incl.tril(-1)
    mask = torch.cat([torch.cat([incl, incl], dim=1), torch.cat([-strict, strict], dim=1)], dim=0)
    sel = torch.ones(2, L, device=device)
    sel[0, L // 2 + 1:] = 0
    return mask, sel


def states_forward(MN: torch.Tensor, S0: torch.Tensor | None):
    """The states entering every chunk, from the affine recurrence S_{c+1} = M_c S_c + N_c: a
    plain loop, one batched matmul-add per chunk. MN: [B, H, n, K, K+V] = [M_c | N_c]; S0:
    [B, H, K, V] or None. Returns S_in [B, H, n, K, V] (contiguous) and S_final [B, H, K, V]."""
    B, H, n, K, E = MN.shape
    V = E - K
    mn = MN.permute(2, 0, 1, 3, 4).reshape(n, B * H, K, E)       # chunk-major: views per step
    S = MN.new_empty(n + 1, B * H, K, V)
    if S0 is None:
        S[0].zero_()
    else:
        S[0].copy_(S0.reshape(B * H, K, V))
    # the per-step operands as views made by three ops up front: indexing inside the loop
    # would cost ~6 view ops per step, more host time than the step's matmul itself
    Ms, Ns, Ss = mn[..., :K].unbind(0), mn[..., K:].unbind(0), S.unbind(0)
    for c in range(n):
        torch.baddbmm(Ns[c], Ms[c], Ss[c], out=Ss[c + 1])
    S_in = S[:n].view(n, B, H, K, V).permute(1, 2, 0, 3, 4).contiguous()
    return S_in, S[n].view(B, H, K, V).clone()


def states_backward(MN, S_in, g_in, g_final):
    """The adjoint of `states_forward`:
        G_n = dL/dS_final,  G_c = dL/dS_in[c] + M_c^T G_{c+1},
        dL/dM_c = G_{c+1} S_c^T,  dL/dN_c = G_{c+1},  dL/dS_0 = G_0.
    Returns (dL/dMN [B, H, n, K, K+V], dL/dS0 [B, H, K, V])."""
    B, H, n, K, E = MN.shape
    V = E - K
    BH = B * H
    mn = MN.permute(2, 0, 1, 3, 4).reshape(n, BH, K, E)
    G = MN.new_empty(n + 1, BH, K, V)
    if g_final is None:
        G[n].zero_()
    else:
        G[n].copy_(g_final.reshape(BH, K, V))
    if g_in is None:
        g_in = MN.new_zeros(B, H, n, K, V)
    gin = g_in.permute(2, 0, 1, 3, 4).reshape(n, BH, K, V).unbind(0)
    MTs, Gs = mn[..., :K].transpose(-1, -2).unbind(0), G.unbind(0)
    for c in range(n - 1, -1, -1):
        torch.baddbmm(gin[c], MTs[c], Gs[c + 1], out=Gs[c])
    Gn = G[1:].view(n, B, H, K, V).permute(1, 2, 0, 3, 4)                   # G_{c+1}, [B, H, n, K, V]
    gMN = torch.cat([Gn @ S_in.transpose(-1, -2), Gn], dim=-1)
    return gMN, G[0].view(B, H, K, V)


class _Chunked(torch.autograd.Function):
    """The chunk algebra of the module docstring, forward and a hand-written backward.

    Why by hand: under autograd the forward's ~35 ops record as many backward nodes, and their
    gradients cost ~140 launches (view/stack/cat backwards, broadcast reductions, the masked
    products' two-sided matmuls); written out, the backward is ~50 batched ops over all chunks.
    Inputs: X [B, H, n, 5, L, K] fp32 = (r, a, b, k, log w) per chunk, vv [B, H, n, L, V] fp32,
    S0 [B, H, K, V] or None; `scan` runs the chunk recurrence: (forward, backward) functions
    with `states_forward` / `states_backward`'s contracts. Returns o [B, H, n, L, V], S_final."""

    @staticmethod
    def forward(ctx, X, vv, S0, scan):
        # fp32 algebra whatever the caller's autocast (said again here: under torch.compile the
        # Function's body is traced on its own)
        with torch.autocast(device_type=X.device.type, enabled=False):
            return _Chunked._forward(ctx, X, vv, S0, scan)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do, dS_final):
        with torch.autocast(device_type=do.device.type if do is not None else dS_final.device.type, enabled=False):
            return _Chunked._backward(ctx, do, dS_final)

    @staticmethod
    def _forward(ctx, X, vv, S0, scan):
        B, H, n, _, L, K = X.shape
        V = vv.shape[-1]
        mask, sel = _constants(L, X.device)
        ra, bk, w_ = X.split([2, 2, 1], dim=3)
        w_ = w_.squeeze(3)                                                      # log w  [B, H, n, L, K]
        gi = w_.cumsum(dim=-2)                             # log G_t (inclusive)
        g_mid, g_end = (sel @ w_).unsqueeze(-2).unbind(-3)  # log G_mid, log G_L     [B, H, n, 1, K]
        D = gi - g_mid
        E = torch.stack([D, D - w_, -D], dim=3).exp_()     # G_t/G_mid, G_{t-1}/G_mid, G_mid/G_t
        e_ra, e_bk = E.split([2, 1], dim=3)
        left = (ra * e_ra).view(B, H, n, 2 * L, K)         # [r G_t/G_mid ; a G_{t-1}/G_mid]
        right = (bk * e_bk).view(B, H, n, 2 * L, K)        # [b G_mid/G_j ; k G_mid/G_j]
        P = (left @ right.transpose(-1, -2)) * mask        # [[A_rb, A_rk], [-A_ab, A_ak]]
        P_b, P_k = P.view(B, H, n, 2 * L, 2, L).unbind(-2)
        eg = g_mid.exp()
        # rows of r: [r G_t | A_rk v]; rows of a: [a G_{t-1} | A_ak v]
        Z = torch.cat([left * eg, P_k @ vv], dim=-1)                            # [B, H, n, 2L, K+V]
        Z_r, Z_a = Z.view(B, H, n, 2, L, K + V).unbind(3)
        A_rb, nA_ab = P_b.reshape(B, H, n, 2, L, L).unbind(3)
        # [W | U] = (I - A_ab)^-1 [a G_{t-1} | A_ak v]; the solve reads only the strict lower part
        inv = None
        if SOLVE == "trsm" or L <= 2:
            sol = torch.linalg.solve_triangular(nA_ab, Z_a, upper=False, unitriangular=True)
        else:
            inv = _unit_lower_inverse(nA_ab, L)
            sol = inv @ Z_a
        # [Q | O] = [r G_t | A_rk v] + A_rb [W | U]
        QO = torch.baddbmm(Z_r.flatten(0, 2), A_rb.flatten(0, 2), sol.flatten(0, 2)).view(B, H, n, L, K + V)
        Q, O = QO.split([K, V], dim=-1)
        # [M | N] = (b G_L/G)^T [W | U] + [diag(G_L) | (k G_L/G)^T v]
        f_end = (g_end - g_mid).exp()
        bk_end = right * f_end                             # [b G_L/G_j ; k G_L/G_j]
        SV = torch.cat([sol, F.pad(vv, (K, 0))], dim=-2)   # [[W, U], [0, v]]
        ge = g_end.exp()
        MN = bk_end.transpose(-1, -2) @ SV + F.pad(torch.diag_embed(ge.squeeze(-2)), (0, V))
        # the states entering every chunk (and the one leaving the last)
        S_in, S_final = scan[0](MN, S0)
        o = torch.baddbmm(O.flatten(0, 2), Q.flatten(0, 2), S_in.flatten(0, 2)).view(B, H, n, L, V)
        ctx.save_for_backward(X, vv, E, left, right, P, sol, Q, SV, bk_end, MN, S_in, eg, f_end, ge, inv)
        ctx.scan, ctx.has_s0 = scan, S0 is not None
        return o, S_final

    @staticmethod
    def _backward(ctx, do, dS_final):
        X, vv, E, left, right, P, sol, Q, SV, bk_end, MN, S_in, eg, f_end, ge, inv = ctx.saved_tensors
        B, H, n, _, L, K = X.shape
        V = vv.shape[-1]
        mask, sel = _constants(L, X.device)
        if do is None:
            do = vv.new_zeros(B, H, n, L, V)
        # o = O + Q S_in
        dQ = do @ S_in.transpose(-1, -2)                                        # [B, H, n, L, K]
        dMN, dS0 = ctx.scan[1](MN, S_in, Q.transpose(-1, -2) @ do, dS_final)
        dQO = torch.cat([dQ, do], dim=-1)                                       # d[Q | O]
        # [Q | O] = Z_r + A_rb sol
        P_b, P_k = P.view(B, H, n, 2 * L, 2, L).unbind(-2)
        A_rb, nA_ab = P_b.reshape(B, H, n, 2, L, L).unbind(3)
        dA_rb = dQO @ sol.transpose(-1, -2)
        dsol = A_rb.transpose(-1, -2) @ dQO
        # MN = bk_end^T SV + diag(ge)
        dbk_end = SV @ dMN.transpose(-1, -2)                                    # [B, H, n, 2L, K]
        dSV = bk_end @ dMN                                                      # [B, H, n, 2L, K+V]
        dsol += dSV[..., :L, :]
        dvv = dSV[..., L:, K:].clone()
        dlog_ge = torch.diagonal(dMN[..., :K], dim1=-2, dim2=-1).unsqueeze(-2) * ge
        # sol = (I + N)^-1 Z_a with N = strict(nA_ab): dZ_a = (I + N)^-T dsol, dN = -dZ_a sol^T
        if inv is None:
            dZa = torch.linalg.solve_triangular(nA_ab.transpose(-1, -2), dsol, upper=True, unitriangular=True)
        else:
            dZa = inv.transpose(-1, -2) @ dsol
        dnA_ab = -(dZa @ sol.transpose(-1, -2))
        dZ = torch.cat([dQO, dZa], dim=-2)                                      # [B, H, n, 2L, K+V]
        # Z = [left * eg | P_k v]
        dleftG = dZ[..., :K]
        dleft = dleftG * eg
        dlog_eg = (dleftG * left).sum(-2, keepdim=True) * eg
        dZv = dZ[..., K:]
        dvv += P_k.transpose(-1, -2) @ dZv
        # P = (left right^T) * mask, P = [[A_rb, P_k_r], [nA_ab, P_k_a]]
        dP = torch.cat([torch.cat([dA_rb, dnA_ab], dim=-2), dZv @ vv.transpose(-1, -2)], dim=-1) * mask
        dleft += dP @ right
        dright = dP.transpose(-1, -2) @ left + dbk_end * f_end
        dlog_f = (dbk_end * bk_end).sum(-2, keepdim=True)                      # exponent g_end - g_mid
        # left = [r; a] * E[0:2], right = [b; k] * E[2]: each factor exp(x) passes d * value to x
        dl4, dr4 = dleft.view(B, H, n, 2, L, K), dright.view(B, H, n, 2, L, K)
        l4, r4 = left.view(B, H, n, 2, L, K), right.view(B, H, n, 2, L, K)
        e_ra, e_bk = E.split([2, 1], dim=3)
        t_l = dl4 * l4                                       # exponents D (r rows), D - w (a rows)
        t_r = (dr4 * r4).sum(3)                              # exponent -D (b and k rows)
        dD = t_l.sum(3) - t_r
        dg_mid = dlog_eg - dlog_f - dD.sum(-2, keepdim=True)
        dg_end = dlog_f + dlog_ge
        # D = gi - g_mid, gi = cumsum(w); (g_mid, g_end) = sel @ w
        dw = dD.sum(-2, keepdim=True) - dD.cumsum(-2) + dD - t_l[:, :, :, 1]
        dw += sel.t() @ torch.cat([dg_mid, dg_end], dim=-2)
        dX = torch.cat([dl4 * e_ra, dr4 * e_bk, dw.unsqueeze(3)], dim=3)      # [B, H, n, 5, L, K]
        return dX, dvv, (dS0 if ctx.has_s0 else None), None


def _unit_lower_inverse(nA: torch.Tensor, L: int) -> torch.Tensor:
    """(I + strict_lower(nA))^-1 from log2(L) squarings: (I - A)^-1 = (I + A)(I + A^2)(I + A^4)...
    with A = -nA strictly lower (A^L = 0): matmuls only."""
    A = -nA.tril(-1)
    X = A + torch.eye(L, device=nA.device, dtype=nA.dtype)
    P, span = A, 2
    while span < L:                               # X = sum_{m < 2 span} A^m after each round
        P = P @ P
        X = torch.baddbmm(X.flatten(0, -3), X.flatten(0, -3), P.flatten(0, -3)).view(X.shape)
        span *= 2
    return X


TORCH_SCAN = (states_forward, states_backward)


def rwkv7_chunked(r, w, k, v, a, b, initial_state=None, chunk: int = 64, output_final_state: bool = True,
                  scan=TORCH_SCAN):
    """Returns (o [B, T, H, V] in v's dtype, final state [B, H, K, V] fp32, or None when
    `output_final_state` is False: training does not need it). `scan`: what runs the
    chunk-to-chunk recurrence, (forward, backward) with `states_forward` / `states_backward`'s
    contracts (the "triton-scan" backend passes `scan_triton.TRITON_SCAN`)."""
    B, T, H, K = r.shape
    V = v.shape[-1]
    out_dtype = v.dtype
    L = max(1, min(chunk, T, MAX_CHUNK))
    pad = (-T) % L
    n = (T + pad) // L

    with torch.autocast(device_type=r.device.type, enabled=False):
        # one copy in: [B, T, 5, H, K] -> fp32 [B, H, n, 5, L, K] (torch.stack promotes to w's fp32)
        X = torch.stack([r, a, b, k, w], dim=2)
        if X.dtype != torch.float32:
            X = X.float()
        vv = v.float()
        if pad:
            X = F.pad(X, (0, 0, 0, 0, 0, 0, 0, pad))
            vv = F.pad(vv, (0, 0, 0, 0, 0, pad))
        X = X.view(B, n, L, 5, H, K).permute(0, 4, 1, 3, 2, 5).contiguous()      # [B, H, n, 5, L, K]
        vv = vv.view(B, n, L, H, V).permute(0, 3, 1, 2, 4).contiguous()          # [B, H, n, L, V]
        o, S_final = _Chunked.apply(X, vv, None if initial_state is None else initial_state.float(), scan)
        o = o.view(B, H, n * L, V)[:, :, :T].transpose(1, 2)
        if not output_final_state:
            S_final = None
    return o.to(out_dtype), S_final
