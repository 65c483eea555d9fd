"""How many architectures a search evaluates per GPU-hour, with trials sharing the GPU.

Everything goes through the real orchestrator (`orchestrator.search.run_search`: Ray Tune,
Optuna, the store in a temporary SQLite file), each phase in its own process with its own
embedded Ray instance and a hard deadline:

    packed   N architectures sampled from examples/spaces/wide.yaml (feasible under the space's
             constraints), `resources.gpu: auto` (trials per GPU from measured memory), seed 0
    serial   the first S of them, one trial at a time (gpu 1, concurrency 1), seed 0
    seed     the first M of them packed again with seed 1: the seed-to-seed spread that the
             packed-vs-serial quality difference is judged against
    multi    (--gpus K > 1) K*N architectures packed on K GPUs, and `packed` on one GPU of the
             same host with 1/K of its CPUs: the scaling factor

The architectures are written as YAML files and enqueued (`enqueue:` in the study config), so
every phase evaluates exactly the same ones in the same order. A phase that reaches its
deadline gets SIGINT (Tune ends the run gracefully), then SIGTERM/SIGKILL: trials still
running are lost work and count against the rate, as they would in a real search that ended.

Reported per phase (JSON in benchmarks/results/search_throughput-<device>.json, a markdown
summary printed): architectures completed per GPU-hour over the phase's whole wall time
(Ray start and the memory probe included) and over its steady part (first trial start to last
trial end); GPU busy fraction (nvidia-smi utilization sampled every 200 ms, mean over the
phase after `--warmup-s` from the first trial's start); peak memory per trial; trials per GPU;
quality differences.

    GPU, one GPU (at most ~8.5 minutes):
      timeout 570 python3 benchmarks/search_throughput.py --gpus 1 --out $OUT 2>&1 | tee $OUT/log
    GPU, two GPUs of one host (at most ~7.5 minutes):
      timeout 540 python3 benchmarks/search_throughput.py --gpus 2 --out $OUT 2>&1 | tee $OUT/log
    CPU check of the script (a few minutes on 2 cores):
      python benchmarks/search_throughput.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# smoke-sized tasks for --quick (CPU): the same flow, seconds per trial
QUICK_FIDELITY = {"preset": "smoke", "overrides": {
    "d_model": 64,
    "tasks": [{"name": "mqar", "params": {"vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
               "tokens": 12 * 8 * 16, "batch_size": 8}],
    "text": None, "efficiency": {"measure": False}, "report_every": 6,
    "eval_examples": 16, "report_eval_examples": 8}}


# ----------------------------------------------------------------------------------------------
# GPU utilization sampler
class GpuSampler:
    """`nvidia-smi ... -lms 200` in the background; samples are (unix time, gpu index, util %, MiB)."""

    def __init__(self, period_ms: int = 200):
        self.samples: list[tuple[float, int, float, float]] = []
        self.proc = None
        self.error = None
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=timestamp,index,utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-lms", str(period_ms)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except (FileNotFoundError, PermissionError) as e:
            self.error = f"nvidia-smi not available: {e}"
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 4:
                continue
            try:
                ts = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()  # local time
            except ValueError:  # another timestamp format: the time we read the line is close enough
                ts = time.time()
            try:
                self.samples.append((ts, int(parts[1]), float(parts[2]), float(parts[3])))
            except ValueError:  # "[N/A]" and the like
                continue

    def window(self, t0: float, t1: float, gpus: list[int]) -> dict:
        xs = [s for s in self.samples if t0 <= s[0] <= t1 and s[1] in gpus]
        if not xs:
            return {"busy": None, "samples": 0, "max_memory_used_mib": None}
        return {"busy": statistics.fmean(s[2] for s in xs) / 100.0, "samples": len(xs),
                "max_memory_used_mib": max(s[3] for s in xs)}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def gpu_names() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
        return [x.strip() for x in out.stdout.splitlines() if x.strip()] if out.returncode == 0 else []
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []


# ----------------------------------------------------------------------------------------------
# architectures
def wide_archs(n: int, seed: int, d_model: int | None = None) -> list:
    """n distinct feasible architectures of the wide space, in draw order; with `d_model`, only
    those that can be rescaled to it (head sizes must divide it). Also benchmarks/cuda_graphs.py's."""
    from search_space.errors import UserError
    from search_space.space import SearchSpace
    space = SearchSpace.from_yaml(ROOT / "examples" / "spaces" / "wide.yaml")
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        arch = space.random(rng)
        if arch.fingerprint() in seen or not space.feasible(arch):
            continue
        if d_model:
            try:
                arch.scaled(d_model=d_model)
            except (UserError, ValueError):
                continue
        seen.add(arch.fingerprint())
        out.append(arch)
    return out


