"""Per-primitive speed and memory: SDPA attention against the recurrent token mixers.

    python benchmarks/primitives.py            # GPU, full sizes (about 5 minutes on one H100)
    python benchmarks/primitives.py --quick    # small sizes, runs on a CPU in about a minute

On the project's GPU machine (wheels from ../shared/gpu/pack-wheels.sh, run from the repo root):
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && \
    python3 benchmarks/primitives.py --out $OUT/primitives.json 2>&1 | tee $OUT/primitives.log
then copy $OUT/primitives.json to benchmarks/results/primitives-<device>.json. `--torch-only`
measures the plain-PyTorch forms alone; `--max-minutes` bounds the whole run (default 6).

What is measured, per primitive (one token-mixer layer, d_model 512, batch 4, the spec's default
hyper-parameters; attention with 8 heads of 64):
- train: forward + backward time and peak memory at T = 512, 2K, 8K;
- prefill: forward time under no_grad at T = 2K, 8K, 32K (tokens/s), and its peak memory;
- decode: one `step` for the whole batch at contexts 2K, 8K, 32K (tokens/s), peak memory and
  the decoding state's bytes. Attention's KV cache is filled with T random positions; a recurrent
  state has the same size whatever the context, so it is filled with random values.
- on a GPU, every backend of each recurrent primitive (fla chunk / fla parallel / our Triton /
  chunked PyTorch) forced in turn at the middle training T and the middle prefill T;
- the kernel backend each mode used (`module.backend`), and before any timing a correctness
  check of every fast path (fla) against the plain-PyTorch chunked form, and of the chunked form
  against the sequential reference, on small inputs; a path that fails is disabled and the
  failure recorded.

How: bf16 autocast on a GPU (fp32 weights, as in training), fp32 on a CPU; warm-up runs, then
CUDA events (perf_counter on a CPU), medians. Every case has a hard time budget (SIGALRM, checked
between kernel launches) and is skipped when a smaller size predicts it will not fit; timeouts
and out-of-memory are recorded, never fatal. Results: JSON in benchmarks/results/
primitives-<device>.json (device, torch/triton/fla versions, settings, every case), and a
markdown summary with ratios against SDPA printed at the end (for docs/benchmarks.md).
Targets (issue 3, H100): recurrent fwd+bwd at 2K within 3x of SDPA; prefill 8K -> 32K grows at
most 4.5x; decode memory independent of context.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import re
import signal
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proxy_models.base import Ctx  # noqa: E402
from proxy_models.ops import dispatch, selftest  # noqa: E402
from proxy_models.registry import token_mixer_class  # noqa: E402
from search_space.registry import TOKEN_MIXERS  # noqa: E402

FULL = dict(d_model=512, batch=4, train_T=(512, 2048, 8192), prefill_T=(2048, 8192, 32768),
            decode_T=(2048, 8192, 32768), budget_s=40.0, reps=10, decode_steps=50)
QUICK = dict(d_model=64, batch=2, train_T=(32, 128), prefill_T=(128, 512), decode_T=(128, 512),
             budget_s=20.0, reps=2, decode_steps=5)
PRIMITIVES = ("attention", "mamba1", "mamba2", "rwkv7", "retention")
# every backend a recurrent primitive can run, compared at the middle training T and the middle
# prefill T (the main table shows what `backends` picks)
ALTERNATIVES = {"mamba1": ("triton", "torch-chunked"), "mamba2": ("fla-chunk", "fla-parallel", "torch-chunked"),
                "rwkv7": ("triton-scan", "triton", "fla-chunk", "torch-chunked"), "retention": ("fla-chunk", "torch-chunked")}
FLA_BACKENDS = ("fla-chunk", "fla-parallel")
# spec variants of the PyTorch forms, at the same sizes as the backend comparison (the chunk
# length trades launches in the chunk recurrence against the size of the intra-chunk products)
VARIANTS = {"rwkv7": ({"chunk": 16}, {"chunk": 32}), "mamba2": ({"chunk": 128},), "retention": ({"chunk": 128},)}
OPS = {"mamba1": "selective_scan", "mamba2": "ssd", "rwkv7": "rwkv7", "retention": "retention"}


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def hard_timeout(seconds: float):
    """Raise CaseTimeout in the main thread after `seconds` (Python code runs between launches)."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"over {seconds:.0f}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------------------ set-up
