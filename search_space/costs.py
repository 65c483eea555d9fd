"""Analytic costs of an architecture, from the layout alone (no torch).

- params_total: every trainable parameter `build_model` creates (shared weights once).
- params_active: per token, with MoE counting only router + top_k + shared experts.
- flops_per_token: forward FLOPs per token at `context` (see each spec's `flops_per_token`);
  recursion bodies are weighted by the expected fraction of tokens that run each depth.
- cache_bytes: what decoding keeps per batch after `context` tokens: attention K/V up to its
  window, fixed-size recurrent states. A recursion body keeps one cache per depth (our proxy runs
  every depth densely and masks, so it caches every depth), shared blocks one per use.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .genome import Architecture, BlockSite, RecursionSite


@dataclass(frozen=True)
class Costs:
    params_total: int
    params_active: int
    params_embedding: int
    flops_per_token: float
    cache_bytes: int
    context: int
    batch: int

    @property
    def params_non_embedding(self) -> int:
        return self.params_total - self.params_embedding

    def as_dict(self) -> dict:
        d = asdict(self)
        d["params_non_embedding"] = self.params_non_embedding
        return d


def norm_params(arch: Architecture) -> int:
    return arch.d_model * (2 if arch.norm == "layernorm" else 1)


def block_params(arch: Architecture, site: BlockSite, active: bool = False) -> int:
    d = arch.d_model
    b = site.block
    p = norm_params(arch)  # pre-norm before the token mixer
    p += sum(m.spec.params(d, m.value_residual) for m in site.mixers)
    if len(site.mixers) > 1:
        p += b.mixer.combiner_params(d)
    if b.channel.type != "none":
        p += norm_params(arch)
        p += b.channel.active_params(d) if active else b.channel.params(d)
    return p


def block_flops(arch: Architecture, site: BlockSite, context: int) -> float:
    d = arch.d_model
    b = site.block
    f = sum(m.spec.flops_per_token(d, context) for m in site.mixers)
    if len(site.mixers) > 1:
        f += 2.0 * b.mixer.combiner_params(d) if b.mixer.combine != "norm_mean" else 4.0 * d * len(site.mixers)
    f += b.channel.flops_per_token(d)
    return f


def block_cache_elems(arch: Architecture, site: BlockSite, context: int) -> int:
    return sum(m.spec.cache_elems(arch.d_model, context) for m in site.mixers)


def analytic_costs(arch: Architecture, vocab_size: int = 0, context: int = 2048, batch: int = 1,
                   dtype_bytes: int = 2) -> Costs:
    d = arch.d_model
    emb = vocab_size * d * (1 if arch.tie_embeddings else 2)
    total = active = emb + norm_params(arch)  # + final norm
    flops = 2.0 * vocab_size * d  # LM head
    cache = 0
    for s in arch.layout():
        if isinstance(s, RecursionSite):
            total += s.group.router_params(d)
            active += s.group.router_params(d)
            fr = s.group.expected_depth_fractions()
            for b in s.body:
                total += block_params(arch, b)
                active += block_params(arch, b, active=True)
                flops += sum(fr) * block_flops(arch, b, context)
                cache += s.group.max_depth * block_cache_elems(arch, b, context)
            flops += 2.0 * d * s.group.max_depth
            continue
        if s.owner:
            total += block_params(arch, s)
            active += block_params(arch, s, active=True)
        flops += block_flops(arch, s, context)
        cache += block_cache_elems(arch, s, context)
    return Costs(params_total=total, params_active=active, params_embedding=emb,
                 flops_per_token=flops, cache_bytes=cache * batch * dtype_bytes,
                 context=context, batch=batch)


def per_block_params(arch: Architecture) -> list[tuple[str, str, int]]:
    """(path, pattern code, parameters owned) for `hybrid-nas show`."""
    rows = []
    for s in arch.layout():
        if isinstance(s, RecursionSite):
            p = s.group.router_params(arch.d_model) + sum(block_params(arch, b) for b in s.body)
            rows.append((s.path, s.group.code, p))
        else:
            rows.append((s.path, s.block.code + ("" if s.block.channel.type == "none" else "+" + s.block.channel.code),
                         block_params(arch, s) if s.owner else 0))
    return rows
