"""RWKV-7's generalized delta rule: the chunked (WY / triangular-solve) form against the
sequential update, and the RWKV7 module with and without the value residual."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from proxy_models.base import Ctx
from proxy_models.ops.rwkv7 import rwkv7_chunked, rwkv7_naive
from proxy_models.rwkv7 import RWKV7
from recurrent_checks import (T_VALUES, assert_agree, run_in_triton_interpreter, check_bf16_autocast, check_causal, check_grads,
                              check_step_equals_forward)
from search_space.primitives.rwkv7 import RWKV7Spec

D = 32
SPEC = RWKV7Spec(type="rwkv7", head_dim=8, decay_lora=4, a_lora=4, v_lora=4, gate_lora=4, chunk=4)


def inputs(T, init, B=2, H=3, K=8, V=8, seed=0, strongest_decay=False):
    g = torch.Generator().manual_seed(seed)
    kk = F.normalize(torch.randn(B, T, H, K, generator=g), dim=-1)
    iclr = torch.rand(B, T, H, K, generator=g)
    w = -torch.exp(-0.5 - F.softplus(-3 * torch.randn(B, T, H, K, generator=g)))  # RWKV-7's range
    if strongest_decay:
        w = torch.full_like(w, -math.exp(-0.5))
    return dict(r=torch.randn(B, T, H, K, generator=g), w=w, k=torch.randn(B, T, H, K, generator=g),
                v=torch.randn(B, T, H, V, generator=g), a=-kk, b=kk * iclr,
                initial_state=torch.randn(B, H, K, V, generator=g) if init else None)


@pytest.mark.parametrize("T", T_VALUES)
@pytest.mark.parametrize("chunk", (4, 16))
def test_chunked_matches_sequential(T, chunk):
    assert_agree(lambda **a: rwkv7_chunked(**a, chunk=chunk), rwkv7_naive, inputs(T, init=T % 2 == 1))


@pytest.mark.parametrize("init", (False, True), ids=("zero-state", "initial-state"))
def test_default_chunk_over_several_chunks_matches_sequential(init):
    # the spec's default chunk (64), three and a bit chunks: the chunk recurrence and its
    # hand-written backward run over several steps
    assert_agree(lambda **a: rwkv7_chunked(**a, chunk=64), rwkv7_naive, inputs(200, init=init, H=2, K=16, V=16),
                 atol=3e-5, rtol=3e-4)


@pytest.mark.parametrize("T", (5, 64, 130))
def test_doubling_inverse_solve_matches_sequential(T, monkeypatch):
    from proxy_models.ops.rwkv7 import chunked
    monkeypatch.setattr(chunked, "SOLVE", "doubling")
    assert_agree(lambda **a: rwkv7_chunked(**a, chunk=64), rwkv7_naive, inputs(T, init=T % 2 == 1, H=2, K=16, V=16),
                 atol=3e-5, rtol=3e-4)
    assert_agree(lambda **a: rwkv7_chunked(**a, chunk=5), rwkv7_naive, inputs(T, init=False))


class _ChunkStates(torch.autograd.Function):
    """The chunk recurrence with `states_backward` as its gradient, for gradcheck."""

    @staticmethod
    def forward(ctx, MN, S0):
        from proxy_models.ops.rwkv7.chunked import states_forward
        S_in, S_final = states_forward(MN, S0)
        ctx.save_for_backward(MN, S_in)
        ctx.has_s0 = S0 is not None
        return S_in, S_final

    @staticmethod
    def backward(ctx, g_in, g_final):
        from proxy_models.ops.rwkv7.chunked import states_backward
        MN, S_in = ctx.saved_tensors
        gMN, g0 = states_backward(MN, S_in, g_in, g_final)
        return gMN, (g0 if ctx.has_s0 else None)


def test_chunk_state_recurrence_backward_is_exact():
    g = torch.Generator().manual_seed(3)
    MN = (torch.randn(2, 3, 5, 4, 7, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    S0 = torch.randn(2, 3, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, s: _ChunkStates.apply(m, s), (MN, S0))
    assert torch.autograd.gradcheck(lambda m: _ChunkStates.apply(m, None)[0], (MN,))


def test_output_final_state_can_be_skipped():
    x = inputs(37, init=False)
    o, s = rwkv7_chunked(**x, output_final_state=False)
    o_ref, _ = rwkv7_naive(**x)
    assert s is None
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scale", (1.0, 1e4), ids=("unit", "large-activations"))
def test_largest_chunk_with_strongest_decay_is_finite_and_exact(scale):
    # the factored decays reach exp(0.607 * 64) in the masked-out products; they must stay finite
    # (a mask multiplies them by 0) even with large receptances and keys
    x = inputs(128, init=True, strongest_decay=True, H=1)
    x["r"], x["k"] = x["r"] * scale, x["k"] * scale
    from proxy_models.ops.rwkv7.chunked import MAX_CHUNK
    o, s = rwkv7_chunked(**x, chunk=MAX_CHUNK)
    o_ref, s_ref = rwkv7_naive(**x)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    tol = dict(atol=1e-4, rtol=1e-4 if scale == 1 else 2e-3)  # both sides are fp32 at |o| ~ 1e8
    torch.testing.assert_close(o / scale ** 2, o_ref / scale ** 2, **tol)
    torch.testing.assert_close(s / scale ** 2, s_ref / scale ** 2, **tol)


@pytest.mark.parametrize("vr", (False, True), ids=("first-layer", "value-residual"))
def test_module_step_equals_forward(vr):
    check_step_equals_forward(RWKV7(SPEC, D, value_residual=vr), D, value_residual=vr)


@pytest.mark.parametrize("vr", (False, True), ids=("first-layer", "value-residual"))
def test_module_causal(vr):
    check_causal(RWKV7(SPEC, D, value_residual=vr), D, value_residual=vr)


@pytest.mark.parametrize("vr", (False, True), ids=("first-layer", "value-residual"))
def test_module_gradients_reach_every_parameter(vr):
    check_grads(RWKV7(SPEC, D, value_residual=vr), D, value_residual=vr)


def test_module_bf16_autocast():
    check_bf16_autocast(RWKV7(SPEC, D), D)


def test_first_layer_hands_its_values_on_and_later_layers_need_them():
    first, later = RWKV7(SPEC, D), RWKV7(SPEC, D, value_residual=True)
    ctx = Ctx()
    x = torch.randn(1, 5, D)
    first(x, ctx)
    assert ctx.v_first is not None and ctx.v_first.shape == (1, 5, D)
    later(x, ctx)  # uses it
    with pytest.raises(ValueError, match="v_first"):
        later(x, Ctx())


def test_module_records_backend_and_param_count():
    for vr in (False, True):
        m = RWKV7(SPEC, D, value_residual=vr)
        m(torch.randn(1, 3, D), Ctx(v_first=torch.randn(1, 3, D)))
        assert m.backend == "torch-chunked"
        assert sum(p.numel() for p in m.parameters()) == SPEC.params(D, vr)


INTERPRETER_CHECK = """
import torch
import test_ops_rwkv7 as t
from proxy_models.ops.rwkv7 import rwkv7_naive
from proxy_models.ops.rwkv7 import triton as tr
tight = dict(atol=3e-5, rtol=3e-4)
# several chunks of 64 (and a partial one), an initial state, K and V not powers of two
for T, init, H, K, V in ((19, True, 2, 8, 8), (1, False, 1, 8, 8), (130, True, 1, 20, 12)):
    t.assert_agree(tr.rwkv7_triton, rwkv7_naive, t.inputs(T, init=init, H=H, K=K, V=V), **tight)
