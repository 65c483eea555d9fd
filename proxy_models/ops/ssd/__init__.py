"""Scalar-decay linear attention (Mamba-2's SSD; also RetNet retention with fixed decays).

    S_t = exp(g_t) S_{t-1} + k_t^T v_t,    o_t = scale * q_t S_t

q, k: [B, T, H or 1, K] (one group shared by all heads broadcasts), v: [B, T, H, V],
g: [B, T, H] log-decays (<= 0), initial state [B, H, K, V]."""
from .chunked import ssd_chunked
from .naive import ssd_naive

__all__ = ["ssd_chunked", "ssd_naive"]
