"""Fault 3: trials that raise, produce NaN/inf, exceed a memory limit or a time limit.

Injection, through the real evaluator (`evaluators.evaluate`) on a real architecture:
- raise: a task whose generator refuses its parameters (MQAR with vocab_size <= seq_len raises
  ValueError inside the trial);
- NaN/inf: a learning rate of 1e8 with clipping disabled (the loss becomes nan/inf);
- memory limit: `max_memory_mib` below the evaluator's estimate (the simulated OOM on CPU; a GPU
  run catches `torch.cuda.OutOfMemoryError` on the same path);
- time limit: `max_seconds` far below one training step.
Each must come back as `status="failed"` with the reason, never raise. Then a real search (Ray
Tune + Optuna) in which every trial hits the time limit must still run to its trial count, with
each trial stored as failed with the reason and told to Optuna as FAIL (memory-limit and NaN
failures inside a search are covered by tests/orchestrator/test_search.py)."""
from __future__ import annotations

import pytest

from .helpers import EXAMPLES

TINY_OVERRIDES = {
    "tasks": [{"name": "mqar", "params": {"vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
               "tokens": 8 * 16 * 10, "batch_size": 8}],
    "text": None, "efficiency": {"measure": False}, "report_every": 5, "eval_examples": 16, "report_eval_examples": 8}


def tiny(**update):
    from evaluators.fidelity import FIDELITIES, Fidelity
    return Fidelity.model_validate({**FIDELITIES["smoke"].model_dump(), **TINY_OVERRIDES, "name": "tiny", **update})


CASES = {
    "raises": (dict(tasks=[{"name": "mqar", "params": {"vocab_size": 16, "seq_len": 16, "num_kv_pairs": 2},
                            "tokens": 8 * 16 * 10, "batch_size": 8}]), ("ValueError", "vocab_size")),
    "nan": (dict(lr=1e8, grad_clip=1e30), ("diverged",)),
    "memory": (dict(max_memory_mib=1), ("memory limit exceeded",)),
    "time": (dict(max_seconds=1e-3), ("time limit exceeded",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_evaluate_records_failure_with_reason(case):
    from evaluators import evaluate
    from search_space import Architecture
    arch = Architecture.from_yaml(EXAMPLES / "architectures" / "transformer.yaml")
    update, words = CASES[case]
    res = evaluate(arch, tiny(**update), device="cpu", seed=0)
    assert res.status == "failed", (res.status, res.error)
    assert res.error and all(w in res.error for w in words), res.error
    assert res.wall_time_s >= 0 and "\n" not in res.error


def test_memory_exceeded_during_training_is_caught_mid_run():
    """The other memory path: a limit above the up-front estimate but below what the process
    really holds, so the estimate passes and the resident-set check inside the training loop
    (every report) ends the trial; its curves so far are kept."""
    from evaluators import evaluate
    from evaluators.efficiency import rss_mib
    from evaluators.evaluate import estimate_train_memory_mib
    from search_space import Architecture
    arch = Architecture.from_yaml(EXAMPLES / "architectures" / "transformer.yaml")
    limit = 2 * estimate_train_memory_mib(arch, tiny())
    assert limit < rss_mib(), "the process must already hold more than the limit"
    res = evaluate(arch, tiny(max_memory_mib=limit), device="cpu", seed=0)
    assert res.status == "failed", (res.status, res.error)
    assert "memory limit exceeded: resident set" in res.error, res.error
    assert res.extra["estimated_train_memory_mib"] <= limit


def test_nan_result_is_stored_as_failed_with_reason(sqlite_url):
    """A failed TrialResult (with non-finite curve values) goes through the store as failed, with
    its reason, and the non-finite values come back as such."""
    import math

    from search_space.result import TrialResult
    from storage import Store
    with Store(sqlite_url) as s:
        s.create_study("f", "", [("quality", "maximize")])
        s.finish_trial("f", 0, TrialResult(status="failed", error="diverged: loss is nan at step 3 (mqar)",
                                           curves={"train_loss": [(1, 3.0), (2, float("inf")), (3, float("nan"))]},
                                           metrics={"quality": float("nan")}))
        t = s.trial("f", 0)
        assert t["status"] == "failed" and "nan" in t["error"]
        c = s.curves("f", 0)["train_loss"]
        assert c[0] == (1, 3.0) and math.isinf(c[1][1]) and math.isnan(c[2][1])
        assert math.isnan(t["metrics"]["quality"])


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(400)
def test_search_goes_on_when_every_trial_hits_the_time_limit(ray_session, tmp_path):
    import optuna
    from optuna.trial import TrialState

    from orchestrator.config import load_config_data
    from orchestrator.search import run_search
    from storage import Store

    from .search_helpers import study_config
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fid = {"preset": "smoke", "overrides": {**TINY_OVERRIDES, "max_seconds": 0.001}}
    cfg = load_config_data(study_config(url, "timeout", trials=3, fidelity=fid))
    out = run_search(cfg, live=False)
    frame = Store(url, create=False).trials_frame("timeout")
    assert sorted(frame["number"]) == [0, 1, 2]
    assert set(frame["status"]) == {"failed"}
    assert all("time limit exceeded" in e for e in frame["error"])
    ot = optuna.load_study(study_name="timeout", storage=url).get_trials(deepcopy=False)
    assert sorted(t.number for t in ot) == [0, 1, 2] and all(t.state == TrialState.FAIL for t in ot)
    assert out.failed == 3 and out.complete == 0
