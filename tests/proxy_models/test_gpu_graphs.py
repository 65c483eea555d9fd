"""CUDA graphs in the trainer (evaluators/trainer.py), on a GPU: every case of the generated suite
(`pm_cases.CASES`: every registered token mixer, channel mixer, combiner, sharing, recursion
router) trains the same under a captured step as eagerly; a step that cannot be captured falls
back to eager training and says why; `evaluate()` reports which task steps were captured."""
from __future__ import annotations

import math

import pytest
import torch

from evaluators import evaluate
from evaluators.fidelity import Fidelity
from evaluators.tasks import make_task
from evaluators.trainer import GRAPH_WARMUP, TaskRun
from pm_cases import CASES
from proxy_models import build_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DEV = torch.device("cuda", 0)
STEPS = GRAPH_WARMUP + 7  # 7 replays


def _run(arch, graph: bool, steps: int = STEPS, model=None) -> TaskRun:
    task = make_task("in_context_recall", vocab_size=16, seq_len=32)
    torch.manual_seed(0)
    model = model or build_model(arch, vocab_size=task.vocab_size)
    return TaskRun(name="icr", task=task, model=model, steps=steps, batch_size=16, lr=3e-3, weight_decay=0.1,
                   device=DEV, seed=0, cuda_graph=graph, graph_pool=torch.cuda.graph_pool_handle() if graph else None)


def _losses(run: TaskRun) -> list[float]:
    out = []
    for _ in range(run.steps):
        run.step()
        out.append(run.take_loss())
    return out


@pytest.mark.parametrize("case_id,arch", CASES)
def test_every_case_trains_the_same_under_a_cuda_graph(case_id, arch):
    eager = _losses(_run(arch, graph=False))
    run = _run(arch, graph=True)
    graphed = _losses(run)
    assert run.graph, run.graph_error  # captured, and the steps after warm-up were replays
    assert all(math.isfinite(v) for v in graphed)
    # the same kernels on the same data: bf16 rounding apart, the same losses step for step
    for i, (a, b) in enumerate(zip(eager, graphed)):
        assert abs(a - b) <= 0.02 * max(1.0, abs(a)), (case_id, i, eager, graphed)
    # the learning rate followed the schedule through the replays
    assert run.lr_t.item() == pytest.approx(run.lr * run.schedule(run.step_count - 1), rel=1e-6)


class _SyncsOnTheHost(torch.nn.Module):
    """A model whose forward reads a value on the host: a CUDA graph cannot hold that."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if x.float().mean().item() < -1:  # never true; the read is the point
            x = x + 0
        return self.inner(x)


def test_a_step_that_cannot_be_captured_trains_eagerly_and_says_why():
    arch = CASES[0].values[1]
    task_vocab = 16
    run = _run(arch, graph=True, model=_SyncsOnTheHost(build_model(arch, vocab_size=task_vocab)))
    losses = _losses(run)
    assert run.graph is False and run.graph_error, run.graph_error
    assert len(losses) == STEPS and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    # the device is usable after the failed capture
    assert torch.ones(3, device=DEV).sum().item() == 3


def test_evaluate_reports_the_captured_task_steps():
    fid = Fidelity.resolve("smoke", efficiency=Fidelity.resolve("smoke").efficiency.model_copy(update={"measure": False}))
    arch = next(a for cid, a in (c.values for c in CASES) if cid == "share-repeat")
    res = evaluate(arch, fid, device="cuda", seed=0)
    assert res.status == "complete", res.error
    cg = res.extra["cuda_graphs"]
    assert sorted(cg["captured"]) == sorted([t.name for t in fid.tasks] + ["text"]) and not cg["eager"]
    off = evaluate(arch, fid.model_copy(update={"cuda_graphs": False}), device="cuda", seed=0)
    assert off.status == "complete" and "cuda_graphs" not in off.extra
    # the same training, so about the same quality (bf16 rounding apart)
    assert abs(res.metrics["quality"] - off.metrics["quality"]) < 0.1
    # the task graphs share one pool (and one capture stream): about one task's activations,
    # not one per task
    assert res.metrics["peak_memory_mib"] < 1.5 * off.metrics["peak_memory_mib"] + 64, \
        (res.metrics["peak_memory_mib"], off.metrics["peak_memory_mib"])
