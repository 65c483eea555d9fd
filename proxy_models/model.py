"""`build_model(arch, vocab_size) -> HybridLM`: the genome as a causal language model.

Design choices:
- The model walks `arch.layout()` exactly as `search_space.costs` does, so the parameter count
  equals `arch.costs(vocab).params_total` by construction (a test checks it for every
  primitive, combiner, sharing, repeat and recursion): sites with the same `weight_key` reuse
  one `Block` object; RWKV-7's `value_residual` flag comes from the site; a recursion site gets a
  `Recursion` around freshly built body blocks.
- Pre-norm residual blocks:  x = x + mixer(norm1(x));  x = x + channel(norm2(x))  (the second
  sub-layer is absent when the channel mixer is `none`). A parallel group runs its mixers on the
  same norm1(x) and merges them with its combiner. Then a final norm and the head, tied to the
  embedding or not (`arch.tie_embeddings`). Logits are returned in fp32.
- Cross-layer state lives in a `Ctx` made per forward (or per decoding step): RWKV-7's first-layer
  values and the auxiliary losses. `aux_loss()` is the sum of the last forward's losses (already
  weighted by each spec's aux_loss_weight); the trainer adds it to the LM loss.
- `init_state(batch)` / `step(tokens_B, state)` decode one token at a time; states are per use
  (a shared block used twice keeps two caches) and `step` returns a new state.
- `backends()` reports, per layer path, the kernel backend each module used in its last forward;
  `proxy_models.backends.layer_backends(arch)` predicts the same without building the model.
- Initialisation: PyTorch defaults per module, embedding N(0, 0.02).
"""
from __future__ import annotations

import torch
from torch import nn

from search_space.genome import Architecture, BlockSite, RecursionSite

from .base import Ctx
from .combiners import make_combiner
from .norms import make_norm
from .recursion import Recursion
from .registry import channel_mixer_class, token_mixer_class


class Block(nn.Module):
    def __init__(self, site: BlockSite, arch: Architecture):
        super().__init__()
        d = arch.d_model
        blk = site.block
        self.norm1 = make_norm(arch.norm, d)
        self.mixers = nn.ModuleList(token_mixer_class(m.spec.type)(m.spec, d, value_residual=m.value_residual)
                                    for m in site.mixers)
        self.combiner = make_combiner(blk.mixer.combine, len(site.mixers), d) if len(site.mixers) > 1 else None
        ch = channel_mixer_class(blk.channel.type)
        self.norm2 = make_norm(arch.norm, d) if ch is not None else None
        self.channel = ch(blk.channel, d) if ch is not None else None

    def _mix(self, ys, xn):
        return ys[0] if self.combiner is None else self.combiner(ys, xn)

    def forward(self, x_BTD: torch.Tensor, ctx: Ctx) -> torch.Tensor:
        xn = self.norm1(x_BTD)
        x_BTD = x_BTD + self._mix([m(xn, ctx) for m in self.mixers], xn)
        if self.channel is not None:
            x_BTD = x_BTD + self.channel(self.norm2(x_BTD), ctx)
        return x_BTD

    def init_state(self, batch: int, device=None, dtype=None) -> list:
        return [m.init_state(batch, device, dtype) for m in self.mixers]

    def step(self, x_BD: torch.Tensor, state: list, ctx: Ctx):
        xn = self.norm1(x_BD)
        ys, new = [], []
        for m, s in zip(self.mixers, state):
            y, s = m.step(xn, s, ctx)
            ys.append(y)
            new.append(s)
        x_BD = x_BD + self._mix(ys, xn)
        if self.channel is not None:
            x_BD = x_BD + self.channel(self.norm2(x_BD)[:, None, :], ctx)[:, 0]
        return x_BD, new

    def backends(self, path: str) -> dict[str, str]:
        out = {}
        if self.combiner is None:
            out[f"{path}.mixer"] = self.mixers[0].backend
        else:
            for j, m in enumerate(self.mixers):
                out[f"{path}.mixer.parallel[{j}]"] = m.backend
        if self.channel is not None:
            out[f"{path}.channel"] = self.channel.backend
        return out


class HybridLM(nn.Module):
    def __init__(self, arch: Architecture, vocab_size: int):
        super().__init__()
        self.arch = arch
        self.vocab_size = vocab_size
        d = arch.d_model
        self.embed = nn.Embedding(vocab_size, d)
        nn.init.normal_(self.embed.weight, std=0.02)
        # `items` holds each module once; `plan` is the execution order (a shared block is
        # listed once per use, pointing at the same item).
        self.items = nn.ModuleList()
        self.plan: list[tuple[int, str]] = []
        by_key: dict[str, int] = {}
        for s in arch.layout():
            if isinstance(s, RecursionSite):
                body = [Block(b, arch) for b in s.body]
                self.items.append(Recursion(s.group, body, d))
                self.plan.append((len(self.items) - 1, s.path))
                continue
            if s.weight_key not in by_key:
                by_key[s.weight_key] = len(self.items)
                self.items.append(Block(s, arch))
            self.plan.append((by_key[s.weight_key], s.path))
        self.norm = make_norm(arch.norm, d)
        self.head = None if arch.tie_embeddings else nn.Linear(d, vocab_size, bias=False)
        self._aux: torch.Tensor | None = None

    # ----------------------------------------------------------------------------- training
    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        w = self.embed.weight if self.head is None else self.head.weight
        return nn.functional.linear(h, w).float()

    def forward(self, tokens_BT: torch.Tensor) -> torch.Tensor:
        ctx = Ctx()
        h = self.embed(tokens_BT)
        for i, _ in self.plan:
            h = self.items[i](h, ctx)
        self._aux = torch.stack([a.float() for a in ctx.aux_losses]).sum() if ctx.aux_losses else None
        return self._logits(h)

    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE / router losses of the last forward (0 when there are none)."""
        if self._aux is None:
            return torch.zeros((), device=self.embed.weight.device)
        return self._aux

    @torch.no_grad()
    def update_router_biases(self, rate: float = 1e-3) -> None:
        """DeepSeek-V3 bias balancing: call after each `optimizer.step()`. A no-op for models
        without `balancing: bias` MoE layers."""
        from .moe import MoE
        for m in self.modules():
            if isinstance(m, MoE):
                m.update_bias(rate)

    # ----------------------------------------------------------------------------- decoding
    def init_state(self, batch: int, device=None, dtype=None) -> list:
        device = device if device is not None else self.embed.weight.device
        dtype = dtype if dtype is not None else self.embed.weight.dtype
        return [self.items[i].init_state(batch, device, dtype) for i, _ in self.plan]

    def step(self, tokens_B: torch.Tensor, state: list):
        """One token per sequence -> (logits [B, V] fp32, new state)."""
        ctx = Ctx()
        h = self.embed(tokens_B)
        new = []
        for (i, _), s in zip(self.plan, state):
            h, s = self.items[i].step(h, s, ctx)
            new.append(s)
        return self._logits(h), new

    # ----------------------------------------------------------------------------- reporting
    def backends(self) -> dict[str, str]:
        """Layer path -> kernel backend its module used in the last forward."""
        out: dict[str, str] = {}
        layout = {s.path: s for s in self.arch.layout()}
        for i, path in self.plan:
            item = self.items[i]
            if isinstance(item, Recursion):
                for site, blk in zip(layout[path].body, item.body):
                    out.update(blk.backends(site.path))
            else:
                out.update(item.backends(path))
        return out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(arch: Architecture, vocab_size: int) -> HybridLM:
    return HybridLM(arch, vocab_size)
