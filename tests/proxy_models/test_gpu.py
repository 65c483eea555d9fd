"""GPU checks (skipped with a visible reason on a machine without CUDA): the kernels the
backends pick on a GPU agree with the plain-PyTorch meaning, every example trains under bf16
autocast, and decoding reproduces the parallel form on the GPU.

Run on a GPU machine:  python -m pytest tests/proxy_models/test_gpu.py -q -rs"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from proxy_models import backends, build_model
from search_space import Architecture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "architectures").glob("*.yaml"))
DEV = "cuda"


@pytest.mark.parametrize("kw", [{}, {"kv_heads": 2}, {"window": 64}, {"kv_heads": 2, "window": 64}],
                         ids=["mha", "gqa", "window", "gqa-window"])
def test_attention_kernels_match_reference_bf16(kw):
    from proxy_models.attention import Attention
    from search_space.primitives.attention import AttentionSpec
    torch.manual_seed(0)
    m = Attention(AttentionSpec(type="attention", heads=8, **kw), 512).to(DEV)
    x = torch.randn(2, 512, 512, device=DEV)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = m(x)
        ref = m.reference(x)
    torch.testing.assert_close(y.float(), ref.float(), rtol=3e-2, atol=3e-2)
    assert m.backend == ("sdpa-flash" if "window" not in kw else "sdpa-efficient")


def test_moe_grouped_mm_on_gpu_matches_dense_reference():
    from proxy_models.base import Ctx
    from proxy_models.moe import MoE
    from search_space.primitives.moe import MoESpec
    torch.manual_seed(0)
    m = MoE(MoESpec(type="moe", experts=8, top_k=2, expand=2.0, shared_experts=1), 256).to(DEV)
    x = torch.randn(4, 256, 256, device=DEV, requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = m(x, Ctx())
        # the reference under the same autocast: routing from the same bf16 router logits (an fp32
        # reference picks other experts for the 0.1% of tokens whose top-k scores nearly tie)
        ref = m.dense_reference(x)
    assert m.backend == "grouped-mm", backends.OPS["moe_dispatch"]
    torch.testing.assert_close(y.float(), ref.float(), rtol=5e-2, atol=5e-2)
    y.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("T,init", [(19, True), (200, False)], ids=["T19-state", "T200"])
def test_rwkv7_triton_scan_matches_sequential_fp32(T, init):
    """The default RWKV-7 backend on a GPU ("triton-scan": the chunked form with its chunk
    recurrence in Triton) in fp32 against the sequential recurrence, gradients included; and the
    module picks it."""
    from proxy_models.ops.rwkv7 import rwkv7_naive
    from proxy_models.ops.rwkv7.scan_triton import rwkv7_triton_scan
    from proxy_models.rwkv7 import RWKV7
    from search_space.primitives.rwkv7 import RWKV7Spec
    from recurrent_checks import assert_agree
    from test_ops_rwkv7 import inputs
    inp = {k: (v.to(DEV) if torch.is_tensor(v) else v) for k, v in inputs(T, init=init, H=2, K=64, V=64).items()}
    assert_agree(lambda **a: rwkv7_triton_scan(**a, chunk=64), rwkv7_naive, inp, atol=1e-4, rtol=1e-3)
    m = RWKV7(RWKV7Spec(type="rwkv7", head_dim=64), 512).to(DEV)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        m(torch.randn(2, 256, 512, device=DEV)).float().sum().backward()
    assert m.backend == "triton-scan", backends.OPS["rwkv7"]


@pytest.mark.parametrize("T,init", [(19, True), (130, False), (2048, True)], ids=["T19-state", "T130", "T2048-state"])
def test_rwkv7_triton_kernels_match_sequential_fp32(T, init):
    """The fused RWKV-7 kernels (ops/rwkv7/triton.py) in fp32 on the GPU against the sequential
    recurrence: output, final state and every input's gradient, at the tolerance the CPU
    tests use for the PyTorch chunked form; and the module runs them when forced (they are not a
    default backend: not faster yet, docs/benchmarks.md)."""
    from proxy_models.ops.rwkv7 import rwkv7_naive
    from proxy_models.ops.rwkv7.triton import rwkv7_triton
    from proxy_models.rwkv7 import RWKV7
    from search_space.primitives.rwkv7 import RWKV7Spec
    from recurrent_checks import assert_agree
    from test_ops_rwkv7 import inputs
    from proxy_models.ops.rwkv7 import rwkv7_chunked
    inp = {k: (v.to(DEV) if torch.is_tensor(v) else v) for k, v in inputs(T, init=init, H=2, K=64, V=64).items()}
    # at 2K the token-by-token loop is slow: the PyTorch chunked form (itself tested against it) instead
    assert_agree(rwkv7_triton, rwkv7_naive if T < 2048 else rwkv7_chunked, inp, atol=1e-4, rtol=1e-3)
    from proxy_models.ops import dispatch
    m = RWKV7(RWKV7Spec(type="rwkv7", head_dim=64), 512).to(DEV)
    with dispatch.forced("rwkv7", "triton"), torch.autocast("cuda", dtype=torch.bfloat16):
        m(torch.randn(2, 256, 512, device=DEV)).float().sum().backward()
    assert m.backend == "triton"  # a forced backend still passes the dispatch self-test first


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_trains_under_bf16_autocast_and_decodes(path):
    arch = Architecture.from_yaml(path)
    torch.manual_seed(0)
    model = build_model(arch, 256).to(DEV)
    x = torch.randint(0, 256, (4, 257), device=DEV)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, 256), x[:, 1:].reshape(-1))
        (loss + model.aux_loss()).backward()
        opt.step()
        opt.zero_grad()
        model.update_router_biases()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    print(path.stem, model.backends())
    # decoding equals the parallel form (fp32 on the GPU)
    model.eval()
    seq = x[:2, :24]
    with torch.no_grad():
        ref = model(seq)
        state = model.init_state(2)
        outs = []
        for t in range(seq.shape[1]):
            o, state = model.step(seq[:, t], state)
            outs.append(o)
    torch.testing.assert_close(torch.stack(outs, 1), ref, rtol=2e-3, atol=2e-3)


def test_a_real_cuda_out_of_memory_is_a_failed_trial_with_the_reason():
    """Fault 3 of the reliability suite on a GPU: a trial's `max_memory_mib` caps the caching
    allocator (`set_per_process_memory_fraction`), so a model that needs more meets a real CUDA
    OOM; the trial ends as failed with the reason, the cap is lifted afterwards, and the process
    can evaluate again."""
    from evaluators import evaluate, efficiency
    from evaluators.fidelity import FIDELITIES
    arch = Architecture.from_yaml(EXAMPLES[0])
    fid = FIDELITIES["smoke"].model_copy(update={"efficiency": FIDELITIES["smoke"].efficiency.model_copy(
        update={"measure": False})})
    res = evaluate(arch, fid.model_copy(update={"max_memory_mib": 2.0}), device=DEV, seed=0)  # < one batch
    assert res.status == "failed" and res.error.startswith("CUDA out of memory"), (res.status, res.error)
    assert efficiency.cuda_memory_fraction(torch.device(DEV, 0)) == 1.0
    again = evaluate(arch, fid, device=DEV, seed=0)
    assert again.status == "complete", again.error
