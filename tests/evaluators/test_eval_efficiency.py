"""Analytic cache bytes (search_space) agree with the measured decode state within 10%.

The measured bytes are the allocated storage of the state tensors. Attention's KV cache grows
in blocks of `proxy_models.attention._CACHE_BLOCK` positions (256), so the comparisons at 64 and
96 tokens set the block to 16 (a real setting of the real module, not a stand-in); one test
checks the default block at a block boundary."""
from pathlib import Path

import pytest
import torch

import proxy_models.attention as attention_module
from evaluators.efficiency import measure, state_bytes
from proxy_models import build_model
from search_space import Architecture

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "architectures").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_analytic_cache_matches_measured_state(path, monkeypatch):
    monkeypatch.setattr(attention_module, "_CACHE_BLOCK", 16)
    arch = Architecture.from_yaml(path)
    torch.manual_seed(0)
    model = build_model(arch, 64).eval()
    measured = {}
    with torch.no_grad():
        state = model.init_state(1)
        tok = torch.randint(0, 64, (96,))
        for i in range(96):
            _, state = model.step(tok[i:i + 1], state)
            if i + 1 in (64, 96):
                measured[i + 1] = state_bytes(state)
    el = next(model.parameters()).element_size()
    analytic = {c: arch.costs(64, context=c, dtype_bytes=el).cache_bytes for c in (64, 96)}
    assert measured[96] == pytest.approx(analytic[96], rel=0.10)
    # what decoding adds per token (a KV cache grows, a recurrent state does not)
    growth_m, growth_a = measured[96] - measured[64], analytic[96] - analytic[64]
    assert growth_m == pytest.approx(growth_a, rel=0.10, abs=0.02 * analytic[96])


def test_default_cache_block_at_a_block_boundary():
    arch = Architecture.from_dict({"d_model": 32, "blocks": [{"mixer": {"type": "attention", "heads": 2}}] * 2})
    block = attention_module._CACHE_BLOCK
    model = build_model(arch, 64).eval()
    with torch.no_grad():
        state = model.init_state(1)
        for t in range(block):
            _, state = model.step(torch.tensor([t % 64]), state)
    assert state_bytes(state) == pytest.approx(arch.costs(64, context=block, dtype_bytes=4).cache_bytes, rel=0.10)


def test_measure_reports_throughput_and_state(monkeypatch):
    monkeypatch.setattr(attention_module, "_CACHE_BLOCK", 4)
    arch = Architecture.from_dict({"d_model": 32, "blocks": [{"mixer": {"type": "attention", "heads": 2}}] * 2})
    model = build_model(arch, 64)
    m = measure(model, 64, torch.device("cpu"), prefill_context=32, prefill_batch=2, decode_batch=2,
                decode_steps=8, reps=1)
    assert m["prefill_tokens_per_s"] > 0 and m["decode_tokens_per_s"] > 0
    # 2 layers x (K and V) x 32 dims x 8 tokens x fp32, per sequence
    assert m["decode_state_bytes"] == 2 * 2 * 32 * 8 * 4
    assert m["decode_state_growth_bytes"] == 2 * 2 * 32 * 4 * 4
