"""Mamba-1's selective scan as fused Triton kernels (forward and backward), GPU only.

The state h [B, D, N] never goes through global memory step by step: one program owns a block of
channels of one sequence, loads BT time steps of u, dt, B, C at once, solves the linear
recurrence inside the block with `tl.associative_scan` (combine (a1, b1), (a2, b2) ->
(a1 a2, a2 b1 + b2)), adds the carried state, reads out y = C h and carries the block's last
state on. The backward runs the adjoint recurrence
    g_t = C_t dy_t + exp(dt_{t+1} A) g_{t+1}
the same way from the end, and forms every gradient from g_t, h_t and h_{t-1}.

Design choices:
- Everything is fp32 inside (inputs are cast), as in the official kernels.
- For training the forward stores h_t for every step ([B, T, D, N] fp32, written once, read once
  by the backward) instead of recomputing it from checkpoints: simpler, and still one pass over
  memory each way. Inference (no grad) stores nothing.
- Gradients that sum over channels (dB, dC) are written per channel block and summed in PyTorch
  (deterministic; no atomics); dA is summed over the batch the same way.
- Block sizes and warps are picked per (direction, D, N) by timing a few candidates on the first
  call (`ops.tuning.tuned`; not Triton's autotuner: the backward's partial-sum buffers depend on
  the channel block).
- Triton is imported when this module is imported; callers import it lazily, on a GPU (or on a
  CPU with TRITON_INTERPRET=1, which the tests use when triton is installed).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..tuning import tuned


@triton.jit
def _combine(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _scan_time(a, b, BT: tl.constexpr, BD: tl.constexpr, BN: tl.constexpr):
    """Linear recurrence along axis 0 of [BT, BD, BN] blocks, scanned as [BT, BD*BN] (the 2-D
    axis-0 scan is the well-trodden case, as in fla's chunk-local cumsums)."""
    a2 = tl.reshape(a, (BT, BD * BN))
    b2 = tl.reshape(b, (BT, BD * BN))
    ca, cb = tl.associative_scan((a2, b2), 0, _combine)
    return tl.reshape(ca, (BT, BD, BN)), tl.reshape(cb, (BT, BD, BN))


@triton.jit
def _fwd_kernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, h0_ptr, y_ptr, hs_ptr, hT_ptr,
                T, D, N,
                HAS_H0: tl.constexpr, STORE_H: tl.constexpr,
                BT: tl.constexpr, BD: tl.constexpr, BN: tl.constexpr):
    pb = tl.program_id(0).to(tl.int64)     # [B, T, D, N] offsets pass 2^31 at long T
    pd = tl.program_id(1)
    od = pd * BD + tl.arange(0, BD)
    on = tl.arange(0, BN)
    ot = tl.arange(0, BT)
    md = od < D
    mn = on < N
    mdn = md[:, None] & mn[None, :]
    a = tl.load(A_ptr + od[:, None] * N + on[None, :], mask=mdn, other=0.0)
    if HAS_H0:
        h = tl.load(h0_ptr + pb * D * N + od[:, None] * N + on[None, :], mask=mdn, other=0.0)
    else:
        h = tl.zeros([BD, BN], dtype=tl.float32)
    for t0 in range(0, T, BT):
        tt = (t0 + ot).to(tl.int64)
        mt = tt < T
        mtd = mt[:, None] & md[None, :]
        mtn = mt[:, None] & mn[None, :]
        u = tl.load(u_ptr + pb * T * D + tt[:, None] * D + od[None, :], mask=mtd, other=0.0)
        dt = tl.load(dt_ptr + pb * T * D + tt[:, None] * D + od[None, :], mask=mtd, other=0.0)
        b = tl.load(B_ptr + pb * T * N + tt[:, None] * N + on[None, :], mask=mtn, other=0.0)
        c = tl.load(C_ptr + pb * T * N + tt[:, None] * N + on[None, :], mask=mtn, other=0.0)
        dA = tl.exp(dt[:, :, None] * a[None, :, :])                    # [BT, BD, BN]
        dBu = (dt * u)[:, :, None] * b[:, None, :]
        cumA, loc = _scan_time(dA, dBu, BT, BD, BN)
        hh = loc + cumA * h[None, :, :]
        y = tl.sum(hh * c[:, None, :], axis=2)                          # [BT, BD]
        tl.store(y_ptr + pb * T * D + tt[:, None] * D + od[None, :], y, mask=mtd)
        if STORE_H:
            tl.store(hs_ptr + pb * T * D * N + tt[:, None, None] * D * N + od[None, :, None] * N
                     + on[None, None, :], hh, mask=mtd[:, :, None] & mn[None, None, :])
        # padded rows have dt = 0 (decay 1, no input): the last row is the last real state
        h = tl.sum(tl.where((ot == BT - 1)[:, None, None], hh, 0.0), axis=0)
    tl.store(hT_ptr + pb * D * N + od[:, None] * N + on[None, :], h, mask=mdn)


