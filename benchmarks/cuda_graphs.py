"""CUDA graphs in the trainer: how much faster a proxy trains when each task's step is captured
once and replayed (evaluators/trainer.py), on the study's real task models.

    python benchmarks/cuda_graphs.py --out benchmarks/results/cuda_graphs-<device>.json
    python benchmarks/cuda_graphs.py --wide 4 --steps 40 --full hymba      # what the GPU run used

For each architecture (the examples in examples/architectures, then `--wide` feasible samples of
examples/spaces/wide.yaml), at the fidelity's task models, batch sizes and sequence lengths
(`standard` by default): every task model is built as `evaluate()` builds it, and the task steps
advance round by round as `train()` runs them (one step of each task per round), `--steps`
rounds, once eagerly and once with CUDA graphs. Reported: milliseconds per round after the
first `GRAPH_WARMUP + 1` rounds (warm-up and capture excluded), the capture round's time, the
ratio, the peak of allocated memory, and each task's last training loss both ways (the same training, so about the same
losses). `--full NAME`: also one whole `evaluate()` of that example both ways (wall time,
quality, training tokens/s). Results: JSON with the device name."""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:  # search_throughput.py, when imported from elsewhere
    sys.path.append(str(ROOT / "benchmarks"))

import torch  # noqa: E402

from evaluators import evaluate  # noqa: E402
from evaluators.evaluate import _build_runs  # noqa: E402
from evaluators.fidelity import Fidelity  # noqa: E402
from evaluators.trainer import GRAPH_WARMUP  # noqa: E402
from search_space import Architecture  # noqa: E402
from search_throughput import wide_archs  # noqa: E402


def rounds(arch: Architecture, fid: Fidelity, dev: torch.device, n: int) -> dict:
    """`n` rounds of every task model's step; per-round times, and the last losses."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    runs, _, _ = _build_runs(arch, fid, dev, seed=0, lr=fid.lr, wd=fid.weight_decay)
    times = []
    for _ in range(n):
        torch.cuda.synchronize(dev)
        t = time.perf_counter()
        for r in runs:
            r.step()
        torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t)
    out = {"round_ms": round(1e3 * statistics.median(times[GRAPH_WARMUP + 1:]), 3),
           "capture_round_ms": round(1e3 * times[GRAPH_WARMUP], 1),
           "first_round_ms": round(1e3 * times[0], 1),
           "peak_allocated_mib": round(torch.cuda.max_memory_allocated(dev) / 2**20),
           "loss": {r.name: round(r.take_loss(), 4) for r in runs}}
    if fid.cuda_graphs:
        out["captured"] = [r.name for r in runs if r.graph]
        out["eager"] = {r.name: r.graph_error for r in runs if not r.graph}
    del runs
    torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fidelity", default="standard")
    ap.add_argument("--steps", type=int, default=40, help="rounds per architecture and mode")
    ap.add_argument("--wide", type=int, default=4, help="feasible samples of the wide space")
    ap.add_argument("--examples", default="all", help="comma-separated example names, or all, or none")
    ap.add_argument("--full", help="an example to evaluate() whole, both ways")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        sys.exit("benchmarks/cuda_graphs.py: needs a CUDA device (CUDA graphs are CUDA only)")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    fid = Fidelity.resolve(args.fidelity)
    archs: list[tuple[str, Architecture]] = []
    ex = sorted((ROOT / "examples" / "architectures").glob("*.yaml"))
    if args.examples != "none":
        keep = None if args.examples == "all" else set(args.examples.split(","))
        archs += [(p.stem, Architecture.from_yaml(p.read_text())) for p in ex if keep is None or p.stem in keep]
    archs += [(f"wide{i}", a) for i, a in enumerate(wide_archs(args.wide, seed=0))]
    res = {"benchmark": "cuda_graphs", "device": torch.cuda.get_device_name(dev), "torch": torch.__version__,
           "python": platform.python_version(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "fidelity": fid.name, "rounds": args.steps, "tasks": [t.name for t in fid.tasks] + (["text"] if fid.text else []),
           "archs": {}}
    for name, arch in archs:
        row = {"d_model": arch.d_model, "blocks": len(arch.layout()), "params": arch.param_count(vocab_size=256)}
        try:
            row["eager"] = rounds(arch, fid.model_copy(update={"cuda_graphs": False}), dev, args.steps)
            row["graphs"] = rounds(arch, fid.model_copy(update={"cuda_graphs": True}), dev, args.steps)
            row["speedup"] = round(row["eager"]["round_ms"] / row["graphs"]["round_ms"], 2)
        except Exception as exc:  # noqa: BLE001 - one broken architecture must not end the run
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            torch.cuda.empty_cache()
        res["archs"][name] = row
        print(name, json.dumps(row), flush=True)
    sp = [r["speedup"] for r in res["archs"].values() if "speedup" in r]
    res["speedup_median"] = round(statistics.median(sp), 2) if sp else None
    res["speedup_range"] = [min(sp), max(sp)] if sp else None
    if args.full:
        arch = Architecture.from_yaml((ROOT / "examples" / "architectures" / f"{args.full}.yaml").read_text())
        full = {}
        for mode in (False, True):
            r = evaluate(arch, fid.model_copy(update={"cuda_graphs": mode}), device=dev, seed=0)
            full["graphs" if mode else "eager"] = {
                "status": r.status, "error": r.error, "wall_s": round(r.wall_time_s, 2),
                "quality": r.metrics.get("quality"), "train_tokens_per_s": r.metrics.get("train_tokens_per_s"),
                "peak_memory_mib": r.metrics.get("peak_memory_mib"), "cuda_graphs": r.extra.get("cuda_graphs")}
            print("full", mode, json.dumps(full["graphs" if mode else "eager"]), flush=True)
        res["full_trial"] = {"arch": args.full, **full}
    print(json.dumps({k: res[k] for k in ("device", "speedup_median", "speedup_range")}))
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / \
        f"cuda_graphs-{res['device'].lower().replace(' ', '-')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print("->", out)


if __name__ == "__main__":
    main()
