"""Shared helpers of the orchestrator tests (imported by conftest and the tests)."""
from __future__ import annotations

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
