"""Reference: the SSD recurrence token by token (Mamba-2 paper, eq. of the selective SSM with a
scalar A per head): h_t = exp(dt A) h_{t-1} + B_t^T (dt x_t), y_t = C_t h_t."""
from __future__ import annotations

import torch


def ssd_naive(q, k, v, g, scale: float = 1.0, initial_state=None):
    """Returns (o [B, T, H, V], final state [B, H, K, V]); computed in fp32."""
    B, T, H, V = v.shape
    K = q.shape[-1]
    S = (torch.zeros(B, H, K, V, device=v.device, dtype=torch.float32) if initial_state is None
         else initial_state.float())
    q, k, v, g = q.float(), k.float(), v.float(), g.float()
    outs = []
    for t in range(T):
        S = g[:, t, :, None, None].exp() * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        outs.append(scale * (q[:, t, :, :, None] * S).sum(-2))
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(B, 0, H, V, dtype=torch.float32)
    return o, S
