"""RWKV-7's generalized delta rule as two fused Triton kernels (forward, backward), GPU only.

The algebra is `chunked.py`'s (read its docstring first): inside a chunk of L positions with
incoming state S, the read-outs s = S_{t-1}^T a_t solve (I - A_ab) s = aG S + A_ak v, then
    o  = rG S + A_rb s + A_rk v,       S' = diag(G_L) S + bE^T s + kE^T v.
What changes is where it runs: ONE program per (batch, head) walks the chunks in order with the
state S [K, V] in registers, so the whole forward is one launch and the whole backward is one
launch, where the PyTorch form needs ~200 launches for a forward+backward at T=2K.

Status (measured on an H200, benchmarks/results/rwkv7_kernels-nvidia-h200.json): correct (fp32
output and gradients within 5e-6 of the PyTorch form) but NOT faster: 9.0 ms forward+backward at
B=4, T=2K, H=8, K=V=64 against 8.4 ms. With one program per head only B*H = 32 programs run, each
through 64 chunks of ~40 dependent small matmuls, so the GPU time is the latency of that chain.
It is therefore not a default backend (`backends.OPS`); benchmarks force it by name "triton".
The next step is to keep only the state recurrence sequential and compute every chunk's
gradients in a second kernel parallel over chunks (all of them are chunk-local given the states
entering and leaving the chunk).

Per chunk (all [L, K] / [L, L] / [K, V] tiles, L = 32 or 64):
- forward: the A matrices from one factored product each (decays around the chunk's middle, as
  in the PyTorch form), (I - A_ab)^-1 by log2(L) - 1 doublings (matmuls only: A_ab is strictly
  lower, so the series stops), then s, o and the next state; the state entering every chunk is
  stored when a backward will follow ([B, H, n, K, V] fp32: 16 MB at B=4, T=2K, H=8, K=V=64).
- backward: walks the chunks from the end with dS (the gradient of the state leaving the chunk),
  recomputes the chunk's forward quantities from the stored state, and forms every input gradient
  in closed form (derivation in `_bwd_kernel`'s comments). Every quantity is chunk-local except
  the state, so nothing else crosses chunks.

Design choices:
- fp32 inside, whatever the input dtype (the solve is not stable in bf16); matmuls as TF32x3 on
  tensor cores (about fp32's accuracy; see `_dot`).
  Outputs and gradients are stored in their tensors' dtypes (the store casts).
- The whole V of a head in one program: no partial sums across programs, no atomics. B*H
  programs are few for a big GPU, but the op is latency-bound at proxy sizes anyway.
- Chunk length and warps are picked by timing on the first call per shape (`tuning.tuned`);
  a chunk length whose backward does not fit the GPU's shared memory is not a candidate.
- No software pipelining across chunks (num_stages=1): the loop carries the state, and staged
  copies of every tile would not fit in shared memory.
- T not a multiple of L: loads past T read w = 0 (log) and zeros, which leave the state as it is.
Legend: B batch, T time, H heads, K key dim, V value dim, n chunks, L chunk length.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..tuning import tuned
from .scan_triton import _blocks

# (L, num_warps) candidates, timed on the first call. One: on an H200 the L=32 pair compiles in
# ~35 s, L=64 in over two minutes (and its backward asked for 384 KB of shared memory with the
# default pipelining, limit 227 KB); the tuning's check drops a config whose backward does not fit
_CONFIGS = ((32, 4),)


@triton.jit
def _dot(x, y):
    # tf32x3: three TF32 tensor-core products per matmul, about fp32's accuracy. Plain TF32 (a
    # 10-bit mantissa) would compound through the doublings; "ieee" unrolls every product into
    # scalar FMAs, and ptxas did not finish compiling the backward in minutes
    return tl.dot(x, y, input_precision="tf32x3")


@triton.jit
def _chunk(r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, S, c, T, row_k, row_v, K, V,
           L: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, LOG2L: tl.constexpr):
    """Loads chunk c and computes what both directions need. Pointers are at (batch, head, t=0)."""
    ot = tl.arange(0, L)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    tt = (c * L + ot).to(tl.int64)
    mt = tt < T
    mtk = mt[:, None] & (ok < K)[None, :]
    mtv = mt[:, None] & (ov < V)[None, :]
    offk = tt[:, None] * row_k + ok[None, :]
    rr = tl.load(r_ptr + offk, mask=mtk, other=0.0).to(tl.float32)
    ww = tl.load(w_ptr + offk, mask=mtk, other=0.0).to(tl.float32)
    kk = tl.load(k_ptr + offk, mask=mtk, other=0.0).to(tl.float32)
    aa = tl.load(a_ptr + offk, mask=mtk, other=0.0).to(tl.float32)
    bb = tl.load(b_ptr + offk, mask=mtk, other=0.0).to(tl.float32)
    vv = tl.load(v_ptr + tt[:, None] * row_v + ov[None, :], mask=mtv, other=0.0).to(tl.float32)

    gi = tl.cumsum(ww, axis=0)                                              # log G_t (inclusive)
    gmid = tl.sum(tl.where((ot == L // 2)[:, None], gi, 0.0), axis=0)      # log G at the middle
    gend = tl.sum(ww, axis=0)                                               # log G_L
    D = gi - gmid[None, :]
    e_r = tl.exp(D)                    # G_t / G_mid
    e_a = tl.exp(D - ww)               # G_{t-1} / G_mid
    e_b = tl.exp(-D)                   # G_mid / G_j
    lr = rr * e_r
    la = aa * e_a
    rb = bb * e_b
    rk = kk * e_b
    incl = ot[:, None] >= ot[None, :]
    strict = ot[:, None] > ot[None, :]
    A_rb = tl.where(incl, _dot(lr, tl.trans(rb)), 0.0)
    A_rk = tl.where(incl, _dot(lr, tl.trans(rk)), 0.0)
    A_ab = tl.where(strict, _dot(la, tl.trans(rb)), 0.0)
    A_ak = tl.where(strict, _dot(la, tl.trans(rk)), 0.0)
    # (I - A_ab)^-1 = (I + A)(I + A^2)(I + A^4)...: A is strictly lower, so A^L = 0
    X = tl.where(ot[:, None] == ot[None, :], 1.0, 0.0) + A_ab
    Pw = A_ab
    for _ in tl.static_range(LOG2L - 1):
        Pw = _dot(Pw, Pw)
        X = X + _dot(X, Pw)
    e_g = tl.exp(gi)
    rG = rr * e_g                      # r G_t
    aG = aa * tl.exp(gi - ww)          # a G_{t-1}
    Pv = _dot(aG, S) + _dot(A_ak, vv)
    s = _dot(X, Pv)                    # read-outs S_{t-1}^T a_t
    f = tl.exp(gend[None, :] - gi)     # G_L / G_j
    return (rr, ww, kk, aa, bb, vv, gi, D, e_r, e_a, e_b, lr, la, rb, rk,
            A_rb, A_rk, A_ab, A_ak, X, rG, aG, Pv, s, f, gend)


@triton.jit
def _fwd_kernel(r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, s0_ptr, o_ptr, hs_ptr, sT_ptr,
                T, H, K, V, NC,
                HAS_S0: tl.constexpr, STORE_S: tl.constexpr, STORE_FINAL: tl.constexpr,
                L: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, LOG2L: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)            # = b * H + h
    i_b = pid // H
    i_h = pid % H
    row_k = H * K
    row_v = H * V
    base_k = i_b * T * row_k + i_h * K
    base_v = i_b * T * row_v + i_h * V
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ot = tl.arange(0, L)
    mkv = (ok < K)[:, None] & (ov < V)[None, :]
    off_kv = ok[:, None] * V + ov[None, :]
    if HAS_S0:
        S = tl.load(s0_ptr + pid * K * V + off_kv, mask=mkv, other=0.0).to(tl.float32)
    else:
        S = tl.zeros([BK, BV], dtype=tl.float32)
    for c in range(NC):
        if STORE_S:
            tl.store(hs_ptr + (pid * NC + c) * K * V + off_kv, S, mask=mkv)
        (rr, ww, kk, aa, bb, vv, gi, D, e_r, e_a, e_b, lr, la, rb, rk,
         A_rb, A_rk, A_ab, A_ak, X, rG, aG, Pv, s, f, gend) = _chunk(
            r_ptr + base_k, w_ptr + base_k, k_ptr + base_k, v_ptr + base_v, a_ptr + base_k, b_ptr + base_k,
            S, c, T, row_k, row_v, K, V, L, BK, BV, LOG2L)
        o = _dot(rG, S) + _dot(A_rb, s) + _dot(A_rk, vv)
        tt = (c * L + ot).to(tl.int64)
        tl.store(o_ptr + base_v + tt[:, None] * row_v + ov[None, :], o,
                 mask=(tt < T)[:, None] & (ov < V)[None, :])
        S = tl.exp(gend)[:, None] * S + _dot(tl.trans(bb * f), s) + _dot(tl.trans(kk * f), vv)
    if STORE_FINAL:
        tl.store(sT_ptr + pid * K * V + off_kv, S, mask=mkv)


@triton.jit
def _bwd_kernel(r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, hs_ptr, do_ptr, dsT_ptr,
                dr_ptr, dw_ptr, dk_ptr, dv_ptr, da_ptr, db_ptr, ds0_ptr,
                T, H, K, V, NC,
                HAS_DST: tl.constexpr, HAS_S0: tl.constexpr,
                L: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, LOG2L: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i_b = pid // H
    i_h = pid % H
    row_k = H * K
    row_v = H * V
    base_k = i_b * T * row_k + i_h * K
    base_v = i_b * T * row_v + i_h * V
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ot = tl.arange(0, L)
    mkv = (ok < K)[:, None] & (ov < V)[None, :]
    off_kv = ok[:, None] * V + ov[None, :]
    incl = ot[:, None] >= ot[None, :]
    strict = ot[:, None] > ot[None, :]
    if HAS_DST:
        dS = tl.load(dsT_ptr + pid * K * V + off_kv, mask=mkv, other=0.0).to(tl.float32)
    else:
        dS = tl.zeros([BK, BV], dtype=tl.float32)
    for cc in range(NC):
        c = NC - 1 - cc
        S = tl.load(hs_ptr + (pid * NC + c) * K * V + off_kv, mask=mkv, other=0.0)
        (rr, ww, kk, aa, bb, vv, gi, D, e_r, e_a, e_b, lr, la, rb, rk,
         A_rb, A_rk, A_ab, A_ak, X, rG, aG, Pv, s, f, gend) = _chunk(
            r_ptr + base_k, w_ptr + base_k, k_ptr + base_k, v_ptr + base_v, a_ptr + base_k, b_ptr + base_k,
            S, c, T, row_k, row_v, K, V, L, BK, BV, LOG2L)
        tt = (c * L + ot).to(tl.int64)
        mt = tt < T
        mtk = mt[:, None] & (ok < K)[None, :]
        mtv = mt[:, None] & (ov < V)[None, :]
        do = tl.load(do_ptr + base_v + tt[:, None] * row_v + ov[None, :], mask=mtv, other=0.0).to(tl.float32)
        bE = bb * f
        kE = kk * f
        gL = tl.exp(gend)
        # o = rG S + A_rb s + A_rk v and S' = diag(gL) S + bE^T s + kE^T v, with dS = dL/dS':
        ds = _dot(tl.trans(A_rb), do) + _dot(bE, dS)
        # s = X Pv, X = (I - A_ab)^-1  =>  dPv = X^T ds, and dA_ab = dPv s^T (on A_ab's support)
        dPv = _dot(tl.trans(X), ds)
        dv = _dot(tl.trans(A_rk), do) + _dot(tl.trans(A_ak), dPv) + _dot(kE, dS)
        dA_rb = tl.where(incl, _dot(do, tl.trans(s)), 0.0)
        dA_rk = tl.where(incl, _dot(do, tl.trans(vv)), 0.0)
        dA_ab = tl.where(strict, _dot(dPv, tl.trans(s)), 0.0)
        dA_ak = tl.where(strict, _dot(dPv, tl.trans(vv)), 0.0)
        drG = _dot(do, tl.trans(S))
        daG = _dot(dPv, tl.trans(S))
        dbE = _dot(s, tl.trans(dS))
        dkE = _dot(vv, tl.trans(dS))
        dgL = tl.sum(S * dS, axis=1)
        # the state entering this chunk: what the previous chunk's backward continues with
        dS = _dot(tl.trans(rG), do) + _dot(tl.trans(aG), dPv) + gL[:, None] * dS
        # A_xy = x y^T on its support  =>  dx = dA_xy y, dy = dA_xy^T x
        dlr = _dot(dA_rb, rb) + _dot(dA_rk, rk)
        dla = _dot(dA_ab, rb) + _dot(dA_ak, rk)
        drb = _dot(tl.trans(dA_rb), lr) + _dot(tl.trans(dA_ab), la)
        drk = _dot(tl.trans(dA_rk), lr) + _dot(tl.trans(dA_ak), la)
        # every use of an input is input * exp(exponent): the input's gradient is d(use) * factor,
        # and the exponent's is d(use) * use. Exponents: lr D, la D - w, rb and rk -D, rG gi,
        # aG gi - w, bE and kE gend - gi, gL gend; with D = gi - gmid, gi = cumsum(w).
        e_f = f
        dr = dlr * e_r + drG * tl.exp(gi)
        da = dla * e_a + daG * tl.exp(gi - ww)
        db = drb * e_b + dbE * e_f
        dk = drk * e_b + dkE * e_f
        t_d = dlr * lr + dla * la - drb * rb - drk * rk      # d/dD
        t_e = dbE * bE + dkE * kE                            # d/d(gend - gi)
        dgi = t_d + drG * rG + daG * aG - t_e
        dgmid = -tl.sum(t_d, axis=0)
        dgend = tl.sum(t_e, axis=0) + dgL * gL
        # gi_t = sum_{j<=t} w_j: dw_j gets the reverse cumsum of dgi; gmid sums w up to L/2
        rev = tl.sum(dgi, axis=0)[None, :] - tl.cumsum(dgi, axis=0) + dgi
        dw = (rev - dla * la - daG * aG + tl.where((ot <= L // 2)[:, None], dgmid[None, :], 0.0)
              + dgend[None, :])
        offk = tt[:, None] * row_k + ok[None, :]
        tl.store(dr_ptr + base_k + offk, dr, mask=mtk)
        tl.store(dw_ptr + base_k + offk, dw, mask=mtk)
        tl.store(dk_ptr + base_k + offk, dk, mask=mtk)
        tl.store(da_ptr + base_k + offk, da, mask=mtk)
        tl.store(db_ptr + base_k + offk, db, mask=mtk)
        tl.store(dv_ptr + base_v + tt[:, None] * row_v + ov[None, :], dv, mask=mtv)
    if HAS_S0:
        tl.store(ds0_ptr + pid * K * V + off_kv, dS, mask=mkv)


def _launch_bwd(cfg, r, w, k, v, a, b, s0, hs, do, dsT):
    B, T, H, K = r.shape
    V = v.shape[-1]
    BK, BV = _blocks(K, V)
    L, warps = cfg
    grads = [torch.empty_like(t) for t in (r, w, k, v, a, b)]
    ds0 = torch.empty_like(s0) if s0 is not None else None
    _bwd_kernel[(B * H,)](r, w, k, v, a, b, hs, do, dsT if dsT is not None else hs, *grads,
                          ds0 if ds0 is not None else hs, T, H, K, V, hs.shape[2],
                          HAS_DST=dsT is not None, HAS_S0=s0 is not None,
                          L=L, BK=BK, BV=BV, LOG2L=L.bit_length() - 1, num_warps=warps, num_stages=1)
    return grads, ds0


class _RWKV7(torch.autograd.Function):
    @staticmethod
    def forward(ctx, r, w, k, v, a, b, s0, want_final):
        B, T, H, K = r.shape
        V = v.shape[-1]
        BK, BV = _blocks(K, V)
        r, w, k, v, a, b = (t.contiguous() for t in (r, w, k, v, a, b))
        s0c = s0.float().contiguous() if s0 is not None else None
        store = any(ctx.needs_input_grad)  # grad mode is off inside forward
        o = torch.empty(B, T, H, V, device=r.device, dtype=v.dtype)
        sT = torch.empty(B, H, K, V, device=r.device, dtype=torch.float32) if want_final else o

        def launch(cfg):
            L, warps = cfg
            NC = triton.cdiv(T, L)
            hs = torch.empty(B, H, NC, K, V, device=r.device, dtype=torch.float32) if store else o
            _fwd_kernel[(B * H,)](r, w, k, v, a, b, s0c if s0c is not None else o, o, hs, sT, T, H, K, V, NC,
                                  HAS_S0=s0c is not None, STORE_S=store, STORE_FINAL=want_final,
                                  L=L, BK=BK, BV=BV, LOG2L=L.bit_length() - 1, num_warps=warps, num_stages=1)
            return cfg, hs

        def check(cfg):
            # training: the stored states fix the chunk length for the backward, so a config is a
            # candidate only if its backward kernel also compiles and fits this GPU
            if store:
                _, hs = launch(cfg)
                _launch_bwd(cfg, r, w, k, v, a, b, s0c, hs, torch.zeros_like(o), None)
        cfg, hs = tuned(("rwkv7-fwd", K, V, store, s0c is not None), _CONFIGS, launch, check)
        if store:
            ctx.save_for_backward(r, w, k, v, a, b, s0c, hs)
            ctx.cfg = cfg
        return o, (sT if want_final else None)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do, dsT):
        r, w, k, v, a, b, s0, hs = ctx.saved_tensors
        do = do.contiguous() if do is not None else torch.zeros_like(v)
        dsT = dsT.float().contiguous() if dsT is not None else None
        grads, ds0 = _launch_bwd(ctx.cfg, r, w, k, v, a, b, s0, hs, do, dsT)
        return (*grads, ds0, None)


@torch.compiler.disable
def rwkv7_triton(r, w, k, v, a, b, initial_state=None, chunk: int = 64, output_final_state: bool = True):
    """Same contract as `rwkv7_chunked`: (o [B, T, H, V] in v's dtype, final state [B, H, K, V]
    fp32 or None). `chunk` is the PyTorch form's; this kernel uses `_CONFIGS`'s."""
    return _RWKV7.apply(r, w, k, v, a, b, initial_state, output_final_state)
