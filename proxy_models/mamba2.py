"""Mamba-2 (Dao & Gu 2024): the SSD block with a scalar decay per head and one B/C group.

    z, xBC, dt = in_proj(u);  x, B, C = SiLU(causal depthwise conv(xBC))
    dt = softplus(dt + dt_bias);  A = -exp(A_log)                     (per head)
    h_t = exp(dt A) h_{t-1} + B_t^T (dt x_t),  y = C_t h_t + D x       (SSD)
    out = out_proj(RMSNorm(y * SiLU(z)) * weight)                      (gated RMSNorm, group = d_inner)

Design choices:
- Parameters and initialisation follow the official `Mamba2Simple` (ngroups = 1): A_log =
  log(U[1, 16]), dt_bias = inverse softplus of dt ~ log-uniform[1e-3, 1e-1], D = 1, no
  projection biases, a conv bias.
- SSD runs through `ops.ssd` with q = C, k = B, v = x*dt, g = A*dt, scale 1 (the mapping to fla's
  `chunk_simple_gla`). `backends` picks fla's chunk kernel for the forward on a GPU. For training
  where fla refuses that kernel's backward (Hopper with Triton < 3.7.1) it picks fla's
  `parallel_simple_gla` (the quadratic attention form of SSD, same function) up to T = 4096,
  and the chunked PyTorch form beyond that or without fla.
- Decoding state: the last d_conv-1 conv inputs and h [B, H, N, head_dim] (fp32).
Legend: B batch, T time, D d_model, E d_inner, H heads, P head_dim, N d_state.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Ctx, TokenMixer
from .ops import dispatch
from .ops.ssd import ssd_chunked
from .ops.ssd.fla import PARALLEL_MAX_T, ssd_fla, ssd_fla_parallel


class Mamba2(TokenMixer):
    backend = dispatch.TORCH

    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__(spec, d_model, value_residual)
        E, N, P, kc = spec.expand * d_model, spec.d_state, spec.head_dim, spec.d_conv
        H = spec.heads(d_model)
        self.d_inner, self.d_state, self.head_dim, self.heads, self.d_conv = E, N, P, H, kc
        self.conv_dim = E + 2 * N
        self.in_proj = nn.Linear(d_model, 2 * E + 2 * N + H, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, kc, groups=self.conv_dim,
                                padding=kc - 1, bias=True)
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(H))
        self.norm_weight = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_model, bias=False)
        chunk = spec.chunk
        self._impls = {dispatch.TORCH: functools.partial(ssd_chunked, chunk=chunk),
                       "fla-chunk": functools.partial(ssd_fla, chunk=chunk),
                       "fla-parallel": ssd_fla_parallel}

    def _split(self, u):
        z, xBC, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, self.heads], dim=-1)
        return z, xBC, dt

    def _out(self, y_E, z):
        y = F.rms_norm((y_E * F.silu(z.float())), (self.d_inner,), self.norm_weight.float(), 1e-5)
        return self.out_proj(y.to(z.dtype))

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        Bsz, T, _ = x_BTD.shape
        H, P, N = self.heads, self.head_dim, self.d_state
        z, xBC, dt = self._split(x_BTD)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :T].transpose(1, 2))
        x, Bm, Cm = xBC.split([self.d_inner, N, N], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())                    # [B, T, H]
        A = -torch.exp(self.A_log.float())
        x_h = x.reshape(Bsz, T, H, P)
        v = (x_h * dt[..., None]).to(x.dtype)
        # backends only distinguishes T <= PARALLEL_MAX_T (the quadratic form is allowed) from
        # longer T: one cached choice (and one log line) for all short lengths
        probe = (PARALLEL_MAX_T if T <= PARALLEL_MAX_T else T,)
        (y, _), name = dispatch.run("ssd", self._impls, x.device, x.dtype,
                                    Cm[:, :, None], Bm[:, :, None], v, dt * A, 1.0, None, probe_shape=probe)
        if not torch.compiler.is_compiling():
            self.backend = name
        y = y.float() + x_h.float() * self.D.float()[:, None]
        return self._out(y.reshape(Bsz, T, self.d_inner), z)

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        return {"conv": torch.zeros(batch, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
                "h": torch.zeros(batch, self.heads, self.d_state, self.head_dim, device=device,
                                 dtype=torch.float32)}

    def step(self, x_BD: torch.Tensor, state: dict, ctx: Ctx | None = None):
        Bsz = x_BD.shape[0]
        H, P, N = self.heads, self.head_dim, self.d_state
        z, xBC, dt = self._split(x_BD)
        window = torch.cat([state["conv"].to(xBC.dtype), xBC[:, :, None]], dim=-1)
        xBC = F.silu((window * self.conv1d.weight[:, 0, :]).sum(-1) + self.conv1d.bias)
        x, Bm, Cm = xBC.split([self.d_inner, N, N], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())                    # [B, H]
        A = -torch.exp(self.A_log.float())
        x_h = x.float().reshape(Bsz, H, P)
        h = (torch.exp(dt * A)[:, :, None, None] * state["h"]
             + Bm.float()[:, None, :, None] * (x_h * dt[..., None])[:, :, None, :])
        y = torch.einsum("bn,bhnp->bhp", Cm.float(), h) + x_h * self.D.float()[:, None]
        out = self._out(y.reshape(Bsz, self.d_inner), z)
        return out, {"conv": window[:, :, 1:], "h": h}
