"""fla's Triton kernel for SSD: `chunk_simple_gla` with q = C, k = B, v = x*dt, g = A*dt.

GPU only; fla needs Triton even to import, so the import happens at call time. fla wants q and k
with as many heads as v, so Mamba-2's single B/C group is expanded (a view made contiguous)."""
from __future__ import annotations

import torch

from ..fla_launch import limit_autotune


@torch.compiler.disable
def ssd_fla(q, k, v, g, scale: float = 1.0, initial_state=None, chunk: int = 64):
    from fla.ops.simple_gla import chunk_simple_gla
    limit_autotune()

    H = v.shape[2]
    q = q.expand(-1, -1, H, -1).to(v.dtype).contiguous()
    k = k.expand(-1, -1, H, -1).to(v.dtype).contiguous()
    o, final = chunk_simple_gla(q, k, v.contiguous(), g=g.float().contiguous(), scale=scale,
                                initial_state=initial_state, output_final_state=True)
    return o, final


@torch.compiler.disable
def ssd_fla_parallel(q, k, v, g, scale: float = 1.0, initial_state=None, chunk: int = 64):
    """fla's `parallel_simple_gla`: the quadratic (masked, decayed attention) form of SSD, tiled
    like flash attention. Its backward does not use the gated chunk kernel that fla 0.6 refuses on
    Hopper, so it trains there; it takes no initial state and returns no final state (training
    needs neither), and costs O(T^2), so `backends` offers it only up to PARALLEL_MAX_T."""
    from fla.ops.simple_gla import parallel_simple_gla
    limit_autotune()

    if initial_state is not None:
        raise ValueError("parallel_simple_gla takes no initial state")
    H = v.shape[2]
    q = q.expand(-1, -1, H, -1).to(v.dtype).contiguous()
    k = k.expand(-1, -1, H, -1).to(v.dtype).contiguous()
    o, _ = parallel_simple_gla(q, k, v.contiguous(), g=g.float().contiguous(), scale=scale)
    return o, None


PARALLEL_MAX_T = 4096