def make_spec(name: str, **overrides):
    extra = {"heads": 8} if name == "attention" else {}
    return TOKEN_MIXERS[name](type=name, **{**extra, **overrides})


def make_module(name: str, d_model: int, device, **overrides):
    return token_mixer_class(name)(make_spec(name, **overrides), d_model).to(device)


class Clock:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time(self, fn, reps: int, warmup: int = 2, budget_s: float = 1e9) -> list[float]:
        """Per-call seconds of fn() (median taken by the caller); stops early past budget_s."""
        for _ in range(warmup):
            fn()
        self.sync()
        out, t0 = [], time.perf_counter()
        for _ in range(reps):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                out.append(a.elapsed_time(b) / 1e3)
            else:
                s = time.perf_counter()
                fn()
                out.append(time.perf_counter() - s)
            if time.perf_counter() - t0 > budget_s:
                break
        return out


def autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return 0


def peak_mb(device, base: int):
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    return round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)


# ------------------------------------------------------------------------------ correctness
def _impls(op):
    """(chunked, reference, {fast backend name: "module:function"})."""
    from proxy_models.ops import retention, rwkv7, selective_scan, ssd
    base = "proxy_models.ops"
    table = {"ssd": (ssd.ssd_chunked, ssd.ssd_naive,
                     {"fla-chunk": f"{base}.ssd.fla:ssd_fla", "fla-parallel": f"{base}.ssd.fla:ssd_fla_parallel"}),
             "retention": (retention.retention_chunked, retention.retention_naive,
                           {"fla-chunk": f"{base}.retention.fla:retention_fla"}),
             "rwkv7": (rwkv7.rwkv7_chunked, rwkv7.rwkv7_naive, {"triton-scan": f"{base}.rwkv7.scan_triton:rwkv7_triton_scan",
                                                                 "triton": f"{base}.rwkv7.triton:rwkv7_triton",
                                                                 "fla-chunk": f"{base}.rwkv7.fla:rwkv7_fla"}),
             "selective_scan": (selective_scan.selective_scan_chunked, selective_scan.selective_scan_naive,
                                {"triton": f"{base}.selective_scan.triton:selective_scan_triton"})}
    return table[op]


def correctness(device, ops) -> dict:
    """Chunked torch vs the sequential reference (fp32), and every fast path the backends would
    pick here vs chunked torch (bf16 vs fp32, forward and forward+backward); a failing fast path
    is disabled for the rest of the run (the modules' own self-test would do the same)."""
    import importlib
    out = {}
    for op in ops:
        chunked, naive, fast_paths = _impls(op)
        rec = {}
        err = selftest.compare(op, chunked, naive, device, True, fn_dtype=torch.float32)
        rec["torch-chunked_vs_reference_fp32"] = {"max_rel_err": err, "ok": err < 1e-3}
        for need_grad in (False, True):
            name = dispatch.choice(op, device, torch.bfloat16, need_grad)
            if name == dispatch.TORCH or name not in fast_paths:
                continue
            key = f"{name}_{'fwd+bwd' if need_grad else 'fwd'}_bf16_vs_torch-chunked_fp32"
            try:
                mod, _, attr = fast_paths[name].partition(":")
                fast = getattr(importlib.import_module(mod), attr)
                t0 = time.perf_counter()
                err = selftest.compare(op, fast, chunked, device, need_grad)
                ok = err <= selftest.TOLERANCE
                # the first call in the process compiles (and, with fla's autotuning, tunes) the kernels
                rec[key] = {"max_rel_err": err, "ok": ok, "first_call_s": round(time.perf_counter() - t0, 1)}
            except Exception as exc:  # noqa: BLE001 - a failing kernel is a result, not a crash
                ok = False
                msg = str(exc).splitlines()[0][:300] if str(exc) else ""
                rec[key] = {"error": f"{type(exc).__name__}: {msg}", "ok": False}
            if not ok:
                dispatch.disable(op, name, "benchmark correctness check")
                rec[key]["action"] = f"disabled {name} for {op}; torch-chunked runs instead"
        out[op] = rec
    return out


