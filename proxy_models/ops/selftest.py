"""A fast kernel earns its place by agreeing with the plain-PyTorch form on this machine.

`check(op, fast, reference, device, need_grad)` runs both on a small random input of the op's
shape family (the fast one in bf16, the reference in fp32 on the same bf16-rounded values) and
compares outputs and, when `need_grad`, the gradients of every input, as a relative max error.
`dispatch.run` calls it once per process before first using a Triton / fla backend, so a kernel
that fails to compile (in either direction), or computes wrong numbers on this GPU and Triton
(fla's Hopper issue #640 is of that kind), is replaced by the PyTorch form instead of crashing a
backward pass or silently training on wrong gradients. The benchmark reports the same checks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TOLERANCE = 3e-2          # bf16 kernel vs fp32 reference, relative to the reference's max (the
                          # PyTorch forms in bf16 on a CPU reach 0.4-0.7%)
_FP32_INPUTS = ("g", "w", "A", "dt")   # decays stay fp32, as the modules pass them


def inputs(op: str, device, T: int = 160, B: int = 2) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)

    def rn(*s):
        return torch.randn(*s, generator=g).to(device)
    if op == "ssd":
        H, K, V = 4, 32, 32
        return dict(q=rn(B, T, 1, K), k=rn(B, T, 1, K), v=rn(B, T, H, V),
                    g=-F.softplus(rn(B, T, H)), scale=1.0, initial_state=None)
    if op == "retention":
        H, K, V = 4, 32, 64
        return dict(q=rn(B, T, H, K), k=rn(B, T, H, K), v=rn(B, T, H, V), scale=K ** -0.5, initial_state=None)
    if op == "rwkv7":
        H, K = 4, 64
        kk = F.normalize(rn(B, T, H, K), dim=-1)
        w = -torch.exp(-0.5 - F.softplus(-3 * rn(B, T, H, K)))
        return dict(r=rn(B, T, H, K), w=w, k=rn(B, T, H, K) * 0.3, v=rn(B, T, H, K), a=-kk,
                    b=kk * torch.rand(B, T, H, K, generator=g).to(device), initial_state=None)
    if op == "selective_scan":
        D, N = 64, 16
        return dict(u=rn(B, T, D), dt=F.softplus(rn(B, T, D) - 2), A=-torch.rand(D, N, generator=g).to(device) * 8,
                    Bm=rn(B, T, N), Cm=rn(B, T, N), initial_state=None)
    raise KeyError(f"no self-test inputs for op {op!r}")


def run(fn, inp: dict, dtype: torch.dtype, need_grad: bool):
    """Output and input gradients of fn on leaf copies of inp (floating inputs cast to dtype)."""
    leaves = {}
    for k, v in inp.items():
        if torch.is_tensor(v):
            v = v.detach().clone()
            if k not in _FP32_INPUTS:
                v = v.to(dtype)
            v.requires_grad_(need_grad)
        leaves[k] = v
    with torch.autocast(device_type=next(v for v in leaves.values() if torch.is_tensor(v)).device.type,
                        enabled=False), torch.enable_grad():
        o, _ = fn(**leaves)
        grads = {}
        if need_grad:
            gen = torch.Generator(device="cpu").manual_seed(1)
            (o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum().backward()
            grads = {k: v.grad for k, v in leaves.items() if torch.is_tensor(v) and v.grad is not None}
    return o.detach(), grads


def rel_err(a, b) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6))


def compare(op: str, fn, reference, device, need_grad: bool, fn_dtype=torch.bfloat16) -> float:
    """Worst relative error of fn (in fn_dtype) against reference (fp32), outputs and gradients."""
    inp = inputs(op, device)
    o_r, g_r = run(reference, inp, torch.float32, need_grad)
    o_f, g_f = run(fn, inp, fn_dtype, need_grad)
    if need_grad and g_f.keys() != g_r.keys():
        return math.inf
    errs = [rel_err(o_f, o_r)] + [rel_err(g_f[k], g_r[k]) for k in g_r]
    return max(e if math.isfinite(e) else math.inf for e in errs)


def check(op: str, fast, reference, device, need_grad: bool) -> tuple[bool, str]:
    """(ok, why-not). Any exception (compile error, refusal, wrong shape) counts as a failure."""
    try:
        err = compare(op, fast, reference, device, need_grad)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the fast path is not usable
        msg = str(exc).splitlines()[0][:300] if str(exc) else ""
        return False, f"{type(exc).__name__}: {msg}"
    if err > TOLERANCE:
        return False, f"relative error {err:.3g} > {TOLERANCE}"
    return True, f"relative error {err:.3g}"