def sample_archs(n: int, seed: int, out_dir: Path, d_model: int | None = None) -> list[Path]:
    """`wide_archs` as YAML files (trial order)."""
    paths = []
    for i, arch in enumerate(wide_archs(n, seed, d_model)):
        p = out_dir / f"arch{i:03d}.yaml"
        p.write_text(arch.to_yaml())
        paths.append(p)
    return paths


def study_config(name: str, db: str, archs: list[Path], *, fidelity, gpu, seed: int, max_per_gpu: int,
                 concurrency: int | None, num_cpus: int | None) -> dict:
    return {"study": name, "storage": db, "space": str(ROOT / "examples" / "spaces" / "wide.yaml"),
            "objectives": ["quality", {"params_total": "minimize"}], "sampler": "random",
            "trials": len(archs), "concurrency": concurrency, "seed": seed, "num_cpus": num_cpus,
            "resources": {"cpu": 1, "gpu": gpu, "max_per_gpu": max_per_gpu},
            "fidelity": fidelity, "enqueue": [str(p) for p in archs]}


# ----------------------------------------------------------------------------------------------
# a phase: a child process running the search, with a deadline
def run_child(spec_path: str) -> int:
    """Child side: run one search from a spec file."""
    from rich.console import Console

    from orchestrator.config import load_config_data
    from orchestrator.search import run_search

    spec = json.loads(Path(spec_path).read_text())
    cfg = load_config_data(spec["config"])
    out = run_search(cfg, console=Console(force_terminal=False, width=120), live=False)
    print(f"phase done: {out.complete} complete, {out.failed} failed, {out.pruned} pruned in {out.wall_s:.1f} s",
          flush=True)
    return 0