# ------------------------------------------------------------------------------------ cases
def _fill_state(state, context: int):
    """A decoding state as it is after `context` tokens: a KV cache of that length, or (recurrent)
    the same fixed-size tensors with random contents."""
    if isinstance(state, dict):
        out = {}
        for k, v in state.items():
            if k in ("k", "v") and torch.is_tensor(v) and v.dim() == 4 and v.shape[2] == 0:
                B, H, _, P = v.shape
                out[k] = torch.randn(B, H, context, P, device=v.device, dtype=v.dtype)
            elif torch.is_tensor(v):
                out[k] = torch.randn_like(v) * 0.1 if v.is_floating_point() else v
            elif k == "pos":
                out[k] = context
            else:
                out[k] = v
        return out
    if torch.is_tensor(state):
        return torch.randn_like(state) * 0.1
    return type(state)(_fill_state(s, context) for s in state)


def _nbytes(state) -> int:
    if torch.is_tensor(state):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_nbytes(v) for v in state)
    return 0


def run_case(kind, name, T, cfg, device, clock, predicted_s, force: str | None = None,
             spec: dict | None = None):
    rec = {"primitive": name, "mode": kind, "T": T}
    if force:
        rec["forced"] = force
    if spec:
        rec["spec"] = spec
    if predicted_s is not None and predicted_s > cfg["budget_s"]:
        rec["skipped"] = ("overall time limit reached" if math.isinf(predicted_s)
                          else f"predicted {predicted_s:.1f}s per call > budget {cfg['budget_s']:.0f}s")
        return rec
    with (dispatch.forced(OPS[name], force) if force else contextlib.nullcontext()):
        return _run_case(rec, kind, name, T, cfg, device, clock, spec or {})


