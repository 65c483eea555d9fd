"""Analytic cache bytes (search_space) agree with the measured decode state within 10%."""
from pathlib import Path

import pytest
import torch

from evaluators.efficiency import measure, state_bytes
from proxy_models import build_model
from search_space import Architecture

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "architectures").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_analytic_cache_matches_measured_state(path):
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


def test_measure_reports_throughput_and_state():
    arch = Architecture.from_dict({"d_model": 32, "blocks": [{"mixer": {"type": "attention", "heads": 2}}] * 2})
    model = build_model(arch, 64)
    m = measure(model, 64, torch.device("cpu"), prefill_context=32, prefill_batch=2, decode_batch=2,
                decode_steps=8, reps=1)
    assert m["prefill_tokens_per_s"] > 0 and m["decode_tokens_per_s"] > 0
    # 2 layers x (K and V) x 32 dims x 8 tokens x fp32, per sequence
    assert m["decode_state_bytes"] == 2 * 2 * 32 * 8 * 4
    assert m["decode_state_growth_bytes"] == 2 * 2 * 32 * 4 * 4
