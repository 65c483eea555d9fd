"""Throughput of the search-space operations the search loop calls per trial (no torch, CPU only).

    python benchmarks/search_space_ops.py           # 2000 draws / edits per space
    python benchmarks/search_space_ops.py --quick   # 200

Per example space (small, wide): loading the space file (which checks every combination of
choices against every d_model), a random draw (`space.random`), a draw from a real Optuna trial
(RandomSampler ask + `space.sample`), `to_params` + `replay` (enqueueing an evolved child),
`contains`, `violations`, `mutate`, `crossover`, and one YAML round trip. Mean milliseconds per
call; JSON to benchmarks/results/search_space_ops-<device>.json. These bound how fast a search can
propose trials: all should stay well under a millisecond-to-tens-of-milliseconds budget next to a
proxy training run of seconds to minutes."""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return 1000.0 * (time.perf_counter() - t) / n


def bench_space(path: Path, n: int) -> dict:
    import optuna

    from search_space import Architecture
    from search_space.operators import crossover, mutate
    from search_space.space import SearchSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = {"load_ms": timed(lambda: SearchSpace.from_yaml(path), 5)}
    space = SearchSpace.from_yaml(path)
    rng = random.Random(0)
    out["random_draw_ms"] = timed(lambda: space.random(rng), n)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out["optuna_ask_and_sample_ms"] = timed(lambda: space.sample(study.ask()), max(n // 4, 20))
    archs = [space.random(rng) for _ in range(64)]
    it = iter(range(10**9))
    pick = lambda: archs[next(it) % len(archs)]  # noqa: E731
    out["to_params_and_replay_ms"] = timed(lambda: space.replay(space.to_params(pick())), n)
    out["contains_ms"] = timed(lambda: space.contains(pick()), n)
    out["violations_ms"] = timed(lambda: space.violations(pick()), n)
    out["mutate_ms"] = timed(lambda: mutate(pick(), space, rng), n)
    out["crossover_ms"] = timed(lambda: crossover(pick(), pick(), space, rng), n)
    out["yaml_round_trip_ms"] = timed(lambda: Architecture.from_yaml(pick().to_yaml()), max(n // 10, 10))
    return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (CI, busy machines)")
    args = ap.parse_args()
    n = 200 if args.quick else 2000
    device = f"cpu_{os.cpu_count()}_cores"
    res = {"device": device, "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
           "repetitions": n, "spaces": {}}
    for name in ("small", "wide"):
        res["spaces"][name] = bench_space(ROOT / "examples" / "spaces" / f"{name}.yaml", n)
        print(name, json.dumps(res["spaces"][name]))
    out = ROOT / "benchmarks" / "results" / f"search_space_ops-{device}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
