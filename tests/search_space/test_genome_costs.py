"""Analytic counts on small hand-computed cases. The arithmetic is written out so a reader can
check it against each spec's docstring (d = d_model)."""
from __future__ import annotations

import pytest

from search_space import Architecture


def arch(blocks, d=16, **kw) -> Architecture:
    return Architecture.from_dict({"d_model": d, "blocks": blocks, **kw})


def mixer_only(m, d=16):
    """Params of one block with no channel mixer, minus its pre-norm (d)."""
    return arch([{"mixer": m, "channel": {"type": "none"}}], d=d).costs(0).params_total - d - d  # block norm, final norm


def test_attention_gqa_d16():
    # heads 4, kv_heads 2, head_dim 4: Wq 16*16 + Wk 16*(2*4) + Wv 16*(2*4) + Wo 16*16
    assert mixer_only({"type": "attention", "heads": 4, "kv_heads": 2}) == 256 + 128 + 128 + 256
    # plain MHA: four 16x16 matrices
    assert mixer_only({"type": "attention", "heads": 4}) == 4 * 256


def test_mamba1_d8():
    # di = 2*8 = 16, N = 4, dt_rank = ceil(8/16) = 1, d_conv = 4
    # in_proj 8*32 + conv 16*4 + conv bias 16 + x_proj 16*(1+2*4) + dt_proj 1*16 + dt bias 16
    # + A_log 16*4 + D 16 + out_proj 16*8
    expected = 256 + 64 + 16 + 144 + 16 + 16 + 64 + 16 + 128
    assert expected == 720
    assert mixer_only({"type": "mamba1", "d_state": 4, "expand": 2, "d_conv": 4}, d=8) == expected


def test_mamba2_d16():
    # di = 32, N = 8, head_dim 8 -> H = 4; in_proj 16*(2*32 + 2*8 + 4) = 16*84
    # conv over di+2N = 48 channels: 48*4 + bias 48; dt_bias, A_log, D: 3*4; gated norm 32; out 32*16
    expected = 1344 + 192 + 48 + 12 + 32 + 512
    assert mixer_only({"type": "mamba2", "d_state": 8, "head_dim": 8, "expand": 2, "d_conv": 4}) == expected


def test_retention_d16():
    # Wq, Wk 16*16 each; Wv, Wg 16*32 each (v_expand 2); Wo 32*16
    assert mixer_only({"type": "retention", "heads": 2, "v_expand": 2}) == 256 + 256 + 512 + 512 + 512


RWKV = {"type": "rwkv7", "head_dim": 8, "decay_lora": 4, "a_lora": 4, "v_lora": 2, "gate_lora": 4}
# receptance/key/value/output 4*16*16, six token-shift mixes 6*16, decay w0 16 + 16*4 + 4*16,
# a w0 16 + 16*4 + 4*16, gate 16*4 + 4*16, k_k + k_a + r_k 3*16, ln_x weight and bias 2*16
RWKV_FIRST = 1024 + 96 + 144 + 144 + 128 + 48 + 32
RWKV_VALUE_RESIDUAL = 16 + 16 * 2 + 2 * 16  # v0, v1, v2: only layers after the first RWKV-7 layer


def test_rwkv7_with_and_without_value_residual():
    assert mixer_only(RWKV) == RWKV_FIRST == 1616
    two = arch([{"mixer": RWKV, "channel": {"type": "none"}}] * 2).costs(0).params_total
    assert two == 2 * (16 + RWKV_FIRST) + RWKV_VALUE_RESIDUAL + 16
    sites = arch([{"mixer": RWKV, "channel": {"type": "none"}}] * 2).layout()
    assert [s.mixers[0].value_residual for s in sites] == [False, True]
    assert sites[0].mixers[0].spec.params(16, True) - sites[0].mixers[0].spec.params(16) == 80


def test_swiglu_and_moe_active_vs_total():
    a = arch([{"mixer": {"type": "mamba1", "d_state": 4}, "channel": {"type": "swiglu", "expand": 2.5}}])
    ch = a.blocks[0].channel
    assert ch.params(16) == 3 * 16 * 40  # hidden = round(2.5*16) = 40
    moe = arch([{"mixer": {"type": "mamba1"}, "channel": {"type": "moe", "experts": 4, "top_k": 2, "expand": 1,
                                                           "shared_experts": 1}}], d=8).blocks[0].channel
    expert = 3 * 8 * 8  # SwiGLU of hidden 8
    router = 8 * 4
    assert moe.params(8) == router + (4 + 1) * expert == 992
    assert moe.active_params(8) == router + (2 + 1) * expert == 608
    assert moe.flops_per_token(8) == 2 * 608


def test_moe_block_total_and_active_in_architecture():
    blocks = [{"mixer": {"type": "attention", "heads": 2}, "channel": {"type": "moe", "experts": 4, "top_k": 1, "expand": 1}}]
    c = arch(blocks, d=8).costs(0)
    attn, router, expert, norms = 4 * 64, 8 * 4, 3 * 64, 8 + 8 + 8  # two block norms + final norm
    assert c.params_total == norms + attn + router + 4 * expert
    assert c.params_active == norms + attn + router + 1 * expert


