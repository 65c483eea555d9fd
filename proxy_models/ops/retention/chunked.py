"""RetNet's chunkwise form: retention is SSD with a constant log-decay log(gamma_h) per head, so
the chunked SSD kernel (intra-chunk decayed attention + inter-chunk state passing) computes it
exactly. RetNet's row normalisations of the decay mask and of |QK^T| are per-(token, head)
scalings that the group norm after retention removes, so, as in fla, they are omitted."""
from __future__ import annotations

from ..ssd.chunked import ssd_chunked
from .naive import retention_decays


def retention_chunked(q, k, v, scale: float = 1.0, initial_state=None, chunk: int = 64):
    B, T, H, _ = q.shape
    g = retention_decays(H, q.device).log()[None, None, :].expand(B, T, H)
    return ssd_chunked(q, k, v, g, scale=scale, initial_state=initial_state, chunk=chunk)