def run_phase(name: str, cfg: dict, *, gpus: list[int] | None, deadline_s: float, work: Path, out_dir: Path,
              sampler: GpuSampler | None, warmup_s: float) -> dict:
    from storage import Store

    spec = work / f"{name}.json"
    spec.write_text(json.dumps({"config": cfg}))
    env = dict(os.environ)
    env["HYBRID_NAS_RAY_RESULTS"] = str(work / "ray_results")
    env["PYTHONUNBUFFERED"] = "1"
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    log_path = out_dir / f"search_throughput-{name}.log"
    t0 = time.time()
    print(f"[{name}] {cfg['trials']} trials, gpu {cfg['resources']['gpu']}, deadline {deadline_s:.0f} s, "
          f"log {log_path}", flush=True)
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(spec)], env=env,
                                 stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)
        stopped = None
        t_stop = None
        try:
            child.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            stopped, t_stop = "deadline", time.time()
            # SIGINT: Tune ends the run gracefully; then escalate
            for sig, grace in ((signal.SIGINT, 25), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(child.pid, sig) if sig != signal.SIGINT else child.send_signal(sig)
                    child.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
    t_end = time.time()
    # anything of this phase still alive (Ray workers) must not run into the next phase
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    store = Store(cfg["storage"], create=False)
    rows = []
    try:
        attrs = store.get_study(cfg["study"]).attrs
    except Exception:  # the child never got as far as creating the study
        attrs = {}
    for n in range(cfg["trials"]):
        try:
            t = store.trial(cfg["study"], n)
        except Exception:
            continue
        rows.append(t)
    done = [t for t in rows if t["status"] == "complete"]
    failed = [t for t in rows if t["status"] == "failed"]
    starts = [t["started_at"].timestamp() for t in rows if t.get("started_at")]
    ends = [t["finished_at"].timestamp() for t in rows if t.get("finished_at") and t["status"] in ("complete", "failed")]
    n_gpu = max(1, len(gpus or []))
    unfinished = cfg["trials"] - len(done) - len(failed)
    # all trials done: the search's time ends with the last one; otherwise at the deadline (the
    # trials still running are lost work, as in a search that ends there)
    wall = (max(ends) if ends and unfinished == 0 else (t_stop or t_end)) - t0
    steady = (max(ends) - min(starts)) if ends and starts else None
    res = {"phase": name, "trials": cfg["trials"], "complete": len(done), "failed": len(failed),
           "unfinished": unfinished, "stopped_by": stopped, "gpus": n_gpu,
           "wall_s": wall, "steady_s": steady, "child_rc": child.returncode,
           "packing": attrs.get("packing"),
           "archs_per_gpu_hour": len(done) * 3600.0 / (wall * n_gpu) if wall > 0 else None,
           "steady_archs_per_gpu_hour": (len(done) * 3600.0 / (steady * n_gpu)) if steady else None,
           "trial_wall_s": [round(float((t.get("metrics") or {}).get("wall_time_s", float("nan"))), 2) for t in done],
           "peak_memory_mib": [round(float((t.get("measured") or {}).get("peak_memory_mib", float("nan"))), 1)
                               for t in done],
           "shared_device_trials": sorted({(t.get("extra") or {}).get("shared_device_trials") for t in rows
                                           if (t.get("extra") or {}).get("shared_device_trials")}),
           "quality": {t["fingerprint"]: float(t["metrics"]["quality"]) for t in done if "quality" in (t["metrics"] or {})},
           "errors": sorted({(t.get("error") or "")[:160] for t in failed})[:8],
           "device": sorted({t.get("device") or "" for t in rows})}
    if sampler is not None and sampler.proc is not None and gpus is not None:
        start = (min(starts) if starts else t0) + warmup_s
        end = max(ends) if ends else t_end
        res["gpu_busy_after_warmup"] = sampler.window(start, end, gpus)
        res["gpu_busy_whole_phase"] = sampler.window(t0, t_end, gpus)
    print(f"[{name}] {len(done)} complete, {len(failed)} failed, {res['unfinished']} unfinished in {wall:.0f} s "
          f"({res['archs_per_gpu_hour'] or 0:.0f} archs/GPU-h)" + (" [deadline]" if stopped else ""), flush=True)
    return res


def quality_comparison(a: dict, b: dict) -> dict:
    shared = sorted(set(a) & set(b))
    diffs = [abs(a[k] - b[k]) for k in shared]
    return {"shared": len(shared), "mean_abs_diff": statistics.fmean(diffs) if diffs else None,
            "max_abs_diff": max(diffs) if diffs else None}


# ----------------------------------------------------------------------------------------------
def device_slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:60] or "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="tiny CPU run of the whole flow")
    ap.add_argument("--gpus", type=int, default=1, help="GPUs of this host to use (>1: also the scaling run)")
    ap.add_argument("--archs", type=int, default=None, help="architectures of the packed run (default 32; quick 4)")
    ap.add_argument("--serial", type=int, default=None, help="of them, run one at a time (default 8; quick 2)")
    ap.add_argument("--seed-archs", type=int, default=None, help="of them, run again with seed 1 (default 4; quick 2)")
    ap.add_argument("--fidelity", default="standard", help="fidelity preset (default standard)")
    ap.add_argument("--token-scale", type=float, default=1.0, help="scale every task's token budget (default 1)")
    ap.add_argument("--d-model", type=int, default=None, help="evaluate the architectures rescaled to this width")
    ap.add_argument("--max-per-gpu", type=int, default=8, help="cap on trials per GPU (gpu: auto)")
    ap.add_argument("--packed-s", type=float, default=None, help="deadline of the packed phase")
    ap.add_argument("--serial-s", type=float, default=None, help="deadline of the one-at-a-time phase")
    ap.add_argument("--seed-s", type=float, default=None, help="deadline of the second-seed phase")
    ap.add_argument("--multi-s", type=float, default=None, help="deadline of the K-GPU phase")
    ap.add_argument("--warmup-s", type=float, default=20.0, help="GPU busy is averaged from this long after the first trial starts")
    ap.add_argument("--out", default=None, help="also write the JSON here (e.g. $OUT)")
    ap.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    a = ap.parse_args(argv)
    if a.child:
        return run_child(a.child)

    t_all = time.time()
    names = [] if a.quick else gpu_names()
    if not a.quick and not names:
        print("no GPU found (nvidia-smi); use --quick for the CPU check", file=sys.stderr)
        return 2
    if not a.quick and a.gpus > len(names):
        print(f"--gpus {a.gpus} but this host has {len(names)}", file=sys.stderr)
        return 2
    ncpu = len(os.sched_getaffinity(0))
    multi = a.gpus > 1
    n_archs = a.archs or (4 if a.quick else 32)
    n_serial = min(n_archs, a.serial if a.serial is not None else (2 if a.quick else 8))
    n_seed = min(n_archs, a.seed_archs if a.seed_archs is not None else (2 if a.quick else 4))
    if a.quick:
        fidelity = QUICK_FIDELITY
        # generous: a busy 2-core machine takes a minute to start Ray and import torch per worker
        deadlines = {"packed": a.packed_s or 300, "serial": a.serial_s or 200, "seed": a.seed_s or 200,
                     "multi": a.multi_s or 300}
    else:
        over = {}
        if a.token_scale != 1.0 or a.d_model:
            from evaluators.fidelity import FIDELITIES
            base = FIDELITIES[a.fidelity]
            if a.token_scale != 1.0:
                over["tasks"] = [{**t.model_dump(), "tokens": max(1, int(t.tokens * a.token_scale))} for t in base.tasks]
                if base.text is not None:
                    over["text"] = {**base.text.model_dump(), "tokens": max(1, int(base.text.tokens * a.token_scale))}
            if a.d_model:
                over["d_model"] = a.d_model
        fidelity = {"preset": a.fidelity, "overrides": over}
        # one GPU: ~9 minutes in all; K GPUs: ~8 minutes (packed on one GPU, then on K)
        # phases end at these deadlines; with Ray start-ups, graceful stops and reading the store
        # the whole run stays under ~8.5 minutes (one GPU) / ~7.5 (K GPUs)
        deadlines = ({"packed": a.packed_s or 190, "multi": a.multi_s or 210} if multi else
                     {"packed": a.packed_s or 250, "serial": a.serial_s or 120, "seed": a.seed_s or 65})
    device = "cpu" if a.quick else names[0]
    sampler = None if a.quick else GpuSampler()
    work = Path(tempfile.mkdtemp(prefix="hnas-throughput-"))
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(a.out) if a.out else work  # phase logs: with the results given --out, else in the temp dir
    log_dir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{work / 'throughput.db'}"
    archs = sample_archs(n_archs * (a.gpus if multi else 1), a.seed, work,
                         d_model=QUICK_FIDELITY["overrides"]["d_model"] if a.quick else a.d_model)
    first = archs[:n_archs]
    gpu_auto = "auto"
    cpus_per_gpu = max(1, ncpu // max(1, len(names))) if names else None
    phases: dict[str, dict] = {}
    common = dict(work=work, out_dir=log_dir, sampler=sampler, warmup_s=a.warmup_s)
    one = None if a.quick else [0]

    def report(final: bool) -> dict:
        """Summary and JSON of the phases so far (written after every phase: a run cut short keeps them)."""
        p = phases["packed"]
        summary = {"packed_archs_per_gpu_hour": p["archs_per_gpu_hour"],
                   "packed_steady_archs_per_gpu_hour": p["steady_archs_per_gpu_hour"],
                   "trials_per_gpu": (p.get("packing") or {}).get("trials_per_gpu"),
                   "gpu_busy_after_warmup": (p.get("gpu_busy_after_warmup") or {}).get("busy")}
        if "serial" in phases:
            s = phases["serial"]
            summary["serial_archs_per_gpu_hour"] = s["archs_per_gpu_hour"]
            summary["speedup_over_serial"] = (p["archs_per_gpu_hour"] / s["archs_per_gpu_hour"]
                                              if s["archs_per_gpu_hour"] else None)
            summary["quality_packed_vs_serial"] = quality_comparison(p["quality"], s["quality"])
            summary["quality_seed0_vs_seed1"] = quality_comparison(p["quality"], (phases.get("seed") or {}).get("quality", {}))
            qa, qs = summary["quality_packed_vs_serial"], summary["quality_seed0_vs_seed1"]
            summary["quality_within_seed_spread"] = (qa["mean_abs_diff"] <= qs["mean_abs_diff"]
                                                     if qa["mean_abs_diff"] is not None and qs["mean_abs_diff"] is not None
                                                     else None)
        if "multi" in phases:
            m = phases["multi"]
            summary["multi_archs_per_hour"] = (m["archs_per_gpu_hour"] or 0) * m["gpus"]
            summary["scaling_over_one_gpu"] = ((m["archs_per_gpu_hour"] or 0) * m["gpus"] / p["archs_per_gpu_hour"]
                                               if p["archs_per_gpu_hour"] else None)
        out = {"benchmark": "search_throughput", "device": device, "gpus": names[:a.gpus] if names else [],
               "host": platform.node(), "cpus": ncpu, "quick": a.quick,
               "fidelity": fidelity if a.quick else {"preset": a.fidelity, "token_scale": a.token_scale, "d_model": a.d_model},
               "space": "examples/spaces/wide.yaml", "archs": n_archs, "serial_archs": n_serial, "seed_archs": n_seed,
               "deadlines_s": deadlines, "warmup_s": a.warmup_s, "total_wall_s": time.time() - t_all,
               "gpu_sampler": None if sampler is None else (sampler.error or f"nvidia-smi, {len(sampler.samples)} samples"),
               "summary": summary, "phases": phases, "partial": not final,
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "notes": ["rates count completed trials over the phase's wall time (Ray start and memory probe included); "
                         "steady rates over first trial start to last trial end",
                         "the serial phase runs the first architectures of the same list, one at a time",
                         "measured speed metrics of packed trials were taken on a shared GPU"]}
        slug = "cpu_quick" if a.quick else device_slug(device) + (f"_x{a.gpus}" if multi else "")
        text = json.dumps(out, indent=1, default=str)
        (res_dir / f"search_throughput-{slug}.json").write_text(text)
        if a.out:
            (Path(a.out) / f"search_throughput-{slug}.json").write_text(text)
        return out

    try:
        if a.quick:
            # CPU: gpu auto finds no GPU and falls back (the note is in the phase log); two at a time
            phases["packed"] = run_phase("packed", study_config("packed", db, first, fidelity=fidelity, gpu=gpu_auto,
                                                                seed=0, max_per_gpu=a.max_per_gpu, concurrency=2,
                                                                num_cpus=2),
                                         gpus=None, deadline_s=deadlines["packed"], **common)
        else:
            phases["packed"] = run_phase("packed", study_config(
                "packed", db, first, fidelity=fidelity, gpu=gpu_auto, seed=0, max_per_gpu=a.max_per_gpu,
                concurrency=None, num_cpus=cpus_per_gpu if multi else None),
                gpus=one, deadline_s=deadlines["packed"], **common)
        report(final=False)
        frac = (phases["packed"].get("packing") or {}).get("gpu_fraction") or 0.0
        if multi:
            phases["multi"] = run_phase("multi", study_config(
                "multi", db, archs, fidelity=fidelity, gpu=gpu_auto, seed=0, max_per_gpu=a.max_per_gpu,
                concurrency=None, num_cpus=cpus_per_gpu * a.gpus), gpus=list(range(a.gpus)),
                deadline_s=deadlines["multi"], **common)
        else:
            phases["serial"] = run_phase("serial", study_config(
                "serial", db, first[:n_serial], fidelity=fidelity, gpu=0 if a.quick else 1, seed=0,
                max_per_gpu=1, concurrency=1, num_cpus=2 if a.quick else None),
                gpus=one, deadline_s=deadlines["serial"], **common)
            report(final=False)
            phases["seed"] = run_phase("seed", study_config(
                "seed1", db, first[:n_seed], fidelity=fidelity, gpu=(0 if a.quick else (frac or gpu_auto)), seed=1,
                max_per_gpu=a.max_per_gpu, concurrency=2 if a.quick else None, num_cpus=2 if a.quick else None),
                gpus=one, deadline_s=deadlines["seed"], **common)
    finally:
        if sampler is not None:
            sampler.stop()

    out = report(final=True)
    print_markdown(out)
    return 0


def _f(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)


def print_markdown(out: dict) -> None:
    s = out["summary"]
    print(f"\n## search throughput on {out['device']}" + (f" x{len(out['gpus'])}" if len(out['gpus']) > 1 else ""))
    print(f"fidelity {json.dumps(out['fidelity'])}, wide space, {out['archs']} architectures\n")
    print("| phase | trials | complete | failed | unfinished | wall s | archs/GPU-h | steady archs/GPU-h | "
          "trials/GPU | GPU busy after warm-up | median trial s | max peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, p in out["phases"].items():
        busy = (p.get("gpu_busy_after_warmup") or {}).get("busy")
        tw = [x for x in p["trial_wall_s"] if x == x]
        pk = [x for x in p["peak_memory_mib"] if x == x]
        print(f"| {name} | {p['trials']} | {p['complete']} | {p['failed']} | {p['unfinished']} | {p['wall_s']:.0f} | "
              f"{_f(p['archs_per_gpu_hour'])} | {_f(p['steady_archs_per_gpu_hour'])} | "
              f"{_f((p.get('packing') or {}).get('trials_per_gpu'), '{}')} | {_f(busy, '{:.0%}')} | "
              f"{_f(statistics.median(tw) if tw else None, '{:.1f}')} | {_f(max(pk) if pk else None)} |")
    print()
    for k, v in s.items():
        print(f"- {k}: {json.dumps(v, default=str)}")


if __name__ == "__main__":
    sys.exit(main())
