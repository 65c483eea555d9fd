"""The architectures the proxy-model suite is generated from.

Every registered token mixer, channel mixer and combiner gets cases from the registries (a new
primitive is picked up with its spec defaults; `SMALL` only shrinks known ones to keep the suite
fast on two busy cores). Sizes: d_model 32, T = 20 (longer than the chunks and the window, and
not a multiple of them), batch 2."""
from __future__ import annotations

import pytest

from search_space import Architecture
from search_space.registry import CHANNEL_MIXERS, COMBINERS, ROUTERS, TOKEN_MIXERS

D = 32
T = 20
B = 2
VOCAB = 37

# per-primitive overrides that keep models tiny (unknown primitives run with their defaults)
SMALL = {
    "attention": {"heads": 4},
    "mamba1": {"d_state": 8},
    "mamba2": {"d_state": 16, "head_dim": 16, "chunk": 8},
    "rwkv7": {"head_dim": 8, "decay_lora": 8, "a_lora": 8, "v_lora": 8, "gate_lora": 8, "chunk": 4},
    "retention": {"heads": 4, "chunk": 8},
}
# extra variants worth a case of their own
VARIANTS = {
    "attention": {"gqa": {"kv_heads": 2}, "window": {"window": 5}, "norope": {"rope": False},
                  "mqa-window": {"kv_heads": 1, "window": 7}},
    "retention": {"vexp1": {"v_expand": 1}},
    "mamba2": {"chunk1": {"chunk": 1}},
    "rwkv7": {"chunk-big": {"chunk": 64}},
}


def mixer(name: str, **kw) -> dict:
    return {"type": name, **SMALL.get(name, {}), **kw}


SWIGLU = {"type": "swiglu", "expand": 2.0}


def arch(blocks: list, name: str = "t", **kw) -> Architecture:
    return Architecture.from_dict({"name": name, "d_model": D, "blocks": blocks, **kw})


def _cases() -> list:
    out = []

    def add(case_id, blocks, **kw):
        out.append(pytest.param(case_id, arch(blocks, case_id, **kw), id=case_id))

    # token mixers: two layers of the same mixer (RWKV-7's second layer has the value residual)
    for name in TOKEN_MIXERS:
        variants = {"": {}, **VARIANTS.get(name, {})}
        for vname, kw in variants.items():
            m = mixer(name, **kw)
            add(f"mixer-{name}{'-' + vname if vname else ''}",
                [{"mixer": m, "channel": SWIGLU}, {"mixer": m, "channel": {"type": "none"}}])
    # channel mixers after an attention layer
    for name in CHANNEL_MIXERS:
        if name == "moe":
            for bal in ("aux_loss", "bias"):
                add(f"channel-moe-{bal}", [{"mixer": mixer("attention"),
                                            "channel": {"type": "moe", "experts": 4, "top_k": 2, "balancing": bal}}])
            add("channel-moe-top1-shared", [{"mixer": mixer("attention"),
                                             "channel": {"type": "moe", "experts": 3, "top_k": 1, "shared_experts": 2,
                                                         "expand": 1.0}}])
        else:
            add(f"channel-{name}", [{"mixer": mixer("attention"), "channel": {"type": name, **({"expand": 2.0} if name == "swiglu" else {})}}])
    # combiners: attention in parallel with every other mixer, and one three-way group
    names = list(TOKEN_MIXERS)
    for comb in COMBINERS:
        for other in names[1:]:
            add(f"combine-{comb}-attention+{other}",
                [{"mixer": {"parallel": [mixer("attention", window=6), mixer(other)], "combine": comb},
                  "channel": {"type": "none"}}])
        add(f"combine-{comb}-3way", [{"mixer": {"parallel": [mixer(n) for n in names[:3]], "combine": comb}}])
    # sharing and repeat (shared rwkv7 keeps its owner's value-residual flag)
    add("share-repeat", [
        {"mixer": mixer(names[1]), "share": "a", "channel": SWIGLU},
        {"mixer": mixer("attention", kv_heads=2), "repeat": 2, "channel": {"type": "none"}},
        {"mixer": mixer(names[1]), "share": "a", "channel": SWIGLU},
        {"mixer": mixer("rwkv7"), "share": "r", "repeat": 2, "channel": {"type": "none"}},
    ], tie_embeddings=False, norm="layernorm")
    # recursion with both routers; bodies mix a recurrent layer and attention
    for router in ROUTERS:
        rec = {"max_depth": 3, "router": router, "body": [
            {"mixer": mixer(names[2 % len(names)]), "channel": {"type": "none"}},
            {"mixer": mixer("attention"), "channel": {"type": "moe", "experts": 4, "top_k": 2}}]}
        if router == "expert_choice":
            rec["capacity"] = [1.0, 0.6, 0.3]
        add(f"recursion-{router}", [{"mixer": mixer("attention"), "channel": SWIGLU}, {"recursion": rec}])
        attn_only = dict(rec, body=[{"mixer": mixer("attention", window=4), "channel": {"type": "none"}, "repeat": 2},
                                    rec["body"][1]])
        add(f"recursion-{router}-attention", [{"recursion": attn_only}], norm="layernorm")
    return out


CASES = _cases()
