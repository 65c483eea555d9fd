"""Storage benchmark: 100,000 trials in one study.

Measures, on the database given by --url (default: a fresh SQLite file in a temp directory):
- insert: 100k trials through `Store.finish_trials` (multi-row upserts, 1,000 per transaction),
  and the per-trial path (`start_trial` + `finish_trial`, one transaction each) on a sample;
- list: `trials_frame` of all 100k trials;
- Pareto: the 2-objective front of a second, 10,000-trial study ("small"; target < 200 ms, query
  included) and of the 100k study ("all"); the 3-objective front of the small study;
- hypervolume history (2 objectives) of the small and the 100k study.

Writes JSON to benchmarks/results/store-<host>.json (or --out) and prints a summary table.
`--quick` uses 10x fewer trials (for tests and CI). CPU only: no GPU involved.

    python benchmarks/store.py                       # SQLite, 100k trials
    python benchmarks/store.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from search_space import Architecture
from search_space.result import TrialResult
from storage import Store
from storage.engine import hide

OBJ2 = [("quality", "maximize"), ("peak_memory_mib", "minimize")]
OBJ3 = OBJ2 + [("decode_tokens_per_s", "maximize")]


def archs(n: int = 32) -> list[Architecture]:
    mixers = [{"type": "attention", "heads": 4}, {"type": "mamba2"}, {"type": "retention", "heads": 4}]
    return [Architecture.from_dict({"name": f"b{i}", "d_model": 64 + 32 * (i % 4),
                                    "blocks": [{"mixer": mixers[(i + k) % 3]} for k in range(1 + i % 4)]})
            for i in range(n)]


def synthetic(n: int, seed: int):
    """Trials with a realistic trade-off: quality grows with memory, plus noise; 10% failed,
    5% infeasible, a few non-finite values."""
    rng = np.random.default_rng(seed)
    mem = rng.lognormal(4, 0.6, n)
    quality = 1 - np.exp(-mem / 80) + rng.normal(0, 0.05, n)
    decode = 5e4 / mem * rng.uniform(0.5, 1.5, n)
    failed = rng.uniform(size=n) < 0.10
    pool = archs()
    for i in range(n):
        if failed[i]:
            r = TrialResult(status="failed", error="diverged: loss is nan at step 40",
                            metrics={"quality": math.nan}, curves={"train_loss": [(0, 5.0), (40, math.nan)]})
        else:
            r = TrialResult(status="complete", metrics={"quality": float(quality[i]), "peak_memory_mib": float(mem[i]),
                                                        "decode_tokens_per_s": float(decode[i]), "val_bpb": 1.5},
                            task_scores={"mqar": float(quality[i]), "selective_copying": 0.5},
                            curves={"train_loss": [(s, 5.0 / (1 + s / 100)) for s in (0, 100, 200, 300)]},
                            fidelity="low", seed=i, device="cpu", wall_time_s=60.0)
        yield i, r, {"mem": float(mem[i] - 300)}, pool[i % len(pool)]


CPU: dict[str, float] = {}


def timed(fn, repeat: int = 1):
    """Wall times of `repeat` calls; the median CPU time of this process goes to CPU[last key]."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU["_last"] = statistics.median(cpu)
    return out, times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=None, help="database URL (default: SQLite file in a temp dir)")
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--pareto-trials", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=1_000, help="trials written one transaction each")
    ap.add_argument("--quick", action="store_true", help="10x fewer trials")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        a.trials, a.pareto_trials, a.sample = a.trials // 10, a.pareto_trials // 10, a.sample // 10

    tmp = tempfile.mkdtemp(prefix="hnas-bench-")
    store = Store(a.url or f"sqlite:///{tmp}/bench.db")
    tag = f"bench-{os.getpid()}-{int(time.time())}"
    res: dict = {"host": socket.gethostname(), "device": f"cpu: {platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} logical cores (load avg {os.getloadavg()[0]:.1f} at start)",
                 "database": store.dialect, "url": hide(store.url), "python": sys.version.split()[0],
                 "n_trials": a.trials, "n_pareto_trials": a.pareto_trials, "timings_s": {}, "cpu_s": {},
           "note": "timings_s are wall-clock (median where repeated); cpu_s is this process's CPU time "
                   "(the SQLite engine runs in-process; a PostgreSQL server's time is not in it)"}
    T = res["timings_s"]

    big, small, one = f"{tag}-100k", f"{tag}-10k", f"{tag}-single"
    for name in (big, small, one):
        store.create_study(name, "benchmark: true\n", OBJ3, constraints=["mem"])

    _, t = timed(lambda: store.finish_trials(big, synthetic(a.trials, 0)))
    T["insert_bulk_total"] = t[0]
    res["cpu_s"]["insert_bulk_total"] = CPU["_last"]
    res["insert_bulk_trials_per_s"] = a.trials / t[0]
    store.finish_trials(small, synthetic(a.pareto_trials, 1))

    def per_trial():
        for i, r, c, arch in synthetic(a.sample, 2):
            store.start_trial(one, i, arch, fidelity="low", seed=i, node="bench")
            store.finish_trial(one, i, r, c)
    _, t = timed(per_trial)
    T["insert_per_trial_mean"] = t[0] / a.sample
    res["cpu_s"]["insert_per_trial_mean"] = CPU["_last"] / a.sample
    res["insert_per_trial_trials_per_s"] = a.sample / t[0]

    df, t = timed(lambda: store.trials_frame(big), repeat=3)
    T["trials_frame_all_median"] = statistics.median(t)
    res["cpu_s"]["trials_frame_all_median"] = CPU["_last"]
    res["trials_frame_shape"] = list(df.shape)

    front, t = timed(lambda: store.pareto_front(small, OBJ2), repeat=7)
    T["pareto_2d_small_median"], T["pareto_2d_small_max"] = statistics.median(t), max(t)
    res["cpu_s"]["pareto_2d_small_median"] = CPU["_last"]
    res["pareto_2d_small_front_size"] = len(front)
    res["pareto_2d_small_under_200ms"] = statistics.median(t) < 0.200
    front, t = timed(lambda: store.pareto_front(small, OBJ3), repeat=5)
    T["pareto_3d_small_median"] = statistics.median(t)
    res["cpu_s"]["pareto_3d_small_median"] = CPU["_last"]
    res["pareto_3d_small_front_size"] = len(front)
    front, t = timed(lambda: store.pareto_front(big, OBJ2), repeat=3)
    T["pareto_2d_all_median"] = statistics.median(t)
    res["cpu_s"]["pareto_2d_all_median"] = CPU["_last"]

    hv, t = timed(lambda: store.hypervolume_history(small, OBJ2), repeat=3)
    T["hypervolume_history_2d_small_median"] = statistics.median(t)
    res["cpu_s"]["hypervolume_history_2d_small_median"] = CPU["_last"]
    hv, t = timed(lambda: store.hypervolume_history(big, OBJ2))
    T["hypervolume_history_2d_all"] = t[0]
    res["cpu_s"]["hypervolume_history_2d_all"] = CPU["_last"]
    res["hypervolume_final_all"] = float(hv["hypervolume"].iloc[-1])
    _, t = timed(lambda: store.last_modified(big), repeat=20)
    T["last_modified_median"] = statistics.median(t)
    res["cpu_s"]["last_modified_median"] = CPU["_last"]

    for name in (big, small, one):
        store.delete_study(name)
    store.close()

    out = Path(a.out or Path(__file__).parent / "results" / f"store-{res['host']}{'-quick' if a.quick else ''}"
               f"{'' if res['database'] == 'sqlite' else '-' + res['database']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"storage benchmark on {res['database']} ({res['device']}), {a.trials} trials -> {out}")
    print(f"  {'':36s} {'wall':>10s}    {'cpu':>10s}")
    for k, v in T.items():
        c = res["cpu_s"].get(k)
        print(f"  {k:36s} {v * 1000:10.1f} ms " + (f"{c * 1000:10.1f} ms" if c is not None else ""))
    print(f"  bulk insert: {res['insert_bulk_trials_per_s']:.0f} trials/s; one by one: "
          f"{res['insert_per_trial_trials_per_s']:.0f} trials/s; Pareto 2-D of {a.pareto_trials}: "
          f"{'under' if res['pareto_2d_small_under_200ms'] else 'OVER'} 200 ms (target at 10,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
