"""The chunk-to-chunk state recurrence of `chunked.py` as two small Triton kernels, GPU only.

    S_{c+1} = M_c S_c + N_c   (forward),    G_c = dL/dS_c + M_c^T G_{c+1}   (backward, adjoint)

Same contracts as `chunked.states_forward` / `states_backward` (their plain-PyTorch reference: a
loop of one batched matmul-add per chunk and direction). Why: that loop is the part of the
PyTorch form whose launch count grows with T (n = T/64 launches per direction, 64 of the ~440
kernels of a layer's forward+backward at T=2K), and at proxy sizes launches, not FLOPs, set the
time. Here one program per (batch, head) walks the chunks with the state in registers: one
launch per direction whatever T. Everything else of the chunked form stays PyTorch.

fp32 throughout; matmuls as TF32x3 on tensor cores (about fp32's accuracy). Used by the
"triton-scan" backend of the rwkv7 op, which the dispatch self-test checks against the
PyTorch form on the GPU before first use."""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _tile(K, V, BK: tl.constexpr, BV: tl.constexpr):
    """Row and column offsets of a (K, K) transition and a (K, V) state tile, their masks, and
    the state's flat offsets: the same in both directions."""
    ok = tl.arange(0, BK)
    oj = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    mk = ok < K
    mkv = mk[:, None] & (ov < V)[None, :]
    mkk = mk[:, None] & (oj < K)[None, :]
    return ok, oj, ov, mkv, mkk, ok[:, None] * V + ov[None, :]


@triton.jit
def _fwd_kernel(mn_ptr, s0_ptr, sin_ptr, sT_ptr, NC, K, V,
                HAS_S0: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)            # = b * H + h
    E = K + V
    ok, oj, ov, mkv, mkk, off_kv = _tile(K, V, BK, BV)
    if HAS_S0:
        S = tl.load(s0_ptr + pid * K * V + off_kv, mask=mkv, other=0.0)
    else:
        S = tl.zeros([BK, BV], dtype=tl.float32)
    for c in range(NC):
        tl.store(sin_ptr + (pid * NC + c) * K * V + off_kv, S, mask=mkv)
        base = mn_ptr + (pid * NC + c) * K * E
        M = tl.load(base + ok[:, None] * E + oj[None, :], mask=mkk, other=0.0)
        N = tl.load(base + ok[:, None] * E + K + ov[None, :], mask=mkv, other=0.0)
        S = tl.dot(M, S, input_precision="tf32x3") + N
    tl.store(sT_ptr + pid * K * V + off_kv, S, mask=mkv)


@triton.jit
def _bwd_kernel(mn_ptr, sin_ptr, gin_ptr, gT_ptr, gmn_ptr, g0_ptr, NC, K, V,
                HAS_GT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    E = K + V
    ok, oj, ov, mkv, mkk, off_kv = _tile(K, V, BK, BV)
    if HAS_GT:
        G = tl.load(gT_ptr + pid * K * V + off_kv, mask=mkv, other=0.0)
    else:
        G = tl.zeros([BK, BV], dtype=tl.float32)
    for cc in range(NC):
        c = NC - 1 - cc
        base = (pid * NC + c) * K * E
        S = tl.load(sin_ptr + (pid * NC + c) * K * V + off_kv, mask=mkv, other=0.0)
        # G is dL/dS_{c+1}: dL/dM_c = G S_c^T, dL/dN_c = G
        tl.store(gmn_ptr + base + ok[:, None] * E + oj[None, :],
                 tl.dot(G, tl.trans(S), input_precision="tf32x3"), mask=mkk)
        tl.store(gmn_ptr + base + ok[:, None] * E + K + ov[None, :], G, mask=mkv)
        Mt = tl.load(mn_ptr + base + oj[None, :] * E + ok[:, None], mask=mkk, other=0.0)   # M_c^T
        gi = tl.load(gin_ptr + (pid * NC + c) * K * V + off_kv, mask=mkv, other=0.0)
        G = gi + tl.dot(Mt, G, input_precision="tf32x3")
    tl.store(g0_ptr + pid * K * V + off_kv, G, mask=mkv)


def _blocks(K: int, V: int) -> tuple[int, int]:
    """Power-of-two tile sizes (>= 16: tl.dot's minimum) for K and V (also used by triton.py)."""
    return max(triton.next_power_of_2(K), 16), max(triton.next_power_of_2(V), 16)


def states_forward(MN, S0):
    """`chunked.states_forward` in one launch: MN [B, H, n, K, K+V] fp32 = [M_c | N_c], S0
    [B, H, K, V] or None -> (S_in [B, H, n, K, V], S_final [B, H, K, V])."""
    B, H, n, K, E = MN.shape
    V = E - K
    BK, BV = _blocks(K, V)
    MN = MN.contiguous()
    s0 = S0.contiguous() if S0 is not None else None
    S_in = MN.new_empty(B, H, n, K, V)
    S_T = MN.new_empty(B, H, K, V)
    _fwd_kernel[(B * H,)](MN, s0 if s0 is not None else S_T, S_in, S_T, n, K, V,
                          HAS_S0=s0 is not None, BK=BK, BV=BV, num_warps=4, num_stages=1)
    return S_in, S_T


def states_backward(MN, S_in, g_in, g_final):
    """`chunked.states_backward` in one launch: -> (dL/dMN, dL/dS0)."""
    B, H, n, K, E = MN.shape
    V = E - K
    BK, BV = _blocks(K, V)
    MN = MN.contiguous()
    g_in = g_in.contiguous() if g_in is not None else torch.zeros_like(S_in)
    gT = g_final.contiguous() if g_final is not None else None
    gMN = torch.empty_like(MN)
    g0 = MN.new_empty(B, H, K, V)
    _bwd_kernel[(B * H,)](MN, S_in, g_in, gT if gT is not None else g0, gMN, g0, n, K, V,
                          HAS_GT=gT is not None, BK=BK, BV=BV, num_warps=4, num_stages=1)
    return gMN, g0


TRITON_SCAN = (states_forward, states_backward)


@torch.compiler.disable  # an opaque eager call under torch.compile, like the other Triton paths
def rwkv7_triton_scan(r, w, k, v, a, b, initial_state=None, chunk: int = 64, output_final_state: bool = True):
    """`rwkv7_chunked` with its chunk recurrence in the kernels above; same contract."""
    from .chunked import rwkv7_chunked
    return rwkv7_chunked(r, w, k, v, a, b, initial_state, chunk, output_final_state, scan=TRITON_SCAN)