@triton.jit
def _bwd_kernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, h0_ptr, hs_ptr, dy_ptr, dhT_ptr,
                du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dh0_ptr,
                T, D, N, ND,
                HAS_H0: tl.constexpr, HAS_DHT: tl.constexpr,
                BT: tl.constexpr, BD: tl.constexpr, BN: tl.constexpr):
    pb = tl.program_id(0).to(tl.int64)     # [B, T, D, N] offsets pass 2^31 at long T
    pd = tl.program_id(1)
    od = pd * BD + tl.arange(0, BD)
    on = tl.arange(0, BN)
    ot = tl.arange(0, BT)
    md = od < D
    mn = on < N
    mdn = md[:, None] & mn[None, :]
    a = tl.load(A_ptr + od[:, None] * N + on[None, :], mask=mdn, other=0.0)
    if HAS_DHT:
        g = tl.load(dhT_ptr + pb * D * N + od[:, None] * N + on[None, :], mask=mdn, other=0.0)
    else:
        g = tl.zeros([BD, BN], dtype=tl.float32)
    if HAS_H0:
        h0 = tl.load(h0_ptr + pb * D * N + od[:, None] * N + on[None, :], mask=mdn, other=0.0)
    else:
        h0 = tl.zeros([BD, BN], dtype=tl.float32)
    dA_acc = tl.zeros([BD, BN], dtype=tl.float32)
    nblk = tl.cdiv(T, BT)
    for i in range(0, nblk):
        t0 = (nblk - 1 - i) * BT
        tt = (t0 + BT - 1 - ot).to(tl.int64)      # row r holds time t0 + BT-1-r: reversed time
        mt = tt < T
        mtd = mt[:, None] & md[None, :]
        mtn = mt[:, None] & mn[None, :]
        mtdn = mtd[:, :, None] & mn[None, None, :]
        u = tl.load(u_ptr + pb * T * D + tt[:, None] * D + od[None, :], mask=mtd, other=0.0)
        dt = tl.load(dt_ptr + pb * T * D + tt[:, None] * D + od[None, :], mask=mtd, other=0.0)
        mnext = (tt + 1 < T)[:, None] & md[None, :]
        dt_next = tl.load(dt_ptr + pb * T * D + (tt + 1)[:, None] * D + od[None, :], mask=mnext, other=0.0)
        b = tl.load(B_ptr + pb * T * N + tt[:, None] * N + on[None, :], mask=mtn, other=0.0)
        c = tl.load(C_ptr + pb * T * N + tt[:, None] * N + on[None, :], mask=mtn, other=0.0)
        dy = tl.load(dy_ptr + pb * T * D + tt[:, None] * D + od[None, :], mask=mtd, other=0.0)
        # adjoint recurrence, in reversed time: g_t = C_t dy_t + exp(dt_{t+1} A) g_{t+1}
        a_next = tl.exp(dt_next[:, :, None] * a[None, :, :])
        x = dy[:, :, None] * c[:, None, :]
        cumA, loc = _scan_time(a_next, x, BT, BD, BN)
        gh = loc + cumA * g[None, :, :]                                 # dL/dh_t
        g = tl.sum(tl.where((ot == BT - 1)[:, None, None], gh, 0.0), axis=0)
        hp = hs_ptr + pb * T * D * N + od[None, :, None] * N + on[None, None, :]
        hh = tl.load(hp + tt[:, None, None] * D * N, mask=mtdn, other=0.0)
        hprev = tl.load(hp + (tt - 1)[:, None, None] * D * N, mask=mtdn & (tt >= 1)[:, None, None], other=0.0)
        hprev += tl.where((tt == 0)[:, None, None], h0[None, :, :], 0.0)
        dA_t = tl.exp(dt[:, :, None] * a[None, :, :])
        dlog = gh * hprev * dA_t                                        # dL/d(dt A)
        gdtu = tl.sum(gh * b[:, None, :], axis=2)                       # dL/d(dt u)
        ddt = gdtu * u + tl.sum(dlog * a[None, :, :], axis=2)
        du = gdtu * dt
        dA_acc += tl.sum(dlog * dt[:, :, None], axis=0)
        dC = tl.sum(dy[:, :, None] * hh, axis=1)                        # [BT, BN], this block's part
        dB = tl.sum(gh * (dt * u)[:, :, None], axis=1)
        tl.store(du_ptr + pb * T * D + tt[:, None] * D + od[None, :], du, mask=mtd)
        tl.store(ddt_ptr + pb * T * D + tt[:, None] * D + od[None, :], ddt, mask=mtd)
        part = (pb * ND + pd) * T * N
        tl.store(dC_ptr + part + tt[:, None] * N + on[None, :], dC, mask=mtn)
        tl.store(dB_ptr + part + tt[:, None] * N + on[None, :], dB, mask=mtn)
    dt0 = tl.load(dt_ptr + pb * T * D + od, mask=md, other=0.0)
    dh0 = tl.exp(dt0[:, None] * a) * g
    tl.store(dh0_ptr + pb * D * N + od[:, None] * N + on[None, :], dh0, mask=mdn)
    tl.store(dA_ptr + pb * D * N + od[:, None] * N + on[None, :], dA_acc, mask=mdn)


