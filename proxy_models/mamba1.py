"""Mamba-1 (Gu & Dao 2023): the selective SSM block.

    x, z = in_proj(u);  x = SiLU(causal depthwise conv(x))
    dt_low, B, C = x_proj(x);  dt = softplus(dt_proj(dt_low))          (dt_proj has a bias)
    h_t = exp(dt A) h_{t-1} + dt B_t x_t,  y = C_t h_t + D x;   out = out_proj(y * SiLU(z))

Design choices:
- Parameters and initialisation follow the official `mamba_simple.Mamba`: S4D-real A_log =
  log(1..N) per channel, D = 1, dt_proj bias = inverse softplus of dt ~ log-uniform[1e-3, 1e-1],
  dt_proj weight uniform(+-dt_rank^-0.5). No in/out projection biases, a conv bias.
- The scan is `ops.selective_scan` (chosen in `backends`, op "selective_scan"): on a GPU our fused
  Triton kernels (forward and backward; fla has none and mamba_ssm needs CUDA compilation),
  elsewhere the two-level blocked scan in fp32; `naive` is the per-token reference.
- Decoding state: the last d_conv-1 conv inputs and h [B, di, N] (fp32).
Legend: B batch, T time, D d_model, E d_inner (expand*d), N state size, R dt_rank.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Ctx, TokenMixer
from .ops import dispatch
from .ops.selective_scan import selective_scan_chunked



def _triton_scan(*args, **kwargs):
    from .ops.selective_scan.triton import selective_scan_triton  # GPU only: triton imported here
    return selective_scan_triton(*args, **kwargs)


IMPLS = {dispatch.TORCH: selective_scan_chunked, "triton": _triton_scan}


class Mamba1(TokenMixer):
    backend = dispatch.TORCH

    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__(spec, d_model, value_residual)
        E, N, R, kc = spec.expand * d_model, spec.d_state, spec.rank(d_model), spec.d_conv
        self.d_inner, self.d_state, self.dt_rank, self.d_conv = E, N, R, kc
        self.in_proj = nn.Linear(d_model, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, kc, groups=E, padding=kc - 1, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_model, bias=False)
        with torch.no_grad():
            std = R ** -0.5
            self.dt_proj.weight.uniform_(-std, std)
            dt = torch.exp(torch.rand(E) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def _ssm_inputs(self, x_E: torch.Tensor):
        dbc = self.x_proj(x_E)
        dt, Bm, Cm = dbc.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt).float())
        return dt, Bm, Cm

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        T = x_BTD.shape[1]
        x, z = self.in_proj(x_BTD).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :T].transpose(1, 2))
        dt, Bm, Cm = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        (y, _), name = dispatch.run("selective_scan", IMPLS, x.device, x.dtype, x, dt, A, Bm, Cm)
        if not torch.compiler.is_compiling():
            self.backend = name
        y = y + x.float() * self.D.float()
        return self.out_proj((y * F.silu(z.float())).to(x.dtype))

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        return {"conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
                "h": torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=torch.float32)}

    def step(self, x_BD: torch.Tensor, state: dict, ctx: Ctx | None = None):
        x, z = self.in_proj(x_BD).chunk(2, dim=-1)
        window = torch.cat([state["conv"].to(x.dtype), x[:, :, None]], dim=-1)      # [B, E, kc]
        x = F.silu((window * self.conv1d.weight[:, 0, :]).sum(-1) + self.conv1d.bias)
        dt, Bm, Cm = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        h = (torch.exp(dt[:, :, None] * A) * state["h"]
             + (dt * x.float())[:, :, None] * Bm.float()[:, None, :])
        y = (h * Cm.float()[:, None, :]).sum(-1) + x.float() * self.D.float()
        out = self.out_proj((y * F.silu(z.float())).to(x.dtype))
        return out, {"conv": window[:, :, 1:], "h": h}
