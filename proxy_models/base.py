"""The one constructor shape every token-mixer module has, and the decoding context.

    module = Cls(spec, d_model, value_residual=False)     # spec: the search_space spec object
    y_BTD = module(x_BTD, ctx)                            # parallel (training / prefill) form
    state = module.init_state(batch, device, dtype)       # fixed-size or KV-cache state
    y_BD, state = module.step(x_BD, state, ctx)           # one token, same output as forward

`ctx` carries what crosses layers: RWKV-7's value residual (`ctx.v_first`) and which kernel
backend each layer used (`ctx.backends`). Legend for tensor suffixes: B batch, T time,
D d_model, H heads, K key dim, V value dim, N state size, P head dim.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Ctx:
    v_first: torch.Tensor | None = None   # RWKV-7: values of the first RWKV-7 layer
    aux_losses: list = field(default_factory=list)  # MoE / router balancing losses of this forward


class TokenMixer(nn.Module):
    """Base class: subclasses implement forward, init_state and step."""

    #: which kernel backend the last forward used ("torch-chunked", "sdpa", "fla-chunk", ...)
    backend: str = "torch"

    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__()
        self.spec = spec
        self.d_model = d_model
        self.value_residual = value_residual
