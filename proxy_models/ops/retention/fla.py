"""fla's Triton kernel for retention: `chunk_retention` (ungated: its backward runs on Hopper with
Triton 3.6, unlike the gated kernels). GPU only; imported at call time."""
from __future__ import annotations

import torch

from ..fla_launch import limit_autotune


@torch.compiler.disable
def retention_fla(q, k, v, scale: float = 1.0, initial_state=None, chunk: int = 64):
    from fla.ops.retention import chunk_retention
    limit_autotune()

    dt = v.dtype
    o, final = chunk_retention(q.to(dt).contiguous(), k.to(dt).contiguous(), v.contiguous(),
                               scale=scale, initial_state=initial_state, output_final_state=True)
    return o, final
