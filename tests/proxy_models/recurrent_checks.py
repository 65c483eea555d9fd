"""Shared checks for the recurrent-primitive tests (test_ops_*.py): agreement of two
implementations in outputs, final states and input gradients; module step == forward;
causality; gradients reaching every parameter."""
from __future__ import annotations

import torch

from proxy_models.base import Ctx

T_VALUES = (1, 5, 16, 37)   # 1 token, shorter than a chunk, a multiple, and a ragged tail


def assert_agree(fast, ref, inputs: dict, atol: float = 1e-5, rtol: float = 1e-4):
    """Run fast(**inputs) and ref(**inputs) on leaf copies; compare o, final state and grads."""
    def run(fn):
        leaves = {k: (v.detach().clone().requires_grad_(v.is_floating_point()) if torch.is_tensor(v) else v)
                  for k, v in inputs.items()}
        o, s = fn(**leaves)
        # a fixed random projection of both outputs, so every element's gradient is exercised
        gen = torch.Generator().manual_seed(1)
        loss = ((o * torch.randn(o.shape, generator=gen).to(o.device)).sum()
                + (s * torch.randn(s.shape, generator=gen).to(s.device)).sum())
        loss.backward()
        grads = {k: v.grad for k, v in leaves.items() if torch.is_tensor(v) and v.grad is not None}
        return o.detach().float(), s.detach().float(), grads
    o1, s1, g1 = run(fast)
    o2, s2, g2 = run(ref)
    torch.testing.assert_close(o1, o2, atol=atol, rtol=rtol)
    torch.testing.assert_close(s1, s2, atol=atol, rtol=rtol)
    assert g1.keys() == g2.keys()
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], atol=10 * atol, rtol=10 * rtol, msg=lambda m: f"grad {k}: {m}")


def make_ctx(value_residual: bool, v_first):
    return Ctx(v_first=v_first if value_residual else None)


def check_step_equals_forward(module, d_model: int, T: int = 9, batch: int = 2, value_residual=False):
    torch.manual_seed(0)
    x = torch.randn(batch, T, d_model)
    v_first = torch.randn(batch, T, d_model)
    with torch.no_grad():
        y = module(x, make_ctx(value_residual, v_first))
        state = module.init_state(batch, x.device, x.dtype)
        steps = []
        for t in range(T):
            o, state = module.step(x[:, t], state, make_ctx(value_residual, v_first[:, t]))
            steps.append(o)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)


def check_causal(module, d_model: int, T: int = 12, value_residual=False):
    torch.manual_seed(0)
    x = torch.randn(2, T, d_model)
    v_first = torch.randn(2, T, d_model)
    t = T // 2
    x2 = x.clone()
    x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:])
    v2 = v_first.clone()
    v2[:, t + 1:] += 1.0
    with torch.no_grad():
        y1 = module(x, make_ctx(value_residual, v_first))
        y2 = module(x2, make_ctx(value_residual, v2))
    torch.testing.assert_close(y1[:, :t + 1], y2[:, :t + 1], atol=1e-6, rtol=1e-5)
    assert (y1[:, t + 1:] - y2[:, t + 1:]).abs().max() > 1e-6  # the later positions did change


def check_grads(module, d_model: int, value_residual=False):
    x = torch.randn(2, 7, d_model, requires_grad=True)
    y = module(x, make_ctx(value_residual, torch.randn(2, 7, d_model)))
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
    assert x.grad is not None and torch.isfinite(x.grad).all()


def check_bf16_autocast(module, d_model: int, value_residual=False):
    """Runs under bf16 autocast (the GPU training setting) with finite outputs and gradients."""
    x = torch.randn(2, 10, d_model, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x, make_ctx(value_residual, torch.randn(2, 10, d_model)))
    y.float().square().mean().backward()
    assert y.shape == x.shape and torch.isfinite(y.float()).all()
    assert torch.isfinite(x.grad).all()


_INTERPRETER_PATCH = """
import triton.runtime.interpreter as interp
original = interp._patch_lang_tensor
def patched(tensor, scope):  # triton 3.6's interpreter calls int() on 1-element arrays,
    original(tensor, scope)  # which numpy >= 2.3 refuses
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
interp._patch_lang_tensor = patched
"""


def run_in_triton_interpreter(script: str, timeout: int = 600) -> None:
    """Run `script` (which must print "ok" last) in a fresh process under Triton's CPU interpreter,
    with this folder importable; skip when triton is not installed (CPU machines need not have it;
    the GPU tests and the dispatch self-test check the kernels again on a GPU). A fresh process:
    TRITON_INTERPRET must be set before triton is first imported (torch imports it when present)."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed")
    here = Path(__file__).parent
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", _INTERPRETER_PATCH + script], env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
