"""`evaluate()` end to end at the smoke fidelity: a complete result, the report contract,
reproducibility, and every failure mode returned (never raised)."""
import math

import pytest

from evaluators import FIDELITIES, evaluate
from evaluators.fidelity import Fidelity
from search_space import Architecture, UserError
from search_space.metrics import METRICS

ARCH = Architecture.from_dict({"name": "tiny", "d_model": 64, "blocks": [
    {"mixer": {"type": "attention", "heads": 4}},
    {"mixer": {"type": "mamba2", "d_state": 16, "head_dim": 32}, "channel": {"type": "none"}}]})


@pytest.fixture(scope="module")
def smoke_run():
    reports = []
    res = evaluate(ARCH, "smoke", seed=0, report=lambda s, m: reports.append((s, m)))
    return res, reports


def test_smoke_result_is_complete(smoke_run):
    res, _ = smoke_run
    assert res.status == "complete", res.error
    assert set(METRICS) <= set(res.metrics)
    assert 0.0 <= res.metrics["quality"] <= 1.0
    assert set(res.task_scores) == {"in_context_recall", "mqar", "text_bpb"}
    assert 0 < res.metrics["val_bpb"] < 8.5
    assert res.metrics["quality"] == pytest.approx(FIDELITIES["smoke"].quality(res.task_scores))
    assert res.device.startswith("cpu (") and res.fidelity == "smoke" and res.seed == 0
    assert res.backend["blocks[0].mixer"] and res.backend["blocks[1].mixer"]
    for k in ("train_tokens_per_s", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_memory_mib"):
        assert res.measured[k] > 0 and res.metrics[k] == res.measured[k]
    assert res.analytic["params_total"] == ARCH.param_count(256)
    assert res.wall_time_s > 0 and res.error is None
    assert [s for s, _ in res.curves["quality"]] == [s for s, _ in res.curves["train_loss"]]


def test_report_contract(smoke_run):
    res, reports = smoke_run
    steps = [s for s, _ in reports]
    assert steps == sorted(steps) and len(steps) >= 2
    for _, m in reports:
        assert {"quality", "train_loss", "progress", "elapsed_s", "in_context_recall", "mqar", "text_bpb"} <= set(m)
        assert 0 < m["progress"] <= 1 and all(math.isfinite(v) for v in m.values())
    assert reports[-1][1]["progress"] == 1.0
    assert [q for _, q in res.curves["quality"]] == [m["quality"] for _, m in reports]


def test_same_seed_same_result(smoke_run):
    res, _ = smoke_run
    # the efficiency measurements come after training and do not change it: skip them here
    smoke = FIDELITIES["smoke"]
    train_only = smoke.model_copy(update={"efficiency": smoke.efficiency.model_copy(update={"measure": False})})
    again = evaluate(ARCH, train_only, seed=0)
    assert again.task_scores == res.task_scores
    assert again.curves["train_loss"] == res.curves["train_loss"]
    other = evaluate(ARCH, train_only, seed=1)
    assert other.curves["train_loss"] != res.curves["train_loss"]


def test_divergence_is_a_failed_trial():
    res = evaluate(ARCH, Fidelity.resolve("smoke", lr=1e4))
    assert res.status == "failed" and res.error.startswith("diverged: "), res.error
    assert res.wall_time_s > 0


def test_limits_and_pruning():
    res = evaluate(ARCH, Fidelity.resolve("smoke", max_seconds=0.05))
    assert res.status == "failed" and res.error.startswith("time limit exceeded"), res.error
    res = evaluate(ARCH, Fidelity.resolve("smoke", max_memory_mib=1))
    assert res.status == "failed" and res.error.startswith("memory limit exceeded: estimated"), res.error
    res = evaluate(ARCH, "smoke", report=lambda step, m: True)
    assert res.status == "pruned" and res.error is None
    assert len(res.curves["quality"]) == 1 and "quality" in res.metrics


def test_exceptions_become_failed_trials():
    for device in ("cuda:7", "cuda", "npu:0"):
        res = evaluate(ARCH, "smoke", device=device)
        assert res.status == "failed" and res.error and res.wall_time_s > 0


def test_unknown_fidelity_is_a_user_error():
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        evaluate(ARCH, "fast")


def test_presets():
    assert list(FIDELITIES) == ["smoke", "quick", "standard", "full"]
    full = FIDELITIES["full"]
    assert full.d_model == 128 and full.grid() == [(lr, wd) for lr in (1e-4, 5e-4, 1e-3) for wd in (0.0, 0.1)]
    assert all(t.batch_size == 128 for t in full.tasks)
    assert {t.name for t in full.tasks} == {"in_context_recall", "fuzzy_in_context_recall", "noisy_in_context_recall",
                                           "selective_copying", "compression", "memorization"}
    mq = [t for t in FIDELITIES["standard"].tasks if t.name == "mqar"][0]
    assert mq.params["vocab_size"] == 8192
    assert FIDELITIES["smoke"].quality({"in_context_recall": 1.0, "mqar": 1.0, "text_bpb": 0.0}) == 1.0
    assert FIDELITIES["smoke"].quality({"text_bpb": 8.0}) == 0.0
