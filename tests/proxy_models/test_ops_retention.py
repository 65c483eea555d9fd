"""RetNet retention: the chunkwise form against the recurrent form, and the Retention module."""
from __future__ import annotations

import pytest
import torch

from proxy_models.ops.retention import retention_chunked, retention_decays, retention_naive
from proxy_models.retention import Retention
from recurrent_checks import (T_VALUES, assert_agree, check_bf16_autocast, check_causal, check_grads,
                              check_step_equals_forward)
from search_space.primitives.retention import RetentionSpec

D = 32
SPEC = RetentionSpec(type="retention", heads=4, chunk=4)


def inputs(T, init, B=2, H=3, K=6, V=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(q=torch.randn(B, T, H, K, generator=g), k=torch.randn(B, T, H, K, generator=g),
                v=torch.randn(B, T, H, V, generator=g), scale=K ** -0.5,
                initial_state=torch.randn(B, H, K, V, generator=g) if init else None)


def test_decays_are_retnets():
    assert retention_decays(3).tolist() == pytest.approx([1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128])


@pytest.mark.parametrize("T", T_VALUES)
@pytest.mark.parametrize("chunk", (4, 16))
def test_chunked_matches_recurrent(T, chunk):
    assert_agree(lambda **a: retention_chunked(**a, chunk=chunk), retention_naive, inputs(T, init=T > 1))


def test_module_step_equals_forward():
    check_step_equals_forward(Retention(SPEC, D), D)


def test_module_causal():
    check_causal(Retention(SPEC, D), D)


def test_module_gradients_reach_every_parameter():
    check_grads(Retention(SPEC, D), D)


def test_module_bf16_autocast():
    check_bf16_autocast(Retention(SPEC, D), D)


def test_module_records_backend_and_param_count():
    m = Retention(SPEC, D)
    m(torch.randn(1, 3, D))
    assert m.backend == "torch-chunked"
    assert sum(p.numel() for p in m.parameters()) == SPEC.params(D)
