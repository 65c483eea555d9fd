"""Reference: RWKV-7's state update token by token, as the paper (and BlinkDL's reference
`ref_fwd`) writes it in the [V, K] layout:
    S = S * w + (S a) b^T + v k^T,   out = S r   with w = exp(log-decay)."""
from __future__ import annotations

import torch


def rwkv7_naive(r, w, k, v, a, b, initial_state=None):
    """Returns (o [B, T, H, V] fp32, final state [B, H, K, V] fp32)."""
    B, T, H, K = r.shape
    V = v.shape[-1]
    S = (torch.zeros(B, H, V, K, device=r.device, dtype=torch.float32) if initial_state is None
         else initial_state.float().transpose(-1, -2))                  # [B, H, V, K]
    r, w, k, v, a, b = (t.float() for t in (r, w, k, v, a, b))
    outs = []
    for t in range(T):
        sa = S @ a[:, t, :, :, None]                                   # [B, H, V, 1]
        S = (S * w[:, t, :, None, :].exp() + sa * b[:, t, :, None, :]
             + v[:, t, :, :, None] * k[:, t, :, None, :])
        outs.append((S @ r[:, t, :, :, None])[..., 0])
    o = torch.stack(outs, dim=1) if outs else r.new_zeros(B, 0, H, V)
    return o, S.transpose(-1, -2)
