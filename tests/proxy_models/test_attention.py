"""Attention: the SDPA path against the written-out softmax attention, and the bounded cache."""
from __future__ import annotations

import pytest
import torch

from proxy_models.attention import Attention
from search_space.primitives.attention import AttentionSpec

VARIANTS = {"mha": {}, "gqa": {"kv_heads": 2}, "mqa": {"kv_heads": 1}, "window": {"window": 5},
            "gqa-window": {"kv_heads": 2, "window": 3}, "norope": {"rope": False}, "window1": {"window": 1}}


def layer(**kw):
    torch.manual_seed(0)
    return Attention(AttentionSpec(type="attention", heads=4, **kw), 32)


@pytest.mark.parametrize("kw", VARIANTS.values(), ids=VARIANTS.keys())
def test_sdpa_matches_reference(kw):
    m = layer(**kw)
    x = torch.randn(2, 19, 32)
    torch.testing.assert_close(m(x), m.reference(x), rtol=1e-5, atol=1e-5)


def test_window_cache_is_bounded():
    m = layer(window=4, kv_heads=2)
    state = m.init_state(2, dtype=torch.float32)
    for t in range(11):
        _, state = m.step(torch.randn(2, 32), state)
    assert state["k"].shape == (2, 2, 4, 8) and state["pos"] == 11


def test_full_cache_grows_in_blocks():
    from proxy_models.attention import _CACHE_BLOCK
    m = layer()
    state = m.init_state(1, dtype=torch.float32)
    with torch.no_grad():
        for t in range(5):
            _, state = m.step(torch.randn(1, 32), state)
        assert state["pos"] == 5 and state["k"].shape[2] == _CACHE_BLOCK
        # a cache filled to capacity (as a benchmark builds one) grows by one block, not doubles
        full = {"k": torch.randn(1, 4, 1000, 8), "v": torch.randn(1, 4, 1000, 8), "pos": 1000}
        _, full = m.step(torch.randn(1, 32), full)
    assert full["k"].shape[2] == 1000 + _CACHE_BLOCK


@pytest.mark.parametrize("kw", [{}, {"window": 3, "kv_heads": 2}], ids=["full", "window"])
def test_step_with_grad_is_functional_and_equal(kw):
    m = layer(**kw)
    x = torch.randn(2, 9, 32)
    s_fn, s_ip = m.init_state(2, dtype=torch.float32), m.init_state(2, dtype=torch.float32)
    for t in range(9):
        before = s_fn["k"].clone()
        o_fn, new = m.step(x[:, t], s_fn)
        assert torch.equal(s_fn["k"], before)  # the old state was left untouched
        s_fn = new
        with torch.no_grad():
            o_ip, s_ip = m.step(x[:, t], s_ip)
        torch.testing.assert_close(o_fn.detach(), o_ip)
    o_fn.sum().backward()
    assert m.wq.weight.grad is not None


def test_rope_scores_depend_on_relative_position_only():
    m = layer(window=None)
    from proxy_models.attention import apply_rope, rope_angles
    q = torch.randn(1, 1, 1, 8)
    k = torch.randn(1, 1, 1, 8)

    def score(i, j):
        cq, sq = rope_angles(torch.tensor([i]), 8, 10000.0)
        ck, sk = rope_angles(torch.tensor([j]), 8, 10000.0)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    torch.testing.assert_close(score(7, 3), score(104, 100), rtol=1e-4, atol=1e-5)
    assert m.backend in ("sdpa-cpu", "sdpa-flash", "sdpa-efficient")


@pytest.mark.parametrize("kw", [{"kv_heads": 2}, {"kv_heads": 1, "window": 4}], ids=["gqa", "mqa-window"])
def test_repeated_kv_path_matches_reference(kw, monkeypatch):
    # the path a CUDA memory-efficient kernel takes (K/V repeated per group instead of enable_gqa)
    from proxy_models import backends
    monkeypatch.setattr(backends, "choose", lambda *a, **k: "sdpa-efficient")
    m = layer(**kw)
    x = torch.randn(2, 13, 32)
    torch.testing.assert_close(m(x), m.reference(x), rtol=1e-5, atol=1e-5)
    assert m.backend == "sdpa-efficient"
    state = m.init_state(2, dtype=torch.float32)
    outs = []
    for t in range(13):
        o, state = m.step(x[:, t], state)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs, 1), m.reference(x), rtol=1e-4, atol=1e-4)
