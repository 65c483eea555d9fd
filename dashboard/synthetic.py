"""Seed a store with a synthetic study: for the dashboard's tests, its benchmark, its browser test
and screenshots. Not used by the app.

Everything goes through the public `Store` API with real objects: `Architecture`s drawn at
random from the registered primitives (validated like any user file, with sharing, parallel
groups, MoE and recursion groups among them), and `TrialResult`s whose values are made up but
consistent (quality rises with attention and state size, throughput falls with FLOPs, memory
grows with parameters and cache), so the fronts have the shapes a real search produces. Some
trials fail, some are pruned, some violate a constraint, the last few are still running.
"""
from __future__ import annotations

import math
import random

from search_space.genome import Architecture
from search_space.metrics import analytic_metrics
from search_space.result import TrialResult

OBJECTIVES = [("quality", "maximize"), ("decode_tokens_per_s", "maximize"), ("peak_memory_mib", "minimize")]
CONSTRAINTS = ["params_total"]
PARAM_LIMIT = 6e6
TASKS = ("mqar", "selective_copying", "in_context_recall", "text_bpb")

CONFIG_YAML = """\
# synthetic study (dashboard.synthetic); the shape `hybrid-nas search` stores
study: {name}
space: {{d_model: [64, 128, 256], layers: [2, 6]}}
objectives:
  - quality
  - decode_tokens_per_s: maximize
  - peak_memory_mib: minimize
constraints:
  - params_total <= 6e6
sampler: nsga2
trials: 100
fidelity: smoke
seed: 0
"""

_MIXERS = ("attention", "mamba1", "mamba2", "rwkv7", "retention")


def _mixer(rng: random.Random, d: int) -> dict:
    t = rng.choice(_MIXERS)
    m: dict = {"type": t}
    if t == "attention":
        m["heads"] = rng.choice([2, 4, 8])
        if rng.random() < 0.3:
            m["window"] = rng.choice([64, 128, 256])
    elif t in ("mamba1", "mamba2"):
        m["d_state"] = rng.choice([16, 32, 64])
    elif t == "retention":
        m["heads"] = rng.choice([2, 4])
    return m


def _block(rng: random.Random, d: int, allow_share: bool) -> dict:
    if rng.random() < 0.25:
        k = 2 if rng.random() < 0.8 else 3
        mixer = {"parallel": [_mixer(rng, d) for _ in range(k)],
                 "combine": rng.choice(["norm_mean", "concat_proj", "gated_sum"])}
    else:
        mixer = _mixer(rng, d)
    r = rng.random()
    channel = {"type": "moe", "experts": rng.choice([4, 8]), "top_k": 2} if r < 0.2 else \
        ({"type": "none"} if r < 0.3 else {"type": "swiglu", "expand": rng.choice([2.0, 4.0])})
    b = {"mixer": mixer, "channel": channel}
    if rng.random() < 0.25:
        b["repeat"] = rng.choice([2, 3])
    if allow_share and rng.random() < 0.15:
        b["share"] = "s0"
    return b


def random_architecture(rng: random.Random, name: str = "unnamed") -> Architecture:
    """A valid random architecture (retries the rare draw the genome refuses)."""
    for _ in range(50):
        d = rng.choice([64, 128, 256])
        items = []
        for _ in range(rng.randint(2, 6)):
            if rng.random() < 0.12:
                depth = rng.choice([2, 3])
                items.append({"recursion": {"max_depth": depth, "router": "expert_choice",
                                            "capacity": [round(1.0 / (i + 1), 3) for i in range(depth)],
                                            "body": [_block(rng, d, False) for _ in range(rng.randint(1, 2))]}})
            else:
                items.append(_block(rng, d, True))
        shared = [it for it in items if "share" in it]
        if len(shared) == 1:
            shared[0].pop("share")  # sharing needs two blocks
        elif shared:
            for it in shared[1:]:  # blocks sharing weights must have the same shape
                it.clear()
                it.update(shared[0])
        try:
            return Architecture.from_dict({"name": name, "d_model": d, "blocks": items})
        except Exception:  # noqa: BLE001 - a draw the genome refuses (e.g. heads vs d_model): draw again
            continue
    raise RuntimeError("could not draw a valid architecture")


