"""Where a token mixer's forward+backward time goes: host (Python + launches) against GPU kernels.

    python benchmarks/profile_primitive.py rwkv7 attention --T 2048 --out $OUT/profile.json

For each primitive (one layer, d_model 512, batch 4, bf16 autocast, as benchmarks/primitives.py):
- wall ms per forward+backward (median of `--reps`, synchronized), and the same with the GPU's
  work alone (sum of kernel times from torch.profiler), so `host-bound` means wall >> kernels;
- the number of kernels launched per forward+backward;
- the top ops by GPU time and by CPU time (torch.profiler key averages).
`--variant KEY=VALUE` sets a module attribute first (e.g. rwkv7_solve=doubling sets
proxy_models.ops.rwkv7.chunked.SOLVE), `--variant compile=MODE` wraps every profiled layer (attention
too, so the ratio compares like with like) in `torch.compile(mode=MODE)` (`default`,
`reduce-overhead` for CUDA graphs, `max-autotune-no-cudagraphs`), `--spec chunk=32` overrides the
primitive's spec.
The JSON holds every number; the printed tables are for reading.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.primitives import make_module  # noqa: E402
from proxy_models.base import Ctx  # noqa: E402


def _value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def profile_one(name, T, d, B, reps, device, spec, compile_mode=None):
    torch.manual_seed(0)
    m = make_module(name, d, device, **spec)
    layer = m
    if compile_mode:
        # the layer's forward compiled as one graph where it can be (the chunk loop unrolls);
        # the backward is compiled by AOTAutograd with it
        m = torch.compile(m, mode=compile_mode)
    x = torch.randn(B, T, d, device=device, requires_grad=True)
    gy = torch.randn(B, T, d, device=device)
    cuda = device.type == "cuda"

    def step():
        layer.zero_grad(set_to_none=True)  # as a training step (and benchmarks/primitives.py)
        x.grad = None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            y = m(x, Ctx())
        y.backward(gy.to(y.dtype))

    t_first = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize()
    first_s = time.perf_counter() - t_first  # includes compilation under --variant compile
    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(5):
            step()
        if cuda:
            torch.cuda.synchronize()
    ev = prof.key_averages()
    dev_attr = "device_time_total" if hasattr(ev[0], "device_time_total") else "cuda_time_total"
    kernels = [e for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    kernel_us = sum(e.device_time for e in kernels) / 5 if kernels else 0.0
    top_gpu = sorted(ev, key=lambda e: getattr(e, dev_attr, 0), reverse=True)[:15]
    top_cpu = sorted(ev, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    rec = {"primitive": name, "T": T, "spec": spec, "backend": getattr(layer, "backend", "?"),
           "compile": compile_mode, "first_call_s": round(first_s, 2),
           "wall_ms": round(statistics.median(walls) * 1e3, 3),
           "kernel_ms": round(kernel_us / 1e3, 3), "kernels_per_step": len(kernels) // 5,
           "top_gpu": [{"op": e.key, "ms_per_step": round(getattr(e, dev_attr, 0) / 5e3, 3), "calls": e.count // 5}
                       for e in top_gpu],
           "top_cpu_self": [{"op": e.key, "ms_per_step": round(e.self_cpu_time_total / 5e3, 3), "calls": e.count // 5}
                            for e in top_cpu]}
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("primitives", nargs="+")
    ap.add_argument("--T", type=int, default=2048)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--spec", action="append", default=[], help="KEY=VALUE spec override (repeatable)")
    ap.add_argument("--variant", action="append", default=[], help="rwkv7_solve=trsm|doubling, tf32=1, compile=MODE")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    compile_mode = None
    for v in args.variant:
        k, _, val = v.partition("=")
        if k == "rwkv7_solve":
            from proxy_models.ops.rwkv7 import chunked
            chunked.SOLVE = val
        elif k == "compile":
            compile_mode = val
        elif k == "tf32":  # fp32 matmuls on tensor cores (10-bit mantissa): the chunk algebra is fp32
            torch.backends.cuda.matmul.allow_tf32 = val not in ("0", "false", "")
        else:
            ap.error(f"unknown variant {k!r}")
    spec = {k: _value(v) for k, _, v in (s.partition("=") for s in args.spec)}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "variants": args.variant, "results": []}
    for p in args.primitives:
        rec = profile_one(p, args.T, args.d_model, args.batch, args.reps, device, spec if p != "attention" else {},
                          compile_mode)
        out["results"].append(rec)
        print(f"\n== {p} T={args.T} {spec if p != 'attention' else ''} {args.variant}: wall {rec['wall_ms']} ms, "
              f"kernels {rec['kernel_ms']} ms ({rec['kernels_per_step']} launches), backend {rec['backend']}, "
              f"first call {rec['first_call_s']} s")
        for e in rec["top_gpu"][:10]:
            print(f"   gpu {e['ms_per_step']:8.3f} ms  x{e['calls']:4d}  {e['op'][:90]}")
        for e in rec["top_cpu_self"][:8]:
            print(f"   cpu {e['ms_per_step']:8.3f} ms  x{e['calls']:4d}  {e['op'][:90]}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
