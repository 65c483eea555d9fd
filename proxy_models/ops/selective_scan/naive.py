"""Reference: the selective scan one token at a time (Mamba, Gu & Dao 2023, Algorithm 2 with the
zero-order-hold A-bar = exp(dt A) and the simplified B-bar = dt B used by the official code)."""
from __future__ import annotations

import torch


def selective_scan_naive(u, dt, A, Bm, Cm, initial_state=None):
    """Returns (y [B, T, D] in fp32, final state [B, D, N] in fp32); no D skip, no gate."""
    Bsz, T, D = u.shape
    N = A.shape[-1]
    h = (torch.zeros(Bsz, D, N, device=u.device, dtype=torch.float32) if initial_state is None
         else initial_state.float())
    u, dt, A, Bm, Cm = u.float(), dt.float(), A.float(), Bm.float(), Cm.float()
    ys = []
    for t in range(T):
        dA = torch.exp(dt[:, t, :, None] * A)                      # [B, D, N]
        dBu = (dt[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]  # [B, D, N]
        h = dA * h + dBu
        ys.append((h * Cm[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) if ys else u.new_zeros(Bsz, 0, D)
    return y, h
