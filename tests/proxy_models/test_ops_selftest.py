"""The self-test that gates every fast kernel (dispatch runs it before first use on a GPU)."""
from __future__ import annotations

import pytest
import torch

from proxy_models.ops import dispatch, selftest
from proxy_models.ops.retention import retention_chunked, retention_naive
from proxy_models.ops.rwkv7 import rwkv7_chunked, rwkv7_naive
from proxy_models.ops.selective_scan import selective_scan_chunked, selective_scan_naive
from proxy_models.ops.ssd import ssd_chunked, ssd_naive

CPU = torch.device("cpu")
PAIRS = {"ssd": (ssd_chunked, ssd_naive), "retention": (retention_chunked, retention_naive),
         "rwkv7": (rwkv7_chunked, rwkv7_naive), "selective_scan": (selective_scan_chunked, selective_scan_naive)}


@pytest.mark.parametrize("op", sorted(PAIRS))
def test_a_correct_bf16_kernel_passes_forward_and_backward(op):
    fast, ref = PAIRS[op]
    ok, why = selftest.check(op, fast, ref, CPU, need_grad=True)
    assert ok, why


def test_a_wrong_kernel_fails():
    def off_by_a_bit(**kw):  # a kernel with a wrong decay: 50% too strong
        kw["g"] = kw["g"] * 1.5
        return ssd_chunked(**kw)
    ok, why = selftest.check("ssd", off_by_a_bit, ssd_naive, CPU, need_grad=False)
    assert not ok and "relative error" in why


def test_a_kernel_with_wrong_gradients_fails_only_the_backward_check():
    class ScaledGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    def bad_backward(**kw):
        kw["v"] = ScaledGrad.apply(kw["v"])
        return ssd_chunked(**kw)
    assert selftest.check("ssd", bad_backward, ssd_naive, CPU, need_grad=False)[0]
    ok, why = selftest.check("ssd", bad_backward, ssd_naive, CPU, need_grad=True)
    assert not ok


def test_a_kernel_that_raises_fails_with_its_message():
    def refuses(**kw):
        raise RuntimeError("Triton >= 3.4.0 and < 3.7.1 on Hopper GPUs produces incorrect results\nmore")
    ok, why = selftest.check("ssd", refuses, ssd_naive, CPU, need_grad=True)
    assert not ok and why.startswith("RuntimeError: Triton >= 3.4.0") and "more" not in why


def test_dispatch_on_cpu_runs_plain_pytorch():
    x = selftest.inputs("retention", CPU, T=10)
    (o, s), name = dispatch.run("retention", {dispatch.TORCH: retention_chunked}, CPU, torch.float32, **x)
    assert name == dispatch.TORCH and o.shape == x["v"].shape
