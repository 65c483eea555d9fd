"""Shared helpers of the orchestrator tests (imported by conftest and the tests)."""
from __future__ import annotations

import math
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SMALL_SPACE = REPO / "examples" / "spaces" / "small.yaml"

# smoke with one small MQAR task and no efficiency timing: about a second per trial on one core
TINY = {"preset": "smoke", "overrides": {
    "tasks": [{"name": "mqar", "params": {"vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
               "tokens": 12 * 8 * 16, "batch_size": 8}],
    "text": None, "efficiency": {"measure": False}, "report_every": 4,
    "eval_examples": 16, "report_eval_examples": 8}}


def study_config(tmp_path: Path, storage: str, **over) -> dict:
    cfg = {"study": "t", "storage": storage, "space": str(SMALL_SPACE),
           "objectives": ["quality", {"params_total": "minimize"}],
           "constraints": ["cache_mib_8k <= 16"], "sampler": "random", "trials": 3, "concurrency": 2,
           "resources": {"cpu": 1}, "fidelity": TINY, "seed": 0}
    cfg.update(over)
    return cfg


def write_config(tmp_path: Path, cfg: dict, name: str = "study.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


# the samplers' tests: a tiny space (2 d_model x 1-2 blocks of 2 token mixers x 2 channel mixers =
# 40 architectures) runs out quickly, so a repeated proposal shows within a few dozen trials
TINY_SPACE = """
name: tiny
d_model: [32, 64]
depth: {min: 1, max: 2}
norm: [rmsnorm]
token_mixers:
  attention: {heads: [2]}
  retention: {heads: [2], chunk: [32]}
channel_mixers:
  swiglu: {expand: [2]}
  none: {}
sharing: false
"""


def objectives(arch):
    """Two cheap analytic objectives (both minimized) that replace training in sampler tests."""
    c = arch.costs(256, context=8192)
    return [math.log10(c.params_total), c.cache_bytes / 2**20]


def concurrent_fingerprints(study, space, batches=(6, 10, 10)) -> list[str]:
    """Ask each batch of trials before telling any of them (trials running concurrently), then
    tell them; returns the fingerprints of every architecture proposed, in order."""
    fps = []
    for batch in batches:
        running = [study.ask() for _ in range(batch)]
        archs = [space.sample(t) for t in running]
        fps += [a.fingerprint() for a in archs]
        for t, a in zip(running, archs):
            study.tell(t, objectives(a))
    return fps


def tell_then_check_rerun(study, space, running, fingerprint_attr: str) -> None:
    """Tell the `running` trials, then ask one more and re-run it under its own number (what
    search.py's resume does): it keeps its params and every system attribute the sampler wrote,
    `fingerprint_attr` naming the architecture it was given."""
    import optuna
    for x in running:
        study.tell(x, objectives(space.replay(x.params)))
    t = study.ask()
    arch = space.sample(t)
    before = study._storage.get_trial_system_attrs(t._trial_id)
    again = optuna.Trial(study, t._trial_id)
    assert space.sample(again).fingerprint() == arch.fingerprint() == before[fingerprint_attr]
    assert study._storage.get_trial_system_attrs(again._trial_id) == before