# the other chunk length the first-call tuning may pick, at the strongest decay RWKV-7 allows
from proxy_models.ops import tuning
tr._CONFIGS = ((64, 4),)
tuning._BEST.clear()
t.assert_agree(tr.rwkv7_triton, rwkv7_naive, t.inputs(70, init=True, H=2, K=16, V=16, strongest_decay=True), **tight)
# inference: no stored states, no final state
inp = t.inputs(40, init=False, H=2, K=16, V=16)
with torch.no_grad():
    o, s = tr.rwkv7_triton(**inp, output_final_state=False)
assert s is None
torch.testing.assert_close(o, rwkv7_naive(**inp)[0], **tight)
# bf16 in (w stays fp32, as the module passes it): output and gradients in the inputs' dtypes
bf = {k: (v.to(torch.float32 if k == "w" else torch.bfloat16).requires_grad_() if torch.is_tensor(v) else v)
      for k, v in inp.items()}
o, _ = tr.rwkv7_triton(**bf, output_final_state=False)
o.float().sum().backward()
assert o.dtype == torch.bfloat16 and all(bf[k].grad.dtype == bf[k].dtype for k in "rwkvab")
# the "triton-scan" form: the chunked PyTorch algebra with the chunk recurrence in Triton
from proxy_models.ops.rwkv7.scan_triton import rwkv7_triton_scan
for T, init, chunk in ((19, True, 4), (130, False, 64), (200, True, 64)):
    t.assert_agree(lambda **a: rwkv7_triton_scan(**a, chunk=chunk), rwkv7_naive,
                   t.inputs(T, init=init, H=2, K=16, V=12), **tight)
print("ok")
"""


def test_triton_kernels_match_sequential_in_the_interpreter():
    """The fused GPU kernels (ops/rwkv7/triton.py), forward and backward, run by Triton's CPU
    interpreter where triton is installed; the GPU tests and the dispatch self-test check them
    again on a GPU."""
    run_in_triton_interpreter(INTERPRETER_CHECK)
