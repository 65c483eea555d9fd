"""Mixture-of-Recursions: threshold routing (causal), masked dense update, auxiliary losses and
per-depth decode state."""
from __future__ import annotations

import torch

from pm_cases import arch
from proxy_models import build_model
from proxy_models.base import Ctx
from proxy_models.recursion import Recursion


def group(router="expert_choice", depth=3, **kw):
    rec = {"max_depth": depth, "router": router, "aux_loss_weight": 0.1,
           "body": [{"mixer": {"type": "attention", "heads": 4}, "channel": {"type": "swiglu", "expand": 1.0}}], **kw}
    if router == "expert_choice":
        rec.setdefault("capacity", [1.0, 0.5, 0.25][:depth])
    torch.manual_seed(0)
    model = build_model(arch([{"recursion": rec}]), 37)
    return model, next(m for m in model.modules() if isinstance(m, Recursion))


def test_expert_choice_tokens_below_threshold_are_left_untouched():
    _, rec = group()
    x = torch.randn(2, 12, 32)
    with torch.no_grad():
        p0 = torch.sigmoid(x @ rec.router.weight[0])
        y = rec(x, Ctx())
    off = p0 <= 0.5
    assert off.any() and (~off).any()
    torch.testing.assert_close(y[off], x[off])
    assert (y[~off] - x[~off]).abs().amax(-1).min() > 0


def test_expert_choice_aux_bce_and_router_gradient():
    _, rec = group()
    x = torch.randn(2, 12, 32)
    ctx = Ctx()
    y = rec(x, ctx)
    assert len(ctx.aux_losses) == 1 and ctx.aux_losses[0] > 0
    (y.sum() + ctx.aux_losses[0]).backward()
    assert (rec.router.weight.grad.abs().sum(-1) > 0).all()  # every depth's scorer learns


def test_expert_choice_bce_alone_trains_scorer_toward_capacity():
    _, rec = group(depth=2, capacity=[0.5, 0.25])
    x = torch.randn(4, 16, 32)
    opt = torch.optim.SGD([rec.router.weight], lr=1.0)
    for _ in range(150):
        ctx = Ctx()
        rec(x, ctx)
        opt.zero_grad()
        ctx.aux_losses[0].backward()
        opt.step()
    with torch.no_grad():
        frac = (torch.sigmoid(x @ rec.router.weight[0]) > 0.5).float().mean()
    assert abs(frac.item() - 0.5) < 0.15


def test_token_choice_balance_loss_and_depth_assignment():
    _, rec = group("token_choice", depth=3)
    x = torch.randn(2, 12, 32)
    ctx = Ctx()
    with torch.no_grad():
        y = rec(x, ctx)
        depth = (x @ rec.router.weight.T).argmax(-1)
    assert len(ctx.aux_losses) == 1 and ctx.aux_losses[0] > 0
    # every token runs depth 0, so every output moved
    assert ((y - x).abs().amax(-1) > 0).all()
    assert depth.min() >= 0 and depth.max() < 3


def test_each_depth_keeps_its_own_state():
    model, rec = group("expert_choice", depth=3)
    state = model.init_state(2)
    assert len(state) == 1 and len(state[0]) == 3
    assert state[0][0][0] is not state[0][1][0]
