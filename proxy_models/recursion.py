"""Mixture-of-Recursions group (Bae et al. 2025): one shared body of blocks applied up to
`max_depth` times, a router deciding per token and per depth whether the token takes that step.

Design choices:
- Causality. MoR's expert-choice router keeps the top-k tokens of the sequence at each depth,
  which lets a token's fate depend on later tokens. We select by a per-token threshold instead,
  in training and inference alike: at depth r the scorer gives p = sigmoid(w_r . h) and the
  token continues while p > 0.5 (and it continued at every earlier depth). An auxiliary BCE loss
  pulls the scores toward the sequence's top-capacity selection (targets detached, nested across
  depths), which is MoR's "auxiliary loss" remedy for expert-choice causality.
- Token choice: Linear(d, max_depth) on the group's input gives each token a softmax over
  depths; the argmax d_i is picked up front and the token runs depths 0..d_i. A Switch-style
  balancing loss  R * sum_r f_r * P_r  (f_r: fraction of tokens assigned depth r, P_r: mean
  probability) spreads tokens over depths.
- The update is dense and masked:  h = h + mask * g * (body(h) - h),  g the router weight
  (p for expert choice, the chosen depth's probability for token choice), so the router gets
  gradients from the language-model loss as in MoR.
- The proxy does not save compute: the body runs on every token at every depth and the mask
  decides which results are kept. Throughput measured on the proxy therefore does not reflect
  MoR's savings; the analytic FLOPs (`search_space.costs`) weight each depth by the expected
  fraction of tokens that run it.
- Decoding: every depth keeps its own state for every body block (the body's weights are shared,
  its caches are not), so `step` reproduces `forward` token by token.
- Parameters: the expert-choice scorers (max_depth vectors of d) are stored as the rows of one
  Linear(d, max_depth); row r scores depth r. Together: max_depth * d, as
  `RecursionGroup.router_params` counts.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Ctx


class Recursion(nn.Module):
    def __init__(self, group, body: list[nn.Module], d_model: int):
        super().__init__()
        self.group = group
        self.depth = group.max_depth
        self.body = nn.ModuleList(body)
        self.router = nn.Linear(d_model, group.max_depth, bias=False)

    def _body(self, h: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        for blk in self.body:
            h = blk(h, ctx)
        return h

    def _update(self, h, out, keep, g):
        w = (keep.to(g.dtype) * g).unsqueeze(-1).to(h.dtype)
        return h + w * (out - h)

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        h = x_BTD
        g = self.group
        if g.router == "token_choice":
            probs = torch.softmax(self.router(h).float(), dim=-1)          # [B, T, R]
            chosen = probs.argmax(-1)                                        # deepest depth run
            gate = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
            if g.aux_loss_weight > 0:
                f = F.one_hot(chosen, self.depth).float().mean((0, 1))
                ctx.aux_losses.append(g.aux_loss_weight * self.depth * (f * probs.mean((0, 1))).sum())
            for r in range(self.depth):
                h = self._update(h, self._body(h, ctx), chosen >= r, gate)
            return h
        # expert choice
        B, T, _ = h.shape
        keep = torch.ones(B, T, dtype=torch.bool, device=h.device)
        target = keep
        aux = []
        for r in range(self.depth):
            logit = F.linear(h, self.router.weight[r:r + 1]).squeeze(-1).float()  # [B, T]
            p = torch.sigmoid(logit)
            keep = keep & (p > 0.5)
            if g.aux_loss_weight > 0:
                with torch.no_grad():
                    k = min(T, max(1, math.ceil(g.capacity[r] * T)))
                    masked = logit.masked_fill(~target, float("-inf"))
                    top = masked.topk(k, dim=-1).indices
                    target = torch.zeros_like(target).scatter(-1, top, True) & target
                aux.append(F.binary_cross_entropy_with_logits(logit, target.float()))
            h = self._update(h, self._body(h, ctx), keep, p)
        if aux:
            ctx.aux_losses.append(g.aux_loss_weight * torch.stack(aux).mean())
        return h

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> list:
        return [[blk.init_state(batch, device, dtype) for blk in self.body] for _ in range(self.depth)]

    def _body_step(self, h, states, ctx):
        new = []
        for blk, s in zip(self.body, states):
            h, s = blk.step(h, s, ctx)
            new.append(s)
        return h, new

    def step(self, x_BD: torch.Tensor, state: list, ctx: Ctx):
        h = x_BD
        new_state = []
        if self.group.router == "token_choice":
            probs = torch.softmax(self.router(h).float(), dim=-1)
            chosen = probs.argmax(-1)
            gate = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
            for r in range(self.depth):
                out, s = self._body_step(h, state[r], ctx)
                h = self._update(h, out, chosen >= r, gate)
                new_state.append(s)
            return h, new_state
        keep = torch.ones(h.shape[0], dtype=torch.bool, device=h.device)
        for r in range(self.depth):
            p = torch.sigmoid(F.linear(h, self.router.weight[r:r + 1]).squeeze(-1).float())
            keep = keep & (p > 0.5)
            out, s = self._body_step(h, state[r], ctx)
            h = self._update(h, out, keep, p)
            new_state.append(s)
        return h, new_state
