"""Mamba-1's selective scan: the blocked scan against the per-token loop, and the Mamba1 module."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from proxy_models.mamba1 import Mamba1
from proxy_models.ops.selective_scan import selective_scan_chunked, selective_scan_naive
from recurrent_checks import (T_VALUES, assert_agree, run_in_triton_interpreter, check_bf16_autocast, check_causal, check_grads,
                              check_step_equals_forward)
from search_space.primitives.mamba1 import Mamba1Spec

D = 32
SPEC = Mamba1Spec(type="mamba1", d_state=4, d_conv=3)


def inputs(T, init, B=2, Dch=6, N=4, seed=0, dt_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return dict(u=torch.randn(B, T, Dch, generator=g),
                dt=F.softplus(torch.randn(B, T, Dch, generator=g)) * dt_scale,
                A=-torch.rand(Dch, N, generator=g) * 4 - 0.1,
                Bm=torch.randn(B, T, N, generator=g), Cm=torch.randn(B, T, N, generator=g),
                initial_state=torch.randn(B, Dch, N, generator=g) if init else None)


@pytest.mark.parametrize("T", T_VALUES)
@pytest.mark.parametrize("chunk", (None, 4))
def test_blocked_scan_matches_sequential(T, chunk):
    assert_agree(lambda **a: selective_scan_chunked(**a, chunk=chunk), selective_scan_naive,
                 inputs(T, init=T % 2 == 1))


def test_huge_dt_is_stable():
    """dt*|A| in the hundreds: a cumulative-decay division would overflow; the scan must not."""
    x = inputs(50, init=True, dt_scale=100.0)
    y, h = selective_scan_chunked(**x)
    y_ref, h_ref = selective_scan_naive(**x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-4, rtol=1e-4)


def test_module_step_equals_forward():
    check_step_equals_forward(Mamba1(SPEC, D), D)


def test_module_causal():
    check_causal(Mamba1(SPEC, D), D)


def test_module_gradients_reach_every_parameter():
    check_grads(Mamba1(SPEC, D), D)


def test_module_bf16_autocast():
    check_bf16_autocast(Mamba1(SPEC, D), D)


def test_module_records_backend_and_param_count():
    m = Mamba1(SPEC, D)
    m(torch.randn(1, 3, D))
    assert m.backend == "torch-chunked"
    assert sum(p.numel() for p in m.parameters()) == SPEC.params(D)


INTERPRETER_CHECK = """
import test_ops_selective_scan as t
from proxy_models.ops.selective_scan.triton import selective_scan_triton
for T, init in ((19, True), (1, False)):
    t.assert_agree(selective_scan_triton, t.selective_scan_naive, t.inputs(T, init=init, Dch=5, N=3))
print("ok")
"""


def test_triton_kernels_match_sequential_in_the_interpreter():
    """The GPU kernels, run by Triton's CPU interpreter where triton is installed (the benchmark
    and the dispatch self-test check them again on the GPU)."""
    run_in_triton_interpreter(INTERPRETER_CHECK)


def test_long_sequences_run_in_segments_with_the_state_passed_on(monkeypatch):
    from proxy_models.ops.selective_scan import chunked
    monkeypatch.setattr(chunked, "SEGMENT_ELEMS", 2 * 6 * 4 * 7)  # segments of 7 tokens
    assert_agree(selective_scan_chunked, selective_scan_naive, inputs(30, init=True))
