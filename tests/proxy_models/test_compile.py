"""torch.compile: a hybrid (attention + MoE with grouped_mm, Mamba-2, RWKV-7, a recursion group)
traces as one graph (`fullgraph=True`: no graph breaks) and trains under bf16 autocast.

The test compiles with the `aot_eager` backend: Dynamo and AOTAutograd trace the whole forward
and backward, which is where our code could break compilation; Inductor's C++ code generation
adds minutes on a busy two-core CI machine without exercising any of our code further."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pm_cases import arch, mixer
from proxy_models import backends, build_model


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_compiled_hybrid_matches_eager_and_trains():
    torch._dynamo.reset()
    a = arch([
        {"mixer": mixer("attention"), "channel": {"type": "moe", "experts": 4, "top_k": 2}},
        {"mixer": {"parallel": [mixer("mamba2"), mixer("rwkv7")], "combine": "gated_sum"}, "channel": {"type": "none"}},
        {"recursion": {"max_depth": 2, "capacity": [1.0, 0.5],
                       "body": [{"mixer": mixer("attention", window=4), "channel": {"type": "none"}}]}},
    ])
    torch.manual_seed(0)
    model = build_model(a, 37)
    x = torch.randint(0, 37, (2, 16))
    backends.reset()  # cold choice cache: the choices are made while tracing
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compiled(x)
        loss = F.cross_entropy(out.reshape(-1, 37), x.reshape(-1)) + compiled.aux_loss()
    loss.backward()
    assert model.backends()["blocks[0].channel"] == "grouped-mm"  # recorded by the compiled run
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = model(x)
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
