"""fla's Triton kernel for RWKV-7: `chunk_rwkv7` (the DPLR delta rule, fla.ops.generalized_delta_rule).
Its backward does not go through the gated `chunk_bwd_dqkwg` that fla 0.6 refuses on Hopper with
Triton < 3.7.1. `w` is the log-decay, as here. GPU only; imported at call time.

RWKV-7's log-decay -exp(-softplus(.) - 0.5) is bounded below by -exp(-0.5); passing that bound
(as fla's own RWKV7 layer does) lets fla use chunks of 64 with its tensor-core scheme, so the
spec's `chunk` (which the PyTorch form uses) is not passed on."""
from __future__ import annotations

import math

import torch

from ..fla_launch import limit_autotune

LOG_DECAY_LOWER_BOUND = -math.exp(-0.5)


@torch.compiler.disable
def rwkv7_fla(r, w, k, v, a, b, initial_state=None, chunk: int = 64, output_final_state: bool = True):
    from fla.ops.rwkv7 import chunk_rwkv7
    limit_autotune()

    dt = v.dtype
    r, k, a, b = (t.to(dt).contiguous() for t in (r, k, a, b))
    o, final = chunk_rwkv7(r, w.float().contiguous(), k, v.contiguous(), a, b, scale=1.0,
                           initial_state=initial_state, output_final_state=output_final_state,
                           lower_bound=LOG_DECAY_LOWER_BOUND)
    return o, final
