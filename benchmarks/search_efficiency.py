"""Search efficiency of the samplers: hypervolume versus trials on a table of evaluated architectures.

What the table is: `--table-size` architectures drawn uniformly from examples/spaces/small.yaml
(seeded), each evaluated ONCE for real with `evaluate()` at a cheap fidelity (smoke with one MQAR
task and no timing; the exact overrides are in the JSON), giving its real quality score, plus its
analytic parameter count. It is cached in benchmarks/results/search_efficiency_table.json and
reused, so the replay below costs no training.

The replay: each sampler runs an in-memory Optuna study with two objectives (quality up,
log10 params down); a trial's architecture is sampled by the real define-by-run
`space.sample(trial)` and answered with the objectives of the *nearest* table entry (exact
fingerprint if present, else nearest in a standardized structural feature space: d_model,
depth, mixer/channel counts, parallel/recursion/sharing, log params). The hypervolume of the
table entries found so far (Optuna's implementation) is divided by the hypervolume of the whole
table's front. For each sampler and seed we record the trials needed to reach 95% of it.

Target: the best sampler reaches 95% in at most 40% of the trials random search needs (median
over seeds). Random search is Optuna's RandomSampler as it is (repeats included). Each sampler runs
with its study-config defaults (orchestrator/samplers.make_sampler: tpe/nsga2/nsga3/gp wrapped in
NoRepeatSampler, the evolution screened by its surrogate); `--samplers` also takes variants,
`name:key=value/key=value` (`tpe:no_repeat=false`, `evolution:screen=0`). Each run records how
many proposals were of an architecture the study already had (`repeats`) and how many the
no-repeat guard replaced (`replaced`).

    python benchmarks/search_efficiency.py                 # table of 200, 5 seeds (CPU, minutes)
    python benchmarks/search_efficiency.py --quick         # small, for a smoke run
    python benchmarks/search_efficiency.py --exhaustive benchmarks/spaces/tabular.yaml \
        --table-steps 300 --table-eval-examples 256 --seeds 50   # the exhaustive table as measured
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
SPACE = REPO / "examples" / "spaces" / "small.yaml"

TABLE_FIDELITY = {"preset": "smoke", "overrides": {
    "tasks": [{"name": "mqar", "params": {"vocab_size": 64, "seq_len": 32, "num_kv_pairs": 4},
               "tokens": 30 * 16 * 32, "batch_size": 16}],
    "text": None, "efficiency": {"measure": False}, "report_every": 1000,
    "eval_examples": 64, "report_eval_examples": 16}}


def table_fidelity(steps: int = 30, eval_examples: int = 64) -> dict:
    """TABLE_FIDELITY with another training length / test-set size (the exhaustive table of 144
    small architectures can afford 10x the steps, which makes quality a less noisy signal)."""
    if (steps, eval_examples) == (30, 64):
        return TABLE_FIDELITY
    ov = TABLE_FIDELITY["overrides"]
    task = dict(ov["tasks"][0], tokens=steps * 16 * 32)
    return {"preset": "smoke", "overrides": {**ov, "tasks": [task], "eval_examples": eval_examples}}


def _evaluate_one(args):
    import torch
    torch.set_num_threads(1)
    from evaluators.evaluate import evaluate
    from orchestrator.search import resolve_fidelity
    from search_space.genome import Architecture
    arch_dict, seed, fidelity = args
    arch = Architecture.from_dict(arch_dict)
    fid = resolve_fidelity(fidelity["preset"], fidelity["overrides"])
    r = evaluate(arch, fid, device="cpu", seed=seed)
    return {"arch": arch_dict, "fingerprint": arch.fingerprint(), "status": r.status, "error": r.error,
            "quality": r.metrics.get("quality"), "params_total": arch.param_count(256),
            "wall_s": r.wall_time_s}


def enumerate_space(space, stable_draws: int = 20_000, seed: int = 0) -> list[dict]:
    """Every architecture of a (small) space: random draws until `stable_draws` in a row add no
    new fingerprint. Used for the exhaustive table; the count is printed and stored."""
    rng = random.Random(seed)
    found: dict[str, dict] = {}
    since_new = 0
    while since_new < stable_draws:
        a = space.random(rng)
        fp = a.fingerprint()
        if fp in found:
            since_new += 1
        else:
            found[fp] = a.to_dict()
            since_new = 0
    return [found[k] for k in sorted(found)]


def build_table(size: int, workers: int, path: Path, space_path: Path = SPACE, exhaustive: bool = False,
                fidelity: dict = TABLE_FIDELITY) -> dict:
    """Evaluate `size` architectures (seeded draw), or every architecture of the space
    (`exhaustive`); rows are appended to `path` as they finish, so an interrupted run keeps its
    work and a rerun continues it."""
    from search_space.space import SearchSpace
    space = SearchSpace.from_yaml(space_path)
    if exhaustive:
        archs = enumerate_space(space)
        size = len(archs)
        what = (f"every architecture of {space_path.relative_to(REPO)} ({size}, enumerated), each evaluated once "
                "by evaluate() at the fidelity below; params_total is analytic with vocab 256")
    else:
        rng = random.Random(1234)
        archs, seen = [], set()
        while len(archs) < size:
            a = space.random(rng)
            if a.fingerprint() not in seen:
                seen.add(a.fingerprint())
                archs.append(a.to_dict())
        what = (f"architectures of {space_path.relative_to(REPO)} drawn uniformly (seed 1234), each evaluated once "
                "by evaluate() at the fidelity below; params_total is analytic with vocab 256")
    table = {"what": what, "exhaustive": exhaustive, "space": str(space_path.relative_to(REPO)),
             "fidelity": fidelity, "device": f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
             "evaluation_wall_s": 0.0, "rows": []}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("fidelity") == fidelity:
            table = old
    done = {r["fingerprint"] for r in table["rows"]}
    from search_space.genome import Architecture
    todo = [a for a in archs if Architecture.from_dict(a).fingerprint() not in done]
    t0 = time.time() - table["evaluation_wall_s"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as ex:
        for i, row in enumerate(ex.map(_evaluate_one, [(a, 0, fidelity) for a in todo])):
            table["rows"].append(row)
            table["evaluation_wall_s"] = time.time() - t0
            if i % 5 == 4 or i == len(todo) - 1:
                path.write_text(json.dumps(table))
                print(f"  {len(table['rows'])}/{size} evaluated ({table['evaluation_wall_s']:.0f} s)", flush=True)
    return table


# ---------------------------------------------------------------------------------------------
def features(arch) -> list[float]:
    from search_space.genome import ParallelGroup, RecursionItem
    from search_space.registry import CHANNEL_MIXERS, TOKEN_MIXERS
    blocks = arch.flat_blocks()
    f = [arch.d_model / 64, len(arch.blocks), len(blocks)]
    f += [sum(1 for b in blocks for m in b.mixers if m.type == t) for t in TOKEN_MIXERS]
    f += [sum(1 for b in blocks if b.channel.type == t) for t in CHANNEL_MIXERS]
    f += [sum(1 for b in blocks if isinstance(b.mixer, ParallelGroup)),
          sum(1 for it in arch.blocks if isinstance(it, RecursionItem)),
          sum(1 for b in blocks if b.share is not None), math.log10(arch.param_count(256))]
    return f


class Table:
    def __init__(self, table: dict):
        from search_space.genome import Architecture
        rows = [r for r in table["rows"] if r["status"] == "complete" and r["quality"] is not None]
        self.rows = rows
        self.by_fp = {r["fingerprint"]: i for i, r in enumerate(rows)}
        self.misses = 0  # proposals answered by their nearest neighbour (0 on an exhaustive table)
        X = np.array([features(Architecture.from_dict(r["arch"])) for r in rows], dtype=float)
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-9
        self.X = (X - self.mu) / self.sd
        # losses: -quality, log10 params (both minimized)
        self.L = np.array([[-r["quality"], math.log10(r["params_total"])] for r in rows])
        span = self.L.max(0) - self.L.min(0)
        self.ref = self.L.max(0) + 0.1 * np.where(span > 0, span, 1.0)
        self.full_hv = hv(self.L, self.ref)

    def lookup(self, arch) -> int:
        i = self.by_fp.get(arch.fingerprint())
        if i is not None:
            return i
        self.misses += 1
        x = (np.array(features(arch)) - self.mu) / self.sd
        return int(np.argmin(((self.X - x) ** 2).sum(1)))


def hv(L: np.ndarray, ref: np.ndarray) -> float:
    from optuna._hypervolume import compute_hypervolume
    from optuna.study._multi_objective import _is_pareto_front
    pts = L[_is_pareto_front(L, assume_unique_lexsorted=False)]
    return float(compute_hypervolume(pts, ref, assume_pareto=True))


def sampler_config(spec: str):
    """`tpe`, or a variant: `tpe:no_repeat=false`, `evolution:screen=0/population_size=37`
    (`no_repeat` is the config's field, every other key a sampler option; values are YAML)."""
    import yaml
    from orchestrator.config import SamplerConfig
    name, _, rest = spec.partition(":")
    data: dict = {"type": name, "options": {}}
    for kv in filter(None, rest.split("/")):
        k, _, v = kv.partition("=")
        if k == "no_repeat":
            data["no_repeat"] = yaml.safe_load(v)
        else:
            data["options"][k] = yaml.safe_load(v)
    return SamplerConfig.model_validate(data)


def replay(table: Table, space, spec: str, seed: int, budget: int) -> tuple[list[float], dict]:
    """(hypervolume fraction after each trial, counts: proposals of an architecture the study
    already had, and proposals the no-repeat guard replaced)."""
    import optuna
    from orchestrator.samplers import make_sampler
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = make_sampler(sampler_config(spec), space=space, trials=budget, concurrency=1, seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    found: list[int] = []
    tried: set[str] = set()
    curve = []
    repeats = 0
    for _ in range(budget):
        trial = study.ask()
        arch = space.sample(trial)
        repeats += arch.fingerprint() in tried
        tried.add(arch.fingerprint())
        i = table.lookup(arch)
        found.append(i)
        r = table.rows[i]
        study.tell(trial, [r["quality"], math.log10(r["params_total"])])
        curve.append(hv(table.L[sorted(set(found))], table.ref) / table.full_hv)
    replaced = sum("no_repeat:replaced" in t.system_attrs for t in study.trials)
    return curve, {"repeats": repeats, "replaced": replaced}


def summarize(results: dict) -> dict:
    """The target check. The baseline is random search as Optuna defines it (`random`: uniform
    draws, repeats included); variants of random (e.g. `random:no_repeat=true`) are reported but
    are neither the baseline nor the best. Without a `random` row, `met` is None."""
    def med(n):
        v = results[n]["median_trials_to_95"]
        return math.inf if v is None else v  # a JSON file stores inf as null
    rnd = med("random") if "random" in results else None
    best_name = min((n for n in results if results[n]["config"]["type"] != "random"), key=med, default=None)
    best = med(best_name) if best_name else math.inf
    if rnd is None:
        ratio, met = None, None
    else:
        ratio = best / rnd if math.isfinite(best) and math.isfinite(rnd) else None
        met = bool(ratio is not None and ratio <= 0.40) or (math.isfinite(best) and not math.isfinite(rnd))
    return {"best_sampler": best_name, "best_median_trials_to_95": best, "random_median_trials_to_95": rnd,
            "ratio": ratio, "target": "ratio <= 0.40", "met": met}


def trials_to(curve: list[float], frac: float) -> float:
    for t, v in enumerate(curve, 1):
        if v >= frac:
            return t
    return math.inf


def _rounded(obj, digits: int = 5):
    if isinstance(obj, float) and math.isfinite(obj):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small table and budgets (smoke run)")
    ap.add_argument("--table-size", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=150, help="trials per sampler run")
    ap.add_argument("--random-budget", type=int, default=600, help="trials per random-search run")
    ap.add_argument("--samplers", default="tpe,nsga2,nsga3,evolution,random",
                    help="comma list; add gp to include GPSampler (slow: about 5 s per trial here with ~40 categorical "
                         "params); a variant is name:key=value/key=value, e.g. tpe:no_repeat=false, evolution:screen=0 "
                         "(no_repeat is the study config's field, other keys are sampler options)")
    ap.add_argument("--table", type=Path, default=RESULTS / "search_efficiency_table.json")
    ap.add_argument("--out", type=Path, default=RESULTS / "search_efficiency.json")
    ap.add_argument("--use-partial", action="store_true", help="replay on the cached table as it is, even if smaller")
    ap.add_argument("--table-steps", type=int, default=30, help="training steps per table entry (MQAR, batch 16)")
    ap.add_argument("--table-eval-examples", type=int, default=64, help="test examples per table entry")
    ap.add_argument("--rebuild-table", action="store_true",
                    help="--exhaustive: evaluate the table again when the cached one has another fidelity")
    ap.add_argument("--exhaustive", type=Path, default=None, metavar="SPACE.yaml",
                    help="evaluate EVERY architecture of this small space (e.g. benchmarks/spaces/tabular.yaml) and "
                         "search it: each proposal is answered by its own result, no nearest neighbour")
    args = ap.parse_args(argv)
    if args.quick:
        args.table_size, args.seeds, args.budget, args.random_budget = 30, 2, 30, 60
        args.table = args.table.with_name("search_efficiency_table_quick.json")
        args.out = args.out.with_name("search_efficiency_quick.json")
    from search_space.space import SearchSpace
    space_path = SPACE
    if args.exhaustive:
        space_path = args.exhaustive.resolve()
        stem = space_path.stem
        if args.table == RESULTS / "search_efficiency_table.json":
            args.table = RESULTS / f"search_efficiency_table_{stem}.json"
        if args.out == RESULTS / "search_efficiency.json":
            args.out = RESULTS / f"search_efficiency_{stem}.json"
    space = SearchSpace.from_yaml(space_path)

    # every sampler spec is checked before the table is read or built: a bad one is one line and exit code 2
    from orchestrator.samplers import make_sampler
    from pydantic import ValidationError
    from search_space.errors import UserError
    configs = {}
    for name in args.samplers.split(","):
        try:
            configs[name] = sampler_config(name)
            with warnings.catch_warnings():  # Optuna's ExperimentalWarning: said again by the replay
                warnings.simplefilter("ignore")
                make_sampler(configs[name], space=space, trials=args.budget, concurrency=1, seed=0)
        except (ValidationError, UserError, ValueError) as e:
            msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()) \
                if isinstance(e, ValidationError) else str(e).splitlines()[0]
            print(f"error: --samplers {name}: {msg}", file=sys.stderr)
            raise SystemExit(2) from None

    if args.exhaustive:  # resumes a cached table: only architectures not in it are evaluated
        print(f"every architecture of {space_path.name}, each evaluated once (cached in {args.table.name}) ...",
              flush=True)
        fidelity = table_fidelity(args.table_steps, args.table_eval_examples)
        if args.table.exists() and not args.rebuild_table:
            cached = json.loads(args.table.read_text()).get("fidelity")
            if cached != fidelity:
                # build_table would start a new table over the cached one: minutes of evaluation
                # lost to a forgotten flag
                ov = (cached or {}).get("overrides", {})
                steps = ov.get("tasks", [{}])[0].get("tokens", 0) // (16 * 32)
                print(f"error: {args.table.name} was built with --table-steps {steps} --table-eval-examples "
                      f"{ov.get('eval_examples')}; give those, or --rebuild-table to replace it", file=sys.stderr)
                raise SystemExit(2)
        raw = build_table(0, args.workers, args.table, space_path, exhaustive=True, fidelity=fidelity)
    elif args.table.exists() and (args.use_partial or len(json.loads(args.table.read_text())["rows"]) >= args.table_size):
        raw = json.loads(args.table.read_text())
        print(f"table: {args.table} (cached, {len(raw['rows'])} architectures)")
    else:
        print(f"evaluating {args.table_size} architectures once (fidelity: smoke + overrides) ...", flush=True)
        raw = build_table(args.table_size, args.workers, args.table)
        print(f"table written to {args.table} in {raw['evaluation_wall_s']:.0f} s")
    table = Table(raw)
    print(f"{len(table.rows)} complete entries; full-table hypervolume {table.full_hv:.4g}")

    results = {}
    for name, cfg in configs.items():
        budget = args.random_budget if cfg.type == "random" else args.budget
        if cfg.type == "gp":
            budget = min(budget, 80)  # GP's cost grows with trials; 80 shows its start
        runs = []
        for seed in range(args.seeds):
            t0 = time.time()
            curve, counts = replay(table, space, name, seed, budget)
            runs.append({"seed": seed, "curve": curve, "to95": trials_to(curve, 0.95),
                         "to90": trials_to(curve, 0.90), **counts, "sampler_s": time.time() - t0})
        med95 = float(np.median([r["to95"] for r in runs]))
        results[name] = {"budget": budget, "config": cfg.model_dump(), "median_trials_to_95": med95,
                         "median_trials_to_90": float(np.median([r["to90"] for r in runs])),
                         "runs_reaching_95": int(sum(math.isfinite(r["to95"]) for r in runs)),
                         "final_hv_frac_mean": float(np.mean([r["curve"][-1] for r in runs])),
                         "repeats_mean": float(np.mean([r["repeats"] for r in runs])),
                         "replaced_mean": float(np.mean([r["replaced"] for r in runs])), "runs": runs}
        print(f"{name:10s} budget {budget:4d}  median trials to 95%: {med95:6.1f}  "
              f"to 90%: {results[name]['median_trials_to_90']:6.1f}  "
              f"reached 95%: {results[name]['runs_reaching_95']}/{args.seeds}  "
              f"final HV {results[name]['final_hv_frac_mean']:.3f}  "
              f"repeats {results[name]['repeats_mean']:.1f}  replaced {results[name]['replaced_mean']:.1f}  "
              f"({np.mean([r['sampler_s'] for r in runs]):.1f} s/run)", flush=True)

    summary = summarize(results)
    print(f"best: {summary['best_sampler']} needs {summary['best_median_trials_to_95']} trials (median) for 95%, "
          f"random needs {summary['random_median_trials_to_95']}: ratio "
          f"{summary['ratio'] if summary['ratio'] is None else round(summary['ratio'], 3)} (target <= 0.40) -> "
          f"{ {True: 'met', False: 'NOT met', None: 'no random baseline in this run'}[summary['met']] }")
    out = {"benchmark": "search_efficiency", "device": raw["device"], "table": str(args.table.name),
           "space": raw.get("space", str(SPACE.relative_to(REPO))), "exhaustive": bool(raw.get("exhaustive")),
           "nearest_neighbour_answers": table.misses,
           "table_entries": len(table.rows), "full_hypervolume": table.full_hv, "seeds": args.seeds,
           "objectives": ["quality (maximize)", "log10 params_total (minimize)"],
           "summary": summary, "samplers": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # compact: every run's curve (hundreds of values, 50 seeds x several samplers) rounded to 1e-5
    # and without indentation, so the results file stays a few hundred KB in the repository
    args.out.write_text(json.dumps(_rounded(out), separators=(",", ":"),
                                   default=lambda x: None if x == math.inf else x))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
