"""Mamba-2's SSD: the chunked form against the sequential recurrence, and the Mamba2 module."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from proxy_models.mamba2 import Mamba2
from proxy_models.ops.ssd import ssd_chunked, ssd_naive
from recurrent_checks import (T_VALUES, assert_agree, check_bf16_autocast, check_causal, check_grads,
                              check_step_equals_forward)
from search_space.primitives.mamba2 import Mamba2Spec

D = 32
SPEC = Mamba2Spec(type="mamba2", d_state=8, head_dim=8, chunk=4)


def inputs(T, groups, init, B=2, H=3, K=6, V=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    Hq = 1 if groups else H
    return dict(q=torch.randn(B, T, Hq, K, generator=g), k=torch.randn(B, T, Hq, K, generator=g),
                v=torch.randn(B, T, H, V, generator=g), g=-F.softplus(torch.randn(B, T, H, generator=g)),
                scale=0.7, initial_state=torch.randn(B, H, K, V, generator=g) if init else None)


@pytest.mark.parametrize("T", T_VALUES)
@pytest.mark.parametrize("chunk", (4, 16))
@pytest.mark.parametrize("groups", (True, False), ids=("shared-BC", "per-head"))
def test_chunked_matches_sequential(T, chunk, groups):
    x = inputs(T, groups, init=T % 2 == 1)
    assert_agree(lambda **a: ssd_chunked(**a, chunk=chunk), ssd_naive, x)


def test_long_sequence_strong_decay_stays_accurate():
    x = inputs(300, True, init=True)
    x["g"] = x["g"] * 20  # decays down to e^-60 per step: no overflow, no NaN
    o, s = ssd_chunked(**x, chunk=64)
    o_ref, s_ref = ssd_naive(**x)
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


def test_module_step_equals_forward():
    check_step_equals_forward(Mamba2(SPEC, D), D)


def test_module_causal():
    check_causal(Mamba2(SPEC, D), D)


def test_module_gradients_reach_every_parameter():
    check_grads(Mamba2(SPEC, D), D)


def test_module_bf16_autocast():
    check_bf16_autocast(Mamba2(SPEC, D), D)


def test_module_records_backend_and_param_count():
    m = Mamba2(SPEC, D)
    m(torch.randn(1, 3, D))
    assert m.backend == "torch-chunked"  # CPU: fla never runs
    assert sum(p.numel() for p in m.parameters()) == SPEC.params(D)
