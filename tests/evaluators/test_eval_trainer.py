"""The trainer learns easy tasks, catches divergence, and is deterministic on CPU."""
import math

import pytest
import torch

from evaluators.tasks import make_task
from evaluators.trainer import Schedule, TaskRun, TrialFailed, train
from proxy_models import build_model
from search_space import Architecture

TINY = Architecture.from_dict({"name": "tiny", "d_model": 32, "blocks": [{"mixer": {"type": "attention", "heads": 2}}] * 2})


def _run(name, params, steps, lr=1e-2, seed=0):
    task = make_task(name, **params)
    torch.manual_seed(seed)
    run = TaskRun(name=name, task=task, model=build_model(TINY, task.vocab_size), steps=steps, batch_size=32,
                  lr=lr, weight_decay=0.0, device=torch.device("cpu"), seed=seed)
    test = [task.sample(256, torch.Generator().manual_seed(99), "test")]
    return run, test


@pytest.mark.parametrize("name,params,steps,target", [
    ("memorization", {"vocab_size": 17, "seq_len": 8}, 80, 0.95),
    ("selective_copying", {"vocab_size": 6, "seq_len": 12, "num_tokens_to_copy": 3}, 200, 0.8),
])
def test_learns_an_easy_task(name, params, steps, target):
    run, test = _run(name, params, steps)
    before = run.evaluate(test, 256)["accuracy"]
    reports = []
    train([run], {name: test}, report_every=40, explode_factor=4,
          on_report=lambda s, m: reports.append((s, m[name]["train_loss"])))
    after = run.evaluate(test, 256)["accuracy"]
    assert before < 0.5 and after >= target, (before, after)
    assert [s for s, _ in reports][-1] == steps and reports[-1][1] < reports[0][1]


def test_nan_is_caught_and_named():
    run, test = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 50)
    with torch.no_grad():
        next(run.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrialFailed, match=r"diverged: loss is nan at step 1 \(memorization\)"):
        train([run], {"memorization": test}, report_every=10, explode_factor=4, on_report=lambda s, m: None)


def test_exploding_loss_is_caught():
    run, test = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 50, lr=50.0)
    with pytest.raises(TrialFailed, match="diverged"):
        train([run], {"memorization": test}, report_every=10, explode_factor=4, on_report=lambda s, m: None)


def test_same_seed_same_weights():
    a, test = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 20, seed=5)
    b, _ = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 20, seed=5)
    for r in (a, b):
        train([r], {"memorization": test}, report_every=20, explode_factor=4, on_report=lambda s, m: None)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_schedule_warmup_and_cosine():
    s = Schedule(100, warmup_frac=0.1, min_lr_frac=0.1)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)
    assert s(10) == pytest.approx(1.0) and s(100) == pytest.approx(0.1)
    assert all(s(i) >= s(i + 1) - 1e-12 for i in range(10, 100))
    assert math.isclose(s(55), 0.55, rel_tol=1e-6)


def test_runs_with_different_budgets_are_not_called_diverged():
    # Regression: a task that finished its steps while a longer one went on reported nan at the
    # next report (no new losses), and every `standard` trial on the GPU "diverged" at step 250.
    short, test_s = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 20)
    long_, test_l = _run("memorization", {"vocab_size": 17, "seq_len": 8}, 60)
    long_.name = "long"
    reports = []
    train([short, long_], {"memorization": test_s, "long": test_l}, report_every=10, explode_factor=4,
          on_report=lambda s, m: reports.append((s, m["memorization"]["train_loss"], m["long"]["train_loss"])))
    assert [s for s, _, _ in reports] == [10, 20, 30, 40, 50, 60]
    assert all(math.isfinite(a) and math.isfinite(b) for _, a, b in reports)
    # the finished run keeps its last mean, the running one moves on
    assert reports[-1][1] == reports[1][1]