# (BT, BD, num_warps) in order of preference. Compiled for sm90 with Triton 3.6 (cuobjdump
# -res-usage): no register spills in either kernel while a thread holds <= 16 elements of a
# [BT, BD, BN] block; (16, 32, 4) and (8, 16, 2) at N = 16 spilled up to 1.5 KB per thread.
_POOL = ((16, 16, 8), (16, 8, 8), (32, 4, 4), (16, 8, 4), (16, 4, 4), (8, 8, 4), (16, 4, 8), (8, 4, 8),
         (16, 2, 8), (16, 4, 2), (8, 4, 2), (8, 2, 4), (4, 2, 2), (2, 2, 1))


def _configs(N: int) -> list[tuple[int, int, int]]:
    """Up to 3 candidates that keep every thread at <= 16 block elements (each costs a compile
    of both kernels on a machine's first call; Triton's disk cache serves later processes)."""
    BN = max(triton.next_power_of_2(N), 2)
    out = [(bt, bd, w) for bt, bd, w in _POOL if 32 * w <= bt * bd * BN <= 16 * 32 * w]
    return out[:3] or [(2, 2, 1)]


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, dt, A, Bm, Cm, h0):
        Bsz, T, D = u.shape
        N = A.shape[-1]
        BN = max(triton.next_power_of_2(N), 2)
        u, dt, A, Bm, Cm = (t.float().contiguous() for t in (u, dt, A, Bm, Cm))
        h0c = h0.float().contiguous() if h0 is not None else None
        store = any(ctx.needs_input_grad)  # grad mode is off inside forward
        y = torch.empty(Bsz, T, D, device=u.device, dtype=torch.float32)
        hT = torch.empty(Bsz, D, N, device=u.device, dtype=torch.float32)
        hs = torch.empty(Bsz, T, D, N, device=u.device, dtype=torch.float32) if store else y

        def launch(cfg):
            BT, BD, warps = cfg
            _fwd_kernel[(Bsz, triton.cdiv(D, BD))](
                u, dt, A, Bm, Cm, h0c if h0c is not None else hT, y, hs, hT, T, D, N,
                HAS_H0=h0c is not None, STORE_H=store, BT=BT, BD=BD, BN=BN, num_warps=warps)
        tuned(("selective_scan-fwd", D, N, store, h0c is not None), _configs(N), launch)
        if store:
            ctx.save_for_backward(u, dt, A, Bm, Cm, h0c, hs)
        return y, hT

    @staticmethod
    def backward(ctx, dy, dhT):
        u, dt, A, Bm, Cm, h0, hs = ctx.saved_tensors
        Bsz, T, D = u.shape
        N = A.shape[-1]
        BN = max(triton.next_power_of_2(N), 2)
        dy = (dy if dy is not None else torch.zeros_like(u)).float().contiguous()
        du, ddt = torch.empty_like(u), torch.empty_like(dt)
        dA = torch.empty(Bsz, D, N, device=u.device, dtype=torch.float32)
        dh0 = torch.empty(Bsz, D, N, device=u.device, dtype=torch.float32)
        dhT_c = dhT.float().contiguous() if dhT is not None else None

        def launch(cfg):
            BT, BD, warps = cfg
            ND = triton.cdiv(D, BD)
            dB = torch.empty(Bsz, ND, T, N, device=u.device, dtype=torch.float32)  # per channel block
            dC = torch.empty_like(dB)
            _bwd_kernel[(Bsz, ND)](u, dt, A, Bm, Cm, h0 if h0 is not None else dh0, hs, dy,
                                   dhT_c if dhT_c is not None else dh0,
                                   du, ddt, dA, dB, dC, dh0, T, D, N, ND,
                                   HAS_H0=h0 is not None, HAS_DHT=dhT_c is not None,
                                   BT=BT, BD=BD, BN=BN, num_warps=warps)
            return dB, dC
        dB, dC = tuned(("selective_scan-bwd", D, N, h0 is not None, dhT_c is not None), _configs(N), launch)
        return du, ddt, dA.sum(0), dB.sum(1), dC.sum(1), (dh0 if h0 is not None else None)


@torch.compiler.disable
def selective_scan_triton(u, dt, A, Bm, Cm, initial_state=None, chunk=None):
    """Same contract as `selective_scan_chunked`: (y [B, T, D] fp32, final state [B, D, N] fp32)."""
    return _SelectiveScan.apply(u, dt, A, Bm, Cm, initial_state)
