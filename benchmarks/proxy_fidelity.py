"""Does the proxy rank architectures reproducibly, and the way longer training does?

A panel of architectures (the examples in `examples/architectures/` plus variants made here:
pure and hybrid) is evaluated at `standard` with two seeds and at the MAD protocol (`full`, or
a documented reduction of it that fits the time budget). Reported: Spearman rank correlation of
the quality score between the two seeds (target >= 0.9) and between standard and full (target
>= 0.8), time per architecture, and everything per trial. Results go to
`benchmarks/results/proxy_fidelity-<mode>-<device>.json`, with the device name.

Several trials run at once on the one GPU (`--workers` processes, spawned; small proxy models
are launch-bound, so processes overlap their CPU launch overhead). Every trial has a time
limit (`max_seconds`), and the run has an overall budget (`--budget-s`): trials not started
when it is spent are listed as skipped, never silently dropped.

"Full" here is `full-reduced` unless `--true-full`: the MAD protocol's structure (d_model 128,
12,800 training examples, batch 128, cosine, test accuracy on 1,280 examples) with 6 epochs
instead of 200 and one lr/wd point (1e-3, 0) instead of the grid of 6; the published protocol
takes hours per architecture on one GPU.

    GPU (after `pack-wheels.sh` here; see ../shared/gpu/README.md). Standard trials take 1-3 minutes
    each while 4-8 share the GPU, so a whole panel needs more than one 10-minute device call:
    `--runs`/`--archs` pick what a call runs and `--merge EARLIER.json` keeps what earlier calls
    completed (docs/evaluators.md):
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
        python3 benchmarks/proxy_fidelity.py --device cuda --workers 8 --budget-s 470 --out run1.json
        python3 benchmarks/proxy_fidelity.py --device cuda --runs full_s0 --merge run1.json --out run2.json
    CPU check of the script:
        python benchmarks/proxy_fidelity.py --quick
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def panel(quick: bool) -> list[dict]:
    """The example architectures plus variants (10 in all); in --quick mode 8 of them, rescaled to
    d_model 32 and at most 2 top-level items."""
    from search_space import Architecture

    archs = [Architecture.from_yaml(p) for p in sorted((ROOT / "examples" / "architectures").glob("*.yaml"))]
    att = {"type": "attention", "heads": 4}
    m2 = {"type": "mamba2", "d_state": 32, "head_dim": 32, "expand": 2}
    sw = {"type": "swiglu", "expand": 4}
    variants = [
        {"name": "transformer-2L", "d_model": 128, "blocks": [{"mixer": att, "channel": sw, "repeat": 2}]},
        {"name": "mamba2-attn-3to1", "d_model": 128, "blocks": [
            {"mixer": m2, "channel": {"type": "none"}, "repeat": 3}, {"mixer": att, "channel": sw}]},
        {"name": "mamba1", "d_model": 128, "blocks": [
            {"mixer": {"type": "mamba1", "d_state": 16, "expand": 2}, "channel": {"type": "none"}, "repeat": 4}]},
    ]
    archs += [Architecture.from_dict(v) for v in variants]
    if quick:
        archs = [a.scaled(d_model=32) for a in archs]
        archs = [a.scaled(depth=min(2, len(a.blocks))) if len(a.flat_blocks()) > 4 else a for a in archs]
    seen, out = set(), []
    for a in archs:
        if a.fingerprint() not in seen:
            seen.add(a.fingerprint())
            out.append(a.model_dump(mode="json"))
    return out[:8] if quick else out


def fidelities(quick: bool, true_full: bool):
    from evaluators.fidelity import FIDELITIES

    if quick:
        std = FIDELITIES["smoke"].model_copy(update={"efficiency": FIDELITIES["smoke"].efficiency})
        full = std.model_copy(update={
            "name": "smoke-long",
            "tasks": [t.model_copy(update={"tokens": t.tokens * 2}) for t in std.tasks],
            "text": std.text.model_copy(update={"tokens": std.text.tokens * 2}),
            "lr_grid": [3e-3, 1e-2]})
        return std, full, "quick: smoke as 'standard'; 2x its budget with an lr grid {3e-3, 1e-2} as 'full'"
    std = FIDELITIES["standard"]
    full = FIDELITIES["full"]
    if true_full:
        return std, full, "the published MAD protocol"
    epochs = 6
    tasks = []
    for t in full.tasks:
        if t.train_examples and t.train_examples * 200 // t.batch_size <= 1000:
            tasks.append(t)  # memorization: 256 examples x 200 epochs is only 400 steps; keep it
            continue
        per_epoch = t.tokens // 200
        tasks.append(t.model_copy(update={"tokens": per_epoch * epochs}))
    reduced = full.model_copy(update={"name": "full-reduced", "tasks": tasks, "lr_grid": None, "lr": 1e-3,
                                      "weight_decay_grid": None, "weight_decay": 0.0, "report_every": 100,
                                      "efficiency": full.efficiency.model_copy(update={"measure": False})})
    note = (f"full-reduced: MAD protocol (d_model 128, 12,800 examples, batch 128, cosine, test accuracy on "
            f"1,280) with {epochs} epochs instead of 200 (memorization keeps its 200 epochs of 256 examples) and one grid point (lr 1e-3, the top of MAD's grid; wd 0) "
            f"instead of 6: longer training per task than standard, which is what the comparison needs")
    return std, reduced, note


def _job(args):
    arch_d, fid_d, seed, device, deadline, threads, tag = args
    import torch
    torch.set_num_threads(threads)
    from evaluators import evaluate
    from evaluators.fidelity import Fidelity
    from search_space import Architecture

    arch = Architecture.from_dict(arch_d)
    if time.time() > deadline:
        return tag, arch.name, {"status": "skipped", "error": "benchmark budget spent before it started"}
    fid = Fidelity.model_validate(fid_d)
    remaining = deadline - time.time()
    if fid.max_seconds is None or fid.max_seconds > remaining:
        fid = fid.model_copy(update={"max_seconds": max(5.0, remaining)})
    r = evaluate(arch, fid, device=device, seed=seed)
    d = r.as_dict()
    d["curves"] = {"quality": d["curves"].get("quality", [])}
    d["extra"].pop("traceback", None)
    return tag, arch.name, d


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rho with average ranks for ties (no scipy on the GPU machine)."""
    if len(a) < 3:
        return None

    def ranks(x):
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(x):
            j = i
            while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CPU check: small panel at smoke budgets")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--workers", type=int, default=None, help="trials at once (default 6 on GPU, 2 on CPU)")
    ap.add_argument("--budget-s", type=float, default=None, help="overall time budget (default 420 GPU, 900 CPU)")
    ap.add_argument("--true-full", action="store_true", help="the published MAD protocol (hours)")
    ap.add_argument("--max-seconds", type=float, default=None, help="time limit per trial (default 180 GPU, 120 CPU)")
    ap.add_argument("--out", default=None, help="result JSON path")
    ap.add_argument("--runs", default="standard_s0,standard_s1,full_s0",
                    help="which of standard_s0, standard_s1, full_s0 to run (comma-separated)")
    ap.add_argument("--archs", default=None, help="only these panel architectures (comma-separated names)")
    ap.add_argument("--merge", default=None,
                    help="an earlier result JSON of the same panel and fidelities: its completed trials are "
                         "kept (runs of this call replace them), so a comparison can be finished in a second "
                         "GPU session")
    a = ap.parse_args(argv)

    import torch
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.startswith("cuda")
    workers = a.workers or (6 if gpu else 2)
    budget = a.budget_s or (420.0 if gpu else 900.0)
    per_trial = a.max_seconds or (180.0 if gpu else 120.0)
    threads = 1 if not gpu else max(1, (os.cpu_count() or 2) // workers)
    from evaluators.efficiency import device_name
    dev_name = device_name(torch.device(device))
    mode = "quick" if a.quick else ("true-full" if a.true_full else "gpu")
    out = Path(a.out) if a.out else ROOT / "benchmarks" / "results" / \
        f"proxy_fidelity-{mode}-{dev_name.replace(' ', '_').replace('(', '').replace(')', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.with_suffix(".log"), "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    std, full, note = fidelities(a.quick, a.true_full)
    std = std.model_copy(update={"max_seconds": per_trial})
    full = full.model_copy(update={"max_seconds": per_trial * (1 if a.true_full is False else 100)})
    archs = panel(a.quick)
    if a.archs:
        wanted = a.archs.split(",")
        unknown = [n for n in wanted if n not in {ad["name"] for ad in archs}]
        if unknown:
            ap.error(f"--archs: not in the panel: {', '.join(unknown)}")
        run_archs = [ad for ad in archs if ad["name"] in wanted]
    else:
        run_archs = archs
    runs = a.runs.split(",")
    if set(runs) - {"standard_s0", "standard_s1", "full_s0"}:
        ap.error(f"--runs: unknown {', '.join(sorted(set(runs) - {'standard_s0', 'standard_s1', 'full_s0'}))}")
    merged_from = None
    results: dict[str, dict] = {ad["name"]: {} for ad in archs}
    if a.merge:
        prev = json.loads(Path(a.merge).read_text())
        same = lambda f, d: {**f.model_dump(mode="json"), "max_seconds": None} == {**d, "max_seconds": None}
        if not (same(std, prev["standard"]) and same(full, prev["full"])):
            ap.error("--merge: that run used other fidelities")
        for n, tr in prev["trials"].items():
            if n in results:
                results[n] = {tag: d for tag, d in tr.items() if d.get("status") == "complete"}
        merged_from = {"file": Path(a.merge).name, "date": prev.get("date"), "device": prev.get("device"),
                       "total_s": prev.get("total_s"), "workers": prev.get("workers")}
    say(f"proxy fidelity: {len(archs)} architectures on {dev_name}, {workers} at once, budget {budget:.0f} s")
    say(f"standard = {std.name}; full = {full.name} ({note})")
    t0 = time.time()
    deadline = t0 + budget
    jobs = []  # seed 0 first, then seed 1, then full: a cut-off run still has the first comparisons
    for tag, fid, seed in (("standard_s0", std, 0), ("standard_s1", std, 1), ("full_s0", full, 0)):
        if tag not in runs:
            continue
        for ad in run_archs:
            jobs.append((ad, fid.model_dump(mode="json"), seed, device, deadline, threads, tag))
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=4) as pool:
        for tag, name, d in pool.imap_unordered(_job, jobs):
            results[name][tag] = d
            q = d.get("metrics", {}).get("quality")
            say(f"  {tag:12s} {name:20s} {d['status']:9s} quality={q if q is None else round(q, 4)} "
                f"wall={d.get('wall_time_s', 0):.1f}s {d.get('error') or ''}")
    total = time.time() - t0

    def qual(tag):
        names = [n for n in results if results[n].get(tag, {}).get("status") == "complete"]
        return names, {n: results[n][tag]["metrics"]["quality"] for n in names}

    n0, q0 = qual("standard_s0")
    n1, q1 = qual("standard_s1")
    nf, qf = qual("full_s0")
    both = [n for n in n0 if n in q1]
    sf = [n for n in n0 if n in qf]
    rho_seeds = spearman([q0[n] for n in both], [q1[n] for n in both])
    mean_std = {n: (q0[n] + q1[n]) / 2 for n in both}
    sf2 = [n for n in sf if n in mean_std]
    rho_full = spearman([mean_std[n] for n in sf2], [qf[n] for n in sf2])
    per_arch = {n: {tag: round(r.get("wall_time_s", 0.0), 2) for tag, r in results[n].items()} for n in results}
    summary = {
        "device": dev_name, "torch": torch.__version__, "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mode": mode,
        "workers": workers, "concurrent_trials_on_device": workers, "runs": runs,
        "archs_run": [ad["name"] for ad in run_archs], "merged_from": merged_from, "budget_s": budget, "total_s": round(total, 1),
        "standard": std.model_dump(mode="json"), "full": full.model_dump(mode="json"), "full_note": note,
        "spearman_seeds": rho_seeds, "spearman_standard_vs_full": rho_full,
        "n_compared_seeds": len(both), "n_compared_full": len(sf2),
        "targets": {"spearman_seeds": 0.9, "spearman_standard_vs_full": 0.8},
        "time_per_arch_s": per_arch,
        "quality": {n: {"standard_s0": q0.get(n), "standard_s1": q1.get(n), "full_s0": qf.get(n)} for n in results},
        "panel": [{"name": ad["name"], "arch": ad} for ad in archs],
        "trials": results,
    }
    out.write_text(json.dumps(summary, indent=1, default=float))
    say(f"\n{'architecture':20s} {'std s0':>8s} {'std s1':>8s} {'full':>8s}  time s (s0/s1/full)")
    for n in results:
        qs = summary["quality"][n]
        f = lambda v: f"{v:8.4f}" if v is not None else "       -"
        say(f"{n:20s} {f(qs['standard_s0'])} {f(qs['standard_s1'])} {f(qs['full_s0'])}  "
            + "/".join(str(per_arch[n].get(t, "-")) for t in ("standard_s0", "standard_s1", "full_s0")))
    fmt = lambda r: "n/a" if r is None else f"{r:.3f}"
    say(f"Spearman between seeds: {fmt(rho_seeds)} over {len(both)} (target >= 0.9)")
    say(f"Spearman standard vs {full.name}: {fmt(rho_full)} over {len(sf2)} (target >= 0.8)")
    say(f"total {total:.0f} s on {dev_name}; results in {out}")
    log.close()
    return summary


if __name__ == "__main__":
    main()
