"""Token-choice top-k mixture of SwiGLU experts with optional always-on shared experts.

Design choices:
- Routing: softmax over experts of a bias-free linear router (computed in fp32). Each token picks
  its top_k experts; the gates are the chosen probabilities, renormalised over the chosen experts
  when top_k > 1 (Mixtral / DeepSeek) and left as the probability when top_k = 1 (Switch), so a
  top-1 router still gets gradient through its gate.
- No capacity factor and no dropped tokens: a token's output depends on that token alone, which
  keeps the layer causal and makes decoding (`step`) equal to the parallel form exactly.
- Balancing:
  * `aux_loss`: Switch/GShard load-balancing loss  E * sum_e f_e * P_e  (f_e = fraction of
    routed slots that went to e, P_e = mean router probability of e), times aux_loss_weight,
    appended to `ctx.aux_losses`.
  * `bias` (DeepSeek-V3, auxiliary-loss-free): a buffer `router_bias` (not a parameter) is added
    to the scores for *selection only*; the gates still come from the unbiased probabilities.
    Training forwards count expert loads into the buffer `load`; after each optimizer step the
    trainer calls `HybridLM.update_router_biases()`, which moves each bias by `rate` against the
    sign of its load error and clears the counts.
- Dispatch never loops over tokens: the (token, expert) pairs are sorted by expert, the tokens
  gathered once, and the experts run as grouped matmuls (`torch.nn.functional.grouped_mm`,
  bf16 only) or, where that is unavailable (or raises on this device: logged once), as a loop
  over experts on contiguous slices; results are scattered back with `index_add_`. `dense_reference` runs every expert on every token and
  weights them; the tests check both dispatch paths against it.
- Shared experts are summed SwiGLUs, which equals one SwiGLU whose hidden layer is the
  concatenation: stored as one `SwiGLUCore` of hidden shared_experts * hidden.
Weights: router [experts, d]; experts w1, w3 [E, hidden, d], w2 [E, d, hidden] (nn.Linear layout).
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from search_space.primitives.swiglu import hidden_size

from . import backends
from .swiglu import SwiGLUCore

log = logging.getLogger(__name__)
_GROUPED_MM_FAILED: set[tuple] = set()  # (device type, dtype) where grouped_mm raised


def _linear_init(w: torch.Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(w, -bound, bound)


class MoE(nn.Module):
    backend = "expert-loop"

    def __init__(self, spec, d_model: int):
        super().__init__()
        self.spec = spec
        E, h = spec.experts, hidden_size(spec.expand, d_model)
        self.experts, self.top_k, self.hidden, self.d_model = E, spec.top_k, h, d_model
        self.router = nn.Linear(d_model, E, bias=False)
        self.w1 = nn.Parameter(torch.empty(E, h, d_model))
        self.w3 = nn.Parameter(torch.empty(E, h, d_model))
        self.w2 = nn.Parameter(torch.empty(E, d_model, h))
        _linear_init(self.w1, d_model)
        _linear_init(self.w3, d_model)
        _linear_init(self.w2, h)
        self.shared = SwiGLUCore(d_model, spec.shared_experts * h) if spec.shared_experts else None
        if spec.balancing == "bias":
            self.register_buffer("router_bias", torch.zeros(E))
            self.register_buffer("load", torch.zeros(E), persistent=False)
        self.dispatch = None  # None: let backends choose; "grouped-mm" / "expert-loop" to force one

    # ----------------------------------------------------------------------------- routing
    def route(self, x_ND: torch.Tensor):
        """-> (probs [N, E] fp32, chosen experts [N, k], gates [N, k] fp32)."""
        probs = torch.softmax(self.router(x_ND).float(), dim=-1)
        scores = probs + self.router_bias if self.spec.balancing == "bias" else probs
        idx = scores.topk(self.top_k, dim=-1).indices
        gates = probs.gather(-1, idx)
        if self.top_k > 1:
            gates = gates / gates.sum(-1, keepdim=True)
        return probs, idx, gates

    def forward(self, x_BTD: torch.Tensor, ctx=None) -> torch.Tensor:
        B, T, D = x_BTD.shape
        x = x_BTD.reshape(B * T, D)
        probs, idx, gates = self.route(x)
        flat = idx.reshape(-1)
        # not bincount: its output shape depends on the data, which breaks torch.compile graphs
        counts = torch.zeros(self.experts, dtype=torch.long, device=x.device).index_add_(0, flat, torch.ones_like(flat))
        if self.spec.balancing == "aux_loss" and self.spec.aux_loss_weight > 0 and ctx is not None:
            f = counts.to(probs.dtype) / idx.numel()
            ctx.aux_losses.append(self.spec.aux_loss_weight * self.experts * (f * probs.mean(0)).sum())
        if self.spec.balancing == "bias" and self.training:
            with torch.no_grad():
                self.load.add_(counts.to(self.load.dtype))
        y = self._dispatch(x, idx, gates, counts)
        if self.shared is not None:
            y = y + self.shared(x)
        return y.view(B, T, D)

    def _dispatch(self, x_ND, idx_NK, gates_NK, counts_E):
        dtype = torch.get_autocast_dtype(x_ND.device.type) if torch.is_autocast_enabled(x_ND.device.type) else x_ND.dtype
        how = self.dispatch or backends.choose("moe_dispatch", x_ND.device, dtype, shape=(self.d_model, self.hidden))
        self.backend = how  # under torch.compile too: Dynamo replays attribute writes
        flat = idx_NK.reshape(-1)
        order = flat.argsort(stable=True)
        token = order // self.top_k              # which token each sorted slot came from
        xs = x_ND.index_select(0, token).to(dtype)
        w1, w3, w2 = self.w1.to(dtype), self.w3.to(dtype), self.w2.to(dtype)
        out = None
        if how == "grouped-mm" and (x_ND.device.type, dtype) not in _GROUPED_MM_FAILED:
            try:
                offs = counts_E.cumsum(0).to(torch.int32)
                a = F.silu(F.grouped_mm(xs, w1.transpose(-2, -1), offs=offs)) * F.grouped_mm(xs, w3.transpose(-2, -1), offs=offs)
                out = F.grouped_mm(a, w2.transpose(-2, -1), offs=offs)
            except RuntimeError as exc:  # a kernel this device/build lacks: fall back, say so once
                _GROUPED_MM_FAILED.add((x_ND.device.type, dtype))
                log.warning("grouped_mm failed on %s %s (%s); MoE layers use the expert loop",
                            x_ND.device, dtype, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if out is None:
            self.backend = "expert-loop"
            parts = []
            for e, xe in enumerate(torch.split(xs, counts_E.tolist())):
                parts.append(F.linear(F.silu(F.linear(xe, w1[e])) * F.linear(xe, w3[e]), w2[e]))
            out = torch.cat(parts)
        out = out * gates_NK.reshape(-1)[order, None].to(out.dtype)
        y = torch.zeros_like(x_ND, dtype=out.dtype)
        return y.index_add_(0, token, out)

    def dense_reference(self, x_BTD: torch.Tensor) -> torch.Tensor:
        """Every expert on every token, weighted by the (sparse) gates: the plain-PyTorch meaning
        of the layer, against which the sorted dispatch is tested."""
        B, T, D = x_BTD.shape
        x = x_BTD.reshape(B * T, D)
        _, idx, gates = self.route(x)
        weight_NE = torch.zeros(x.shape[0], self.experts, dtype=gates.dtype, device=x.device).scatter(-1, idx, gates)
        h = F.silu(torch.einsum("nd,ehd->neh", x, self.w1)) * torch.einsum("nd,ehd->neh", x, self.w3)
        y_NED = torch.einsum("neh,edh->ned", h, self.w2)
        y = (weight_NE[..., None].to(y_NED.dtype) * y_NED).sum(1)
        if self.shared is not None:
            y = y + self.shared(x)
        return y.view(B, T, D)

    @torch.no_grad()
    def update_bias(self, rate: float = 1e-3) -> None:
        """DeepSeek-V3's update: bias_e += rate * sign(mean load - load_e); clears the counts."""
        if self.spec.balancing != "bias":
            return
        # no test of the load on the host (a sync, which a CUDA graph cannot hold): with no load
        # recorded every term is sign(0) = 0 and the bias stays
        self.router_bias.add_(rate * torch.sign(self.load.mean() - self.load))
        self.load.zero_()
