"""RWKV-7 "Goose" time mixing (Peng et al. 2025; BlinkDL's `RWKV_Tmix_x070`).

    xx = shift(x) - x;  x_* = x + xx * mix_*                          (token shift, six mixes)
    r, k, v = receptance(x_r), key(x_k), value(x_v)
    w = -softplus(-(w0 + tanh(x_w w1) w2)) - 0.5;  decay = exp(-exp(w))  (in (0.545, 1))
    a = sigmoid(a0 + x_a a1 a2)                                        (in-context learning rate)
    v = v + (v_first - v) * sigmoid(v0 + x_v v1 v2)   if value_residual, else ctx.v_first = v
    g = sigmoid(x_g g1) g2
    kk = normalize(k * k_k) per head;  k = k * (1 + (a - 1) * k_a)
    S_t = S_{t-1} (diag(decay_t) - kk^T (kk * a)) + v^T k,  o = S r    (generalized delta rule)
    o = GroupNorm(o) + ((r * k * r_k).sum per head) v;   out = output(o * g)

Design choices:
- The kernel is `ops.rwkv7` with a = -kk, b = kk * a and the log-decay -exp(w) (fla's
  `chunk_rwkv7` convention); on a GPU `backends` picks "triton-scan" (the chunked PyTorch
  form with its chunk-to-chunk recurrence in two Triton kernels, `ops/rwkv7/scan_triton.py`),
  else the chunked PyTorch form; fla's `chunk_rwkv7` when fla is opted into. Our fully fused
  Triton kernels (`ops/rwkv7/triton.py`) run when forced by name ("triton"): correct, not faster.
- Initialisation follows x070 for a middle layer (ratio 0.5: the module does not know its
  depth), except that the LoRA down-projections and the output projection get small random
  values instead of zeros, so every parameter gets a gradient from the first step.
- GroupNorm eps = 64e-5 (x070's 1e-5 * 8^2). Channel mixing is not here: blocks use SwiGLU.
- The value residual needs the first RWKV-7 layer's values in `ctx.v_first`; a layer built with
  `value_residual=True` raises if it is missing. In `step`, `ctx.v_first` holds one token's.
- Decoding state: S [B, H, K, V] (fp32) and the previous token's x.
Legend: B batch, T time, D d_model, H heads, P head_dim.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Ctx, TokenMixer
from .ops import dispatch
from .ops.rwkv7 import rwkv7_chunked
from .ops.rwkv7.fla import rwkv7_fla

# r, k, v first (one batched projection), then the LoRA inputs
MIXES = ("x_r", "x_k", "x_v", "x_w", "x_a", "x_g")
_EXP_M_HALF = math.exp(-0.5)


def _triton_kernel(*args, **kwargs):
    from .ops.rwkv7.triton import rwkv7_triton  # GPU only: triton imported here
    return rwkv7_triton(*args, **kwargs)


def _triton_scan(*args, **kwargs):
    from .ops.rwkv7.scan_triton import rwkv7_triton_scan  # GPU only: triton imported here
    return rwkv7_triton_scan(*args, **kwargs)


def _lora_pair(d: int, rank: int, scale: float = 0.1) -> tuple[nn.Parameter, nn.Parameter]:
    down = torch.empty(d, rank).uniform_(-0.01, 0.01)
    up = torch.empty(rank, d)
    nn.init.orthogonal_(up, gain=scale)
    return nn.Parameter(down), nn.Parameter(up)


class RWKV7(TokenMixer):
    backend = dispatch.TORCH

    def __init__(self, spec, d_model: int, value_residual: bool = False):
        super().__init__(spec, d_model, value_residual)
        d, P = d_model, spec.head_dim
        H = d // P
        self.heads, self.head_dim = H, P
        ratio_0_to_1, ratio_1_to_0 = 0.5, 0.5
        ddd = torch.arange(d, dtype=torch.float32) / d
        for name, power in zip(MIXES, (0.2, 0.7, 0.7, 0.9, 0.9, 0.2)):  # x070: r .2, w .9, k .7, v .7, a .9, g .2
            self.register_parameter(name, nn.Parameter(1.0 - ddd.pow(power * ratio_1_to_0)))
        n = torch.arange(d, dtype=torch.float32)
        decay_speed = -7 + 5 * (n / max(d - 1, 1)) ** (0.85 + 1.0 * ratio_0_to_1 ** 0.5)
        self.w0 = nn.Parameter(decay_speed + 0.5)
        self.w1, self.w2 = _lora_pair(d, spec.decay_lora)
        self.a0 = nn.Parameter(torch.zeros(d))
        self.a1, self.a2 = _lora_pair(d, spec.a_lora)
        if value_residual:
            self.v0 = nn.Parameter(torch.ones(d))
            self.v1, self.v2 = _lora_pair(d, spec.v_lora)
        self.g1, self.g2 = _lora_pair(d, spec.gate_lora)
        self.k_k = nn.Parameter(torch.full((d,), 0.85))
        self.k_a = nn.Parameter(torch.ones(d))
        self.r_k = nn.Parameter(torch.full((H, P), -0.04))
        self.receptance = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)
        with torch.no_grad():
            for lin, s in ((self.receptance, 0.5), (self.key, 0.05), (self.value, 0.5), (self.output, 0.5)):
                lin.weight.uniform_(-s / d ** 0.5, s / d ** 0.5)
        self.ln_x = nn.GroupNorm(H, d, eps=64e-5)
        self._impls = {dispatch.TORCH: functools.partial(rwkv7_chunked, chunk=spec.chunk),
                       "triton": _triton_kernel,
                       "triton-scan": functools.partial(_triton_scan, chunk=spec.chunk),
                       "fla-chunk": functools.partial(rwkv7_fla, chunk=spec.chunk)}

    def _project(self, x, xx, ctx):
        """x, xx: [..., D] (xx = previous x - x). Returns r, log-decay, k, v, kk, a, g.

        Written for few kernel launches (a proxy layer on a GPU is launch-bound): the six token
        shifts are one addcmul over the stacked mixes, and r, k, v are one batched matmul; the
        arithmetic is the reference's, term by term."""
        mix = torch.stack([getattr(self, m) for m in MIXES]).to(x.dtype)        # [6, D]
        xs = torch.addcmul(x.unsqueeze(-2), xx.unsqueeze(-2), mix)              # [..., 6, D]
        lead = xs.shape[:-2]
        w_rkv = torch.stack([self.receptance.weight, self.key.weight, self.value.weight])  # [3, D, D]
        x_rkv = xs[..., :3, :].reshape(-1, 3, self.d_model).transpose(0, 1)    # [3, N, D]
        r, k, v = (torch.bmm(x_rkv, w_rkv.transpose(1, 2)).view(3, *lead, self.d_model)).unbind(0)
        xw, xa, xg = xs[..., 3:, :].unbind(-2)
        # The low-rank projections run in fp32 even under autocast: they are tiny (rank 32-128), and
        # in bf16 each would cast its input and both weights (launches, not FLOPs, bound this layer)
        with torch.autocast(device_type=x.device.type, enabled=False):
            # log-decay -exp(-softplus(-z) - 0.5) = -exp(-0.5) * sigmoid(z), z = w0 + tanh(x_w w1) w2:
            # the same number as x070's form in two ops instead of six
            logw = torch.sigmoid(F.linear(torch.tanh(xw @ self.w1), self.w2.t(), self.w0)) * -_EXP_M_HALF
            a = torch.sigmoid(F.linear(xa @ self.a1, self.a2.t(), self.a0))
            g = torch.sigmoid(xg @ self.g1) @ self.g2
            if self.value_residual:
                if ctx is None or ctx.v_first is None:
                    raise ValueError("RWKV7 with value_residual=True needs ctx.v_first from an earlier "
                                     "RWKV-7 layer (the first RWKV-7 layer sets it)")
                mix_v = torch.sigmoid(F.linear(xs[..., 2, :] @ self.v1, self.v2.t(), self.v0))
        if self.value_residual:
            v = torch.lerp(v, ctx.v_first.to(v.dtype), mix_v.to(v.dtype))
        elif ctx is not None:
            ctx.v_first = v
        shp = (*k.shape[:-1], self.heads, self.head_dim)
        # normalize(k * k_k) per head, as rms_norm / sqrt(P): one fused op on a GPU
        kk = F.rms_norm((k * self.k_k).view(shp).float(), (self.head_dim,), eps=1e-12) * self.head_dim ** -0.5
        k = k * torch.addcmul(1 - self.k_a, a, self.k_a)                       # k * (1 + (a - 1) k_a)
        return r, logw, k, v, kk, a, g

    def _finish(self, o, r, k, v, g):
        """o: [..., H, P] kernel output -> [..., D]."""
        shp = o.shape
        D = shp[-2] * shp[-1]
        o = self.ln_x(o.reshape(-1, D)).view(*shp[:-2], D)
        hv = (*shp[:-2], self.heads, self.head_dim)
        bonus = (r.view(hv) * k.view(hv) * self.r_k).sum(-1, keepdim=True) * v.view(hv)
        return self.output((o + bonus.reshape(o.shape).to(o.dtype)) * g)

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx | None = None) -> torch.Tensor:
        Bsz, T, D = x_BTD.shape
        xx = F.pad(x_BTD, (0, 0, 1, -1)) - x_BTD
        r, logw, k, v, kk, a, g = self._project(x_BTD, xx, ctx)
        hs = (Bsz, T, self.heads, self.head_dim)
        kk_a = kk * a.float().view(hs)
        (o, _), name = dispatch.run("rwkv7", self._impls, x_BTD.device, v.dtype, r.view(hs), logw.view(hs),
                                    k.view(hs), v.view(hs), -kk, kk_a, None, output_final_state=False)
        if not torch.compiler.is_compiling():
            self.backend = name
        return self._finish(o.to(v.dtype), r, k, v, g)

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        P = self.head_dim
        return {"S": torch.zeros(batch, self.heads, P, P, device=device, dtype=torch.float32),
                "x_prev": torch.zeros(batch, self.d_model, device=device, dtype=dtype)}

    def step(self, x_BD: torch.Tensor, state: dict, ctx: Ctx | None = None):
        Bsz = x_BD.shape[0]
        xx = state["x_prev"].to(x_BD.dtype) - x_BD
        r, logw, k, v, kk, a, g = self._project(x_BD, xx, ctx)
        hs = (Bsz, self.heads, self.head_dim)
        rf, kf, vf, wf = r.view(hs).float(), k.view(hs).float(), v.view(hs).float(), logw.view(hs)
        b = kk * a.float().view(hs)
        S = state["S"]                                                         # [B, H, K, V]
        sa = torch.einsum("bhk,bhkv->bhv", -kk, S)                             # a^T S
        S = wf.exp()[..., None] * S + b[..., None] * sa[:, :, None, :] + kf[..., None] * vf[:, :, None, :]
        o = torch.einsum("bhkv,bhk->bhv", S, rf)
        return self._finish(o.to(v.dtype), r, k, v, g), {"S": S, "x_prev": x_BD}
