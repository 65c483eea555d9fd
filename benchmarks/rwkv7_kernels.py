"""RWKV-7's op alone (no layer around it): the fused Triton kernels against the PyTorch chunked form.

    python benchmarks/rwkv7_kernels.py --configs 32x4 --out $OUT/rwkv7_kernels.json   # GPU

For each Triton config (chunk length x warps): the first-call seconds (compilation) of the
forward without grad and of a forward+backward, the worst relative error of output and every
input gradient against the chunked PyTorch form (fp32 both), and the median forward+backward
time in bf16 (B=4, T=2048, H=8, K=V=64, the primitives benchmark's RWKV-7 at d_model 512) of
both forms. Results as JSON with the device name.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proxy_models.ops import tuning  # noqa: E402
from proxy_models.ops.rwkv7 import rwkv7_chunked  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["32x4"], help="LxWARPS, e.g. 32x4 64x4")
    ap.add_argument("--T", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from proxy_models.ops.rwkv7 import triton as tr  # GPU (or TRITON_INTERPRET=1)
    dev = "cuda"
    g = torch.Generator(device="cpu").manual_seed(0)
    B, T, H, K = 4, args.T, 8, 64

    def rn(*s):
        return torch.randn(*s, generator=g).to(dev)
    kk = F.normalize(rn(B, T, H, K), dim=-1)
    base = dict(r=rn(B, T, H, K), w=-torch.exp(-0.5 - F.softplus(-3 * rn(B, T, H, K))), k=rn(B, T, H, K) * 0.3,
                v=rn(B, T, H, K), a=-kk, b=kk * torch.rand(B, T, H, K, generator=g).to(dev))

    def leaves(dt):
        return {k: v.detach().to(torch.float32 if k == "w" else dt).requires_grad_() for k, v in base.items()}

    def fwd_bwd(fn, inp):
        o, _ = fn(**inp, output_final_state=False)
        o.float().sum().backward()
        return o

    def median_ms(fn):
        ts = []
        for _ in range(args.reps):
            inp = leaves(torch.bfloat16)
            torch.cuda.synchronize()
            s = time.perf_counter()
            fwd_bwd(fn, inp)
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - s)
        return round(statistics.median(ts[3:]) * 1e3, 3)

    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "B": B, "T": T, "H": H, "K": K,
              "configs": []}
    for c in args.configs:
        cfg = tuple(int(x) for x in c.split("x"))
        tr._CONFIGS = (cfg,)
        tuning._BEST.clear()
        rec = {"config": c}
        t0 = time.perf_counter()
        with torch.no_grad():
            tr.rwkv7_triton(**leaves(torch.bfloat16), output_final_state=False)
        torch.cuda.synchronize()
        rec["first_fwd_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        fwd_bwd(tr.rwkv7_triton, leaves(torch.bfloat16))
        torch.cuda.synchronize()
        rec["first_fwd_bwd_s"] = round(time.perf_counter() - t0, 1)
        a, b = leaves(torch.float32), leaves(torch.float32)
        oa, ob = fwd_bwd(tr.rwkv7_triton, a).detach(), fwd_bwd(rwkv7_chunked, b).detach()
        errs = [float((oa - ob).abs().max() / ob.abs().max())]
        errs += [float((a[k].grad - b[k].grad).abs().max() / b[k].grad.abs().max()) for k in a]
        rec["max_rel_err_fp32_vs_chunked"] = max(errs)
        rec["triton_fwd_bwd_ms"] = median_ms(tr.rwkv7_triton)
        rec["torch_chunked_fwd_bwd_ms"] = median_ms(rwkv7_chunked)
        print(json.dumps(rec), flush=True)
        report["configs"].append(rec)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