def result_for(arch: Architecture, rng: random.Random, status: str = "complete", fidelity: str = "smoke",
               curve_points: int = 8) -> TrialResult:
    a = analytic_metrics(arch, vocab_size=256)
    prims = arch.primitives()
    layers = len(arch.flat_blocks())
    q = 0.35 + 0.08 * ("attention" in prims) + 0.07 * ("mamba2" in prims) + 0.05 * ("rwkv7" in prims) \
        + 0.04 * math.log2(arch.d_model / 64 + 1) + 0.015 * layers + rng.gauss(0, 0.04)
    q = max(0.02, min(0.99, q))
    thr = 4.0e9 / (a["flops_per_token"] + 2e5) * (0.6 if "attention" in prims else 1.0) * rng.uniform(0.85, 1.15)
    mem = 40 + a["params_total"] * 16 / 2**20 + a["cache_mib_8k"] * 4 + rng.uniform(0, 20)
    tasks = {"mqar": min(1.0, q * rng.uniform(0.9, 1.2)), "selective_copying": min(1.0, q * rng.uniform(0.8, 1.1)),
             "in_context_recall": min(1.0, q * rng.uniform(0.7, 1.1)), "text_bpb": 3.2 - 1.5 * q + rng.gauss(0, 0.05)}
    steps = [int(10 * (i + 1)) for i in range(curve_points)]
    loss0 = 5.5 - 2 * q
    curves = {"train_loss": [(s, loss0 * (0.55 + 0.45 * math.exp(-s / 30)) + rng.gauss(0, 0.03)) for s in steps],
              "quality": [(s, q * (1 - math.exp(-s / 25))) for s in steps]}
    if status == "failed":
        return TrialResult(status="failed", analytic=a, fidelity=fidelity, seed=rng.randint(0, 999),
                           device="cpu (2 cores)", wall_time_s=rng.uniform(1, 5),
                           error=rng.choice(["diverged: loss is nan at step 40", "CUDA out of memory"]),
                           curves={"train_loss": curves["train_loss"][:3]})
    metrics = {"quality": q, "val_bpb": tasks["text_bpb"], "decode_tokens_per_s": thr,
               "train_tokens_per_s": thr * 3.1, "prefill_tokens_per_s": thr * 9.0, "peak_memory_mib": mem,
               "decode_memory_mib": mem * 0.4}
    if status == "pruned":
        metrics = {"quality": q * 0.6}
    return TrialResult(status=status, metrics=metrics, task_scores=tasks if status == "complete" else {},
                       curves=curves if status == "complete" else {"train_loss": curves["train_loss"][:4]},
                       analytic=a, measured={"decode_tokens_per_s": thr, "peak_memory_mib": mem},
                       fidelity=fidelity, seed=rng.randint(0, 999), device="cpu (2 cores)",
                       backend={"blocks[0]": "torch"}, wall_time_s=rng.uniform(5, 60))


def seed_study(store, name: str, n_trials: int = 40, seed: int = 0, running: int = 2, fail_every: int = 11,
               prune_every: int = 13, curve_points: int = 8) -> None:
    """Create study `name` in `store` and record `n_trials` trials (the last `running` still running)."""
    rng = random.Random(seed)
    store.create_study(name, CONFIG_YAML.format(name=name), OBJECTIVES, CONSTRAINTS)

    def finished():
        for n in range(n_trials - running):
            arch = random_architecture(rng, name="unnamed")
            status = "failed" if fail_every and n % fail_every == fail_every - 1 else \
                ("pruned" if prune_every and n % prune_every == prune_every - 1 else "complete")
            res = result_for(arch, rng, status, curve_points=curve_points)
            yield n, res, {"params_total": res.analytic["params_total"] - PARAM_LIMIT}, arch
    store.finish_trials(name, finished(), chunk=500)  # batched: a 10,000-trial study in seconds
    for n in range(max(0, n_trials - running), n_trials):
        store.start_trial(name, n, random_architecture(rng, name="unnamed"), fidelity="smoke", seed=n)
