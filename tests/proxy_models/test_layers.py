"""The generated suite: for every case in `pm_cases.CASES` (every registered token mixer and its
variants, every channel mixer, both MoE balancing modes, every combiner, sharing and repeat,
recursion with both routers) check parameter count, shapes, finiteness, gradients, causality,
step == forward, bf16 autocast and the recorded backends."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pm_cases import B, CASES, SMALL, T, VOCAB
from proxy_models import build_model
from proxy_models.backends import layer_backends
from search_space.registry import TOKEN_MIXERS


def build(arch, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(arch, VOCAB)


def tokens(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("case_id,arch", CASES)
def test_param_count_matches_search_space(case_id, arch):
    model = build(arch)
    assert model.num_params() == arch.costs(VOCAB).params_total


@pytest.mark.parametrize("case_id,arch", CASES)
def test_forward_shape_and_finite(case_id, arch):
    model = build(arch)
    logits = model(tokens())
    assert logits.shape == (B, T, VOCAB) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert torch.isfinite(model.aux_loss())


@pytest.mark.parametrize("case_id,arch", CASES)
def test_gradients_reach_every_parameter(case_id, arch):
    model = build(arch)
    # Zero-initialised weights (LoRA up-projections, gates) would block gradients to the weights
    # before them at init; a small perturbation makes the check meaningful for every tensor.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = tokens()
    logits = model(x)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), x[:, 1:].reshape(-1)) + model.aux_loss()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or p.grad.abs().sum() == 0]
    assert not missing, f"no (finite, non-zero) gradient for {missing}"


@pytest.mark.parametrize("case_id,arch", CASES)
def test_causal(case_id, arch):
    model = build(arch)
    x = tokens()
    ref = model(x)
    for t in (0, 6, T - 2):
        y = x.clone()
        y[:, t + 1] = (y[:, t + 1] + 1 + torch.arange(B)) % VOCAB
        out = model(y)
        torch.testing.assert_close(out[:, :t + 1], ref[:, :t + 1], rtol=0, atol=1e-5,
                                   msg=lambda m: f"changing token {t + 1} changed outputs at <= {t}: {m}")
        assert (out[:, t + 1] - ref[:, t + 1]).abs().max() > 0  # the change did reach position t+1


@pytest.mark.parametrize("case_id,arch", CASES)
def test_step_reproduces_forward(case_id, arch):
    model = build(arch).eval()
    x = tokens()
    with torch.no_grad():
        ref = model(x)
        state = model.init_state(B)
        outs = []
        for t in range(T):
            o, state = model.step(x[:, t], state)
            outs.append(o)
    torch.testing.assert_close(torch.stack(outs, 1), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case_id,arch", CASES)
def test_bf16_autocast_trains(case_id, arch):
    model = build(arch)
    x = tokens()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), x[:, 1:].reshape(-1)) + model.aux_loss()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("case_id,arch", CASES)
def test_backends_recorded(case_id, arch):
    model = build(arch)
    model(tokens())
    recorded = model.backends()
    predicted = layer_backends(arch, device="cpu", dtype=torch.float32)
    assert recorded == predicted
    assert all(isinstance(v, str) and v for v in recorded.values())


@pytest.mark.parametrize("name", list(TOKEN_MIXERS))
def test_every_token_mixer_has_a_reference_agreement_test(name):
    """A primitive's fast path must be checked against its plain-PyTorch reference: attention in
    test_attention.py, a recurrent op in test_ops_<op>.py (the op `backends` maps it to)."""
    from pathlib import Path

    from proxy_models.backends import PRIMITIVE_OPS
    here = Path(__file__).parent
    if name == "attention":
        text = (here / "test_attention.py").read_text()
        assert "def test_sdpa_matches_reference" in text
        return
    spec = TOKEN_MIXERS[name](type=name, **SMALL.get(name, {}))
    op = PRIMITIVE_OPS[name](spec, 32)[0]
    path = here / f"test_ops_{op}.py"
    assert path.exists(), f"no reference test file {path.name} for {name}"
    assert "_matches_" in path.read_text(), f"{path.name} has no fast-vs-reference test"
