"""MoE: the sorted dispatch (both paths) against the dense every-expert reference, routing and
gates, and both balancing modes (Switch auxiliary loss; DeepSeek-V3 bias update)."""
from __future__ import annotations

import pytest
import torch

from proxy_models import build_model
from proxy_models.base import Ctx
from proxy_models.moe import MoE
from search_space.primitives.moe import MoESpec


def moe(seed=0, **kw) -> MoE:
    torch.manual_seed(seed)
    spec = MoESpec(type="moe", **{"experts": 4, "top_k": 2, "expand": 2.0, **kw})
    return MoE(spec, 32)


def x_BTD(seed=1, T=24):
    return torch.randn(3, T, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kw", [{}, {"top_k": 1}, {"top_k": 4}, {"shared_experts": 1}, {"balancing": "bias"}],
                         ids=["top2", "top1", "top4-all", "shared", "bias"])
def test_expert_loop_matches_dense_reference(kw):
    m = moe(**kw)
    m.dispatch = "expert-loop"
    x = x_BTD()
    torch.testing.assert_close(m(x, Ctx()), m.dense_reference(x), rtol=1e-5, atol=1e-5)


def test_grouped_mm_matches_dense_reference_in_bf16():
    m = moe(shared_experts=1)
    m.dispatch = "grouped-mm"
    x = x_BTD().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x, Ctx())
    ref = m.dense_reference(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref, rtol=3e-2, atol=3e-2)
    y.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_backend_choice_for_grouped_mm():
    from proxy_models import backends
    assert backends.choose("moe_dispatch", "cpu", torch.bfloat16, shape=(32, 64)) == "grouped-mm"
    assert backends.choose("moe_dispatch", "cpu", torch.float32, shape=(32, 64)) == "expert-loop"
    assert backends.choose("moe_dispatch", "cpu", torch.bfloat16, shape=(32, 60)) == "expert-loop"


def test_dispatch_visits_each_chosen_expert_once_per_token():
    m = moe(top_k=2)
    x = x_BTD()
    _, idx, gates = m.route(x.reshape(-1, 32))
    assert (idx[:, 0] != idx[:, 1]).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(idx.shape[0]))


def test_switch_aux_loss_value():
    m = moe(aux_loss_weight=0.5)
    ctx = Ctx()
    x = x_BTD()
    m(x, ctx)
    probs, idx, _ = m.route(x.reshape(-1, 32))
    f = torch.bincount(idx.reshape(-1), minlength=4).float() / idx.numel()
    expected = 0.5 * 4 * (f * probs.mean(0)).sum()
    assert len(ctx.aux_losses) == 1
    torch.testing.assert_close(ctx.aux_losses[0], expected)
    # perfectly uniform routing gives exactly the weight (the loss's minimum scale)
    with torch.no_grad():
        m.router.weight.zero_()
    ctx = Ctx()
    m(x, ctx)
    assert ctx.aux_losses[0].item() == pytest.approx(0.5, rel=0.3)


def test_bias_balancing_selects_with_bias_but_gates_without():
    m = moe(balancing="bias", top_k=1)
    ctx = Ctx()
    x = x_BTD()
    with torch.no_grad():
        m.router_bias.copy_(torch.tensor([0.0, 0.0, 10.0, 0.0]))
    probs, idx, gates = m.route(x.reshape(-1, 32))
    assert (idx == 2).all()
    torch.testing.assert_close(gates[:, 0], probs[:, 2])
    m(x, ctx)
    assert ctx.aux_losses == []  # aux-loss-free
    assert "router_bias" in m.state_dict() and "router_bias" not in dict(m.named_parameters())


def test_bias_update_balances_load():
    m = moe(balancing="bias", top_k=1, experts=4)
    with torch.no_grad():  # a router that sends every token to expert 0
        m.router.weight.mul_(0.1)
        m.router.weight[0] += 0.3 * torch.ones(32)
    x = x_BTD(T=64).abs()
    m.train()
    m(x, Ctx())
    assert m.load.tolist() == [192, 0, 0, 0]
    m.update_bias(rate=0.01)
    assert m.load.sum() == 0
    # sign updates oscillate around balance: judge the load averaged over later steps
    seen = torch.zeros(4)
    for i in range(200):
        m(x, Ctx())
        if i >= 100:
            seen += m.load
        m.update_bias(rate=0.01)
    assert (seen / 100).max() < 0.45 * 192


def test_eval_forward_does_not_count_load_and_model_hook_updates():
    from pm_cases import arch
    a = arch([{"mixer": {"type": "attention", "heads": 4},
               "channel": {"type": "moe", "experts": 4, "top_k": 2, "balancing": "bias"}}])
    model = build_model(a, 37)
    layer = next(mod for mod in model.modules() if isinstance(mod, MoE))
    x = torch.randint(0, 37, (2, 16))
    model.eval()
    model(x)
    assert layer.load.sum() == 0
    model.train()
    model(x)
    assert layer.load.sum() == 2 * 16 * 2
    model.update_router_biases(rate=0.1)
    assert layer.load.sum() == 0 and layer.router_bias.abs().sum() > 0


def test_grouped_mm_failure_falls_back_to_the_loop_once(caplog):
    import logging

    from proxy_models import moe as moe_mod
    # rows of 20 bf16 values (40 bytes) are not 16-byte aligned: grouped_mm raises, the layer must not
    x = x_BTD()[:, :, :20]
    m2 = MoE(MoESpec(type="moe", experts=4, top_k=2, expand=1.0), 20)
    m2.dispatch = "grouped-mm"
    moe_mod._GROUPED_MM_FAILED.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="proxy_models.moe"):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y1 = m2(x, Ctx())
                y2 = m2(x, Ctx())
        assert m2.backend == "expert-loop"
        assert len([r for r in caplog.records if "grouped_mm failed" in r.getMessage()]) == 1
        torch.testing.assert_close(y1.float(), m2.dense_reference(x), rtol=3e-2, atol=3e-2)
        assert torch.equal(y1, y2)
    finally:
        moe_mod._GROUPED_MM_FAILED.clear()
