"""Mamba-1's selective scan: a diagonal SSM per (channel, state) with input-dependent dt, B, C.

    h_t = exp(dt_t A) * h_{t-1} + (dt_t u_t) B_t,    y_t = h_t C_t

u, dt: [B, T, D]; A: [D, N] (negative); B, C: [B, T, N]; state h: [B, D, N]."""
from .chunked import selective_scan_chunked
from .naive import selective_scan_naive

__all__ = ["selective_scan_chunked", "selective_scan_naive"]
