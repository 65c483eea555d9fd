"""RetNet retention with fixed per-head decays gamma_h = 1 - 2^(-5-h).

    S_n = gamma S_{n-1} + k_n^T v_n,   o_n = scale * q_n S_n
q, k: [B, T, H, K], v: [B, T, H, V], state [B, H, K, V]."""
from .chunked import retention_chunked
from .naive import retention_naive, retention_decays

__all__ = ["retention_chunked", "retention_naive", "retention_decays"]
