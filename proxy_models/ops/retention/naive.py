"""Reference: RetNet's recurrent form (Sun et al. 2023, eq. 3-4 per head):
    S_n = gamma S_{n-1} + K_n^T V_n,   Retention(X_n) = Q_n S_n."""
from __future__ import annotations

import torch


def retention_decays(heads: int, device=None) -> torch.Tensor:
    """gamma_h = 1 - 2^(-5-h), h = 0..heads-1 (fp32)."""
    return 1.0 - 2.0 ** (-5.0 - torch.arange(heads, dtype=torch.float32, device=device))


def retention_naive(q, k, v, scale: float = 1.0, initial_state=None):
    """Returns (o [B, T, H, V] fp32, final state [B, H, K, V] fp32)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    gamma = retention_decays(H, q.device)[None, :, None, None]
    S = (torch.zeros(B, H, K, V, device=q.device) if initial_state is None else initial_state.float())
    q, k, v = q.float(), k.float(), v.float()
    outs = []
    for n in range(T):
        S = gamma * S + k[:, n, :, :, None] * v[:, n, :, None, :]
        outs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, n], S))
    o = torch.stack(outs, dim=1) if outs else q.new_zeros(B, 0, H, V)
    return o, S
