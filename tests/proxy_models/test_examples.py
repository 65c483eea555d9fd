"""Every example architecture builds with the exact analytic parameter count and trains on CPU:
three AdamW steps on one batch lower the loss (and the step mode runs)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from proxy_models import build_model
from search_space import Architecture

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "architectures").glob("*.yaml"))
VOCAB = 256


def test_examples_exist():
    assert len(EXAMPLES) >= 5, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_builds_and_trains(path):
    arch = Architecture.from_yaml(path)
    torch.manual_seed(0)
    model = build_model(arch, VOCAB)
    assert model.num_params() == arch.costs(VOCAB).params_total
    x = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(3):
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        (loss + model.aux_loss()).backward()
        opt.step()
        opt.zero_grad()
        model.update_router_biases()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses
    model.eval()
    with torch.no_grad():
        state = model.init_state(2)
        logits, state = model.step(x[:, 0], state)
    assert logits.shape == (2, VOCAB) and torch.isfinite(logits).all()
