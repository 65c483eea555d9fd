"""RWKV-7's generalized delta rule (a diagonal decay plus a rank-one update per token).

In the [K, V] state layout (the transpose of RWKV's [V, K]):
    S_t = diag(w_t) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,    o_t = S_t^T r_t
RWKV-7 uses a = -k^ (normalised key), b = k^ * iclr. Inputs r, w, k, a, b: [B, T, H, K] with
w the log-decay (<= 0, fp32), v: [B, T, H, V]; state [B, H, K, V]."""
from .chunked import rwkv7_chunked
from .naive import rwkv7_naive

__all__ = ["rwkv7_chunked", "rwkv7_naive"]