def _run_case(rec, kind, name, T, cfg, device, clock, spec):
    d, B = cfg["d_model"], cfg["batch"]
    torch.manual_seed(0)
    m = make_module(name, d, device, **spec)
    ctx = Ctx(v_first=None)
    try:
        with hard_timeout(cfg["budget_s"] * 1.5 + 30):
            base = reset_peak(device)
            if kind == "train":
                x = torch.randn(B, T, d, device=device, requires_grad=True)
                gy = torch.randn(B, T, d, device=device)

                def fn():
                    # as a training step: gradients start from None (optimizer.zero_grad()), so
                    # the backward writes them instead of adding into last step's (a kernel per
                    # parameter, which would charge primitives for their parameter count)
                    m.zero_grad(set_to_none=True)
                    x.grad = None
                    with autocast(device):
                        y = m(x, Ctx())
                    y.backward(gy.to(y.dtype))
                times = clock.time(fn, cfg["reps"], budget_s=cfg["budget_s"])
            elif kind == "prefill":
                x = torch.randn(B, T, d, device=device)

                def fn():
                    with torch.no_grad(), autocast(device):
                        m(x, Ctx())
                times = clock.time(fn, cfg["reps"], budget_s=cfg["budget_s"])
            else:  # decode
                dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
                state = _fill_state(m.init_state(B, device, dtype), T)  # counted in the peak
                rec["state_bytes"] = _nbytes(state)
                x = torch.randn(B, d, device=device)
                steps = cfg["decode_steps"]

                def fn():
                    with torch.no_grad(), autocast(device):
                        s = state
                        for _ in range(steps):
                            _, s = m.step(x, s, Ctx())
                times = [t / steps for t in clock.time(fn, max(2, cfg["reps"] // 3), budget_s=cfg["budget_s"])]
            rec["peak_mem_mb"] = peak_mb(device, base)
    except CaseTimeout as exc:
        rec["skipped"] = f"timeout ({exc})"
        return rec
    except torch.OutOfMemoryError:
        rec["skipped"] = "out of memory"
        return rec
    except Exception as exc:  # noqa: BLE001 - one broken case is a result; the others still run
        msg = str(exc).splitlines()[0][:300] if str(exc) else ""
        rec["skipped"] = f"error {type(exc).__name__}: {msg}"
        return rec
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    med = statistics.median(times)
    rec["ms"] = round(med * 1e3, 4)
    rec["reps"] = len(times)
    rec["tokens_per_s"] = round(B * (T if kind != "decode" else 1) / med, 1)
    rec["backend"] = getattr(m, "backend", "?")
    if kind == "decode" and name in OPS:
        rec["backend"] = "step (plain PyTorch)"
    return rec


# ----------------------------------------------------------------------------------- report
def _get(results, name, kind, T, field):
    for r in results:
        if r["primitive"] == name and r["mode"] == kind and r["T"] == T:
            return r.get(field)
    return None


def _fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def _cell(res, p, kind, T):
    ms = _get(res, p, kind, T, "ms")
    if ms is not None:
        return _fmt(ms, 3)
    why = _get(res, p, kind, T, "skipped")
    return "skipped" if why else "-"


def summary(report) -> str:
    cfg, res = report["settings"], report["results"]
    prims = report["primitives"]
    tT, pT, dT = cfg["train_T"], cfg["prefill_T"], cfg["decode_T"]
    lines = [f"### Primitives on {report['device']} (d_model {cfg['d_model']}, batch {cfg['batch']}, "
             f"{'bf16 autocast' if report['device_type'] == 'cuda' else 'fp32'}; torch {report['torch']}, "
             f"triton {report['triton']}, fla {report['fla']})", ""]
    head = (["primitive", "backend (train)"] + [f"fwd+bwd ms T={t}" for t in tT]
            + [f"peak MB T={tT[-1]}"] + [f"prefill ms T={t}" for t in pT]
            + [f"decode tok/s ctx={t}" for t in dT] + [f"decode MB ctx={t}" for t in dT])
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for p in prims:
        row = [p, _fmt(_get(res, p, "train", tT[0], "backend"))]
        row += [_cell(res, p, "train", t) for t in tT]
        row += [_fmt(_get(res, p, "train", tT[-1], "peak_mem_mb"), 0)]
        row += [_cell(res, p, "prefill", t) for t in pT]
        row += [_fmt(_get(res, p, "decode", t, "tokens_per_s"), 0) for t in dT]
        row += [_fmt(_get(res, p, "decode", t, "peak_mem_mb"), 1) for t in dT]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Ratios (targets: fwd+bwd vs SDPA at the middle T <= 3; prefill growth over the last "
              "4x of T <= 4.5; decode memory flat in context):", ""]
    mid = tT[len(tT) // 2] if len(tT) > 2 else tT[-1]
    head = ["primitive", f"fwd+bwd / SDPA T={mid}", f"prefill T={pT[-1]} / T={pT[-2]}",
            f"decode MB ctx={dT[-1]} / ctx={dT[0]}"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    sdpa = _get(res, "attention", "train", mid, "ms")
    for p in prims:
        t = _get(res, p, "train", mid, "ms")
        a, b = _get(res, p, "prefill", pT[-1], "ms"), _get(res, p, "prefill", pT[-2], "ms")
        m0, m1 = _get(res, p, "decode", dT[0], "peak_mem_mb"), _get(res, p, "decode", dT[-1], "peak_mem_mb")
        row = [p, _fmt(t / sdpa if t and sdpa else None), _fmt(a / b if a and b else None),
               _fmt(m1 / m0 if m0 and m1 else None)]
        lines.append("| " + " | ".join(row) + " |")
    alts = report.get("alternatives") or []
    if alts:
        lines += ["", "Every backend of each recurrent primitive (forced; 'ran' is what actually ran: a fast path "
                  "that fails its self-test falls back to torch-chunked):", "",
                  "| primitive | forced | mode | T | ms | ran |", "|---|---|---|---|---|---|"]
        for r in alts:
            ms = _fmt(r.get("ms"), 3) if r.get("ms") is not None else ("skipped" if r.get("skipped") else "-")
            lines.append(f"| {r['primitive']} | {r['forced']} | {r['mode']} | {r['T']} | {ms} | {r.get('backend', '-')} |")
    var = report.get("variants") or []
    if var:
        lines += ["", "Spec variants of the PyTorch forms (forced torch-chunked):", "",
                  "| primitive | spec | mode | T | ms |", "|---|---|---|---|---|"]
        for r in var:
            ms = _fmt(r.get("ms"), 3) if r.get("ms") is not None else ("skipped" if r.get("skipped") else "-")
            lines.append(f"| {r['primitive']} | {r.get('spec')} | {r['mode']} | {r['T']} | {ms} |")
    first = [f"{op} {k.split('_')[0]} {k.split('_')[1]}: {v['first_call_s']} s"
             for op, checks in report["correctness"].items() for k, v in checks.items() if "first_call_s" in v]
    if first:
        lines += ["", "First call of each fast path (compile" + (" + autotune" if report.get("fla_autotune") == "full" else "")
                  + "): " + "; ".join(first)]
    bad = [f"{op}: {k}" for op, checks in report["correctness"].items() for k, v in checks.items() if not v.get("ok")]
    lines += ["", "Correctness checks: " + ("all passed" if not bad else "FAILED " + "; ".join(bad))]
    return "\n".join(lines)


def versions():
    try:
        import triton
        tv = triton.__version__
    except Exception:  # noqa: BLE001
        tv = None
    fv = None
    if torch.cuda.is_available() and tv:
        try:
            import fla
            fv = getattr(fla, "__version__", "?")
        except Exception:  # noqa: BLE001
            fv = None
    return tv, fv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CPU, about a minute)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--primitives", default=",".join(PRIMITIVES))
    ap.add_argument("--fla", action="store_true",
                    help="allow fla's Triton kernels (their first call autotunes for minutes; off in trials)")
    ap.add_argument("--fla-autotune", choices=("one", "full"), default="one",
                    help="with --fla: one launch config per kernel (default) or fla's own autotuning")
    ap.add_argument("--rwkv7-solve", choices=("trsm", "doubling"), default=None,
                    help="how the RWKV-7 PyTorch form applies its triangular inverse (default: the library's)")
    ap.add_argument("--tf32", action="store_true",
                    help="fp32 matmuls on tensor cores (TF32); the recurrent forms' chunk algebra is fp32")
    ap.add_argument("--torch-only", action="store_true",
                    help="disable the fla and Triton paths (measure the chunked PyTorch forms)")
    ap.add_argument("--budget", type=float, default=None, help="seconds per case")
    ap.add_argument("--max-minutes", type=float, default=6.0,
                    help="after this, remaining cases are recorded as skipped")
    ap.add_argument("--no-alternatives", action="store_true",
                    help="skip the per-backend and spec-variant comparisons (GPU)")
    ap.add_argument("--alternatives", action="store_true",
                    help="run the per-backend comparison on a CPU too (only torch-chunked can run there)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/primitives-<device>.json)")
    args = ap.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = dict(QUICK if args.quick else FULL)
    if args.budget:
        cfg["budget_s"] = args.budget
    prims = [p.strip() for p in args.primitives.split(",") if p.strip()]
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine() or "cpu")
    slug = re.sub(r"[^a-z0-9]+", "-", dev_name.lower()).strip("-") + ("-quick" if args.quick else "") \
        + ("-torch-only" if args.torch_only else "") + ("-fla" if args.fla else "")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"primitives-{slug}.json"
    tv, fv = versions()
    from proxy_models import backends
    backends.set_fla_enabled(args.fla)
    from proxy_models.ops.rwkv7 import chunked as rwkv7_chunked_mod
    if args.rwkv7_solve:
        rwkv7_chunked_mod.SOLVE = args.rwkv7_solve
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    from proxy_models.ops import fla_launch
    fla_launch.set_mode(args.fla_autotune)
    if args.torch_only:
        for op in OPS.values():
            for n in ("fla-chunk", "triton"):
                dispatch.disable(op, n)
    clock = Clock(device)
    t_start = time.perf_counter()
    print(f"device {dev_name}, torch {torch.__version__}, triton {tv}, fla {fv}", flush=True)
    checks = correctness(device, [OPS[p] for p in prims if p in OPS])
    print(json.dumps(checks, indent=1), flush=True)

    results = []
    for kind, Ts in (("train", cfg["train_T"]), ("prefill", cfg["prefill_T"]), ("decode", cfg["decode_T"])):
        for p in prims:
            prev = None
            for T in Ts:
                predicted = None
                if prev and prev.get("ms") and kind != "decode":
                    # linear growth (optimistic for attention): skip only what surely cannot fit
                    # two warm-ups and one timed call; the hard timeout catches the rest
                    predicted = prev["ms"] / 1e3 * (T / prev["T"]) * 3
                if time.perf_counter() - t_start > args.max_minutes * 60:
                    predicted = math.inf  # out of overall time: record the case as skipped
                rec = run_case(kind, p, T, cfg, device, clock, predicted)
                results.append(rec)
                print(json.dumps(rec), flush=True)
                prev = rec
    alternatives = []
    if args.alternatives or (device.type == "cuda" and not args.no_alternatives):
        for kind, T in (("train", cfg["train_T"][len(cfg["train_T"]) // 2]),
                        ("prefill", cfg["prefill_T"][len(cfg["prefill_T"]) // 2])):
            for p in prims:
                for b in ALTERNATIVES.get(p, ()):
                    if b in FLA_BACKENDS and not args.fla:
                        continue
                    late = time.perf_counter() - t_start > args.max_minutes * 60
                    rec = run_case(kind, p, T, cfg, device, clock, math.inf if late else None, force=b)
                    alternatives.append(rec)
                    print(json.dumps(rec), flush=True)
    variants = []
    if (device.type == "cuda" and not args.no_alternatives) or args.alternatives:
        for kind, T in (("train", cfg["train_T"][len(cfg["train_T"]) // 2]),
                        ("prefill", cfg["prefill_T"][len(cfg["prefill_T"]) // 2])):
            for p in prims:
                for spec in VARIANTS.get(p, ()):
                    late = time.perf_counter() - t_start > args.max_minutes * 60
                    rec = run_case(kind, p, T, cfg, device, clock, math.inf if late else None,
                                   force=dispatch.TORCH if p in OPS else None, spec=spec)
                    variants.append(rec)
                    print(json.dumps(rec), flush=True)
    from proxy_models.ops import fla_launch
    report = {"device": dev_name, "device_type": device.type, "torch": torch.__version__, "triton": tv,
              "fla": fv, "python": platform.python_version(), "settings": cfg, "primitives": prims,
              "torch_only": args.torch_only, "correctness": checks, "results": results,
              "alternatives": alternatives, "variants": variants,
              "fla_autotune": fla_launch.mode() if args.fla else None,
              "rwkv7_solve": rwkv7_chunked_mod.SOLVE, "tf32": bool(args.tf32),
              "fla_launch_configs": dict(fla_launch.CHOSEN),
              "wall_s": round(time.perf_counter() - t_start, 1)}
    text = summary(report)
    report["summary_markdown"] = text
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(text)
    print(f"\nwrote {out} in {report['wall_s']}s")


if __name__ == "__main__":
    main()