@pytest.mark.parametrize("combine,n,expected", [
    ("norm_mean", 2, 2 * 16), ("gated_sum", 2, 2 * 16), ("concat_proj", 2, 2 * 16 * 16), ("concat_proj", 3, 3 * 16 * 16),
])
def test_combiners(combine, n, expected):
    branch = {"type": "retention", "heads": 2, "v_expand": 1}  # 5 * 16*16 each
    par = {"parallel": [branch] * n, "combine": combine}
    assert mixer_only(par) == n * 5 * 256 + expected


def test_sharing_counted_once_but_cached_per_use():
    blk = {"mixer": {"type": "attention", "heads": 4}, "channel": {"type": "swiglu", "expand": 1}}
    per_block = 16 + 4 * 256 + 16 + 3 * 256
    one = arch([blk]).costs(0, context=8)
    shared = arch([dict(blk, share="a"), dict(blk, share="a")]).costs(0, context=8)
    repeated_shared = arch([dict(blk, share="a", repeat=3)]).costs(0, context=8)
    unshared = arch([dict(blk, repeat=2)]).costs(0, context=8)
    assert one.params_total == per_block + 16
    assert shared.params_total == per_block + 16
    assert repeated_shared.params_total == per_block + 16
    assert unshared.params_total == 2 * per_block + 16
    kv = 2 * 16 * 8 * 2  # K and V of 16 each, 8 positions, bf16
    assert (one.cache_bytes, shared.cache_bytes, repeated_shared.cache_bytes) == (kv, 2 * kv, 3 * kv)
    assert shared.flops_per_token == unshared.flops_per_token


def test_recursion_router_body_once_cache_per_depth():
    body = [{"mixer": {"type": "attention", "heads": 4}, "channel": {"type": "none"}}]
    for router, extra in (("expert_choice", {"capacity": [1.0, 0.5, 0.25]}), ("token_choice", {})):
        a = arch([{"recursion": {"max_depth": 3, "router": router, "body": body, **extra}}])
        c = a.costs(0, context=4)
        assert c.params_total == 3 * 16 + (16 + 4 * 256) + 16  # router d*max_depth, body once, final norm
        assert c.cache_bytes == 3 * (2 * 16 * 4) * 2  # one K/V cache per depth
    ec = arch([{"recursion": {"max_depth": 3, "capacity": [1.0, 0.5, 0.25], "body": body}}])
    assert ec.blocks[0].recursion.expected_depth_fractions() == [1.0, 0.5, 0.25]
    tc = arch([{"recursion": {"max_depth": 3, "router": "token_choice", "body": body}}])
    assert tc.blocks[0].recursion.expected_depth_fractions() == [1.0, 2 / 3, 1 / 3]


def test_tied_vs_untied_embeddings():
    blocks = [{"mixer": {"type": "retention", "heads": 2, "v_expand": 1}, "channel": {"type": "none"}}]
    tied = arch(blocks).costs(vocab_size=10)
    untied = arch(blocks, tie_embeddings=False).costs(vocab_size=10)
    assert tied.params_embedding == 10 * 16 and untied.params_embedding == 2 * 10 * 16
    assert untied.params_total - tied.params_total == 160
    assert tied.params_non_embedding == 16 + 5 * 256 + 16


def test_layernorm_has_bias():
    blocks = [{"mixer": {"type": "retention", "heads": 2, "v_expand": 1}, "channel": {"type": "none"}}]
    assert arch(blocks, norm="layernorm").costs(0).params_total - arch(blocks).costs(0).params_total == 2 * 16


def test_cache_bytes_window_batch_and_recurrent_state():
    attn = [{"mixer": {"type": "attention", "heads": 4, "kv_heads": 2, "window": 8}, "channel": {"type": "none"}}]
    a = arch(attn)
    per_pos = 2 * 2 * 4  # K and V, 2 kv heads of head_dim 4
    assert a.costs(0, context=4).cache_bytes == per_pos * 4 * 2
    assert a.costs(0, context=8).cache_bytes == per_pos * 8 * 2
    assert a.costs(0, context=100_000).cache_bytes == per_pos * 8 * 2  # capped at the window
    assert a.costs(0, context=100, batch=3, dtype_bytes=4).cache_bytes == per_pos * 8 * 3 * 4
    m2 = arch([{"mixer": {"type": "mamba2", "d_state": 8, "head_dim": 8, "expand": 2, "d_conv": 4},
                "channel": {"type": "none"}}])
    state = 4 * 8 * 8 + (32 + 16) * 3  # h [H, head_dim, N] + conv window [(di+2N), d_conv-1]
    assert m2.costs(0, context=10).cache_bytes == m2.costs(0, context=10**6).cache_bytes == state * 2


def test_attention_flops_by_hand():
    a = arch([{"mixer": {"type": "attention", "heads": 4}, "channel": {"type": "none"}}])
    # 2 FLOPs per weight (4*256) + QK^T and AV: 4 * heads * head_dim * mean keys seen ((4+1)/2)
    assert a.costs(0, context=4).flops_per_token == 2 * 1024 + 4 * 4 * 4 * 2.5
    # with a vocabulary the LM head adds 2*vocab*d
    assert a.costs(10, context=4).flops_per_token == 2 * 1024 + 160 + 2 * 10 * 16
