"""Fault 3 on a GPU (skipped with a visible reason on a machine without CUDA): a real search whose
trials meet a real CUDA out-of-memory error.

Injection: the study's fidelity sets `max_memory_mib: 2`, which caps each trial's CUDA caching
allocator at 2 MiB (`set_per_process_memory_fraction`), less than one training batch needs, so
every trial's first allocations raise `torch.cuda.OutOfMemoryError` inside a Ray worker that holds
half a GPU. Each trial must be stored as failed with the reason, told to Optuna as FAIL, and the
search must run to its trial count. A second search in the same Ray instance without the limit
must complete its trials (the workers are not left capped or broken).

Run on a GPU machine:  python -m pytest tests/reliability/test_gpu_faults.py -q -rs"""
from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
              pytest.mark.ray, pytest.mark.timeout(400)]


def test_search_records_real_cuda_oom_and_goes_on(ray_session, tmp_path):
    import optuna
    from optuna.trial import TrialState

    from orchestrator.config import load_config_data
    from orchestrator.search import run_search
    from storage import Store

    from .search_helpers import TINY, study_config
    url = f"sqlite:///{tmp_path / 'store.db'}"
    oom = {"preset": "smoke", "overrides": {**TINY["overrides"], "max_memory_mib": 2}}
    cfg = load_config_data(study_config(url, "oom", trials=3, fidelity=oom, resources={"cpu": 1, "gpu": 0.5}))
    out = run_search(cfg, live=False)
    frame = Store(url, create=False).trials_frame("oom")
    assert sorted(frame["number"]) == [0, 1, 2]
    assert set(frame["status"]) == {"failed"}, list(zip(frame["status"], frame["error"]))
    assert all(e.startswith("CUDA out of memory") for e in frame["error"]), list(frame["error"])
    assert set(frame["device"]) != {"cpu"}
    ot = optuna.load_study(study_name="oom", storage=url).get_trials(deepcopy=False)
    assert sorted(t.number for t in ot) == [0, 1, 2] and all(t.state == TrialState.FAIL for t in ot)
    assert out.failed == 3

    cfg = load_config_data(study_config(url, "after-oom", trials=2, resources={"cpu": 1, "gpu": 0.5}))
    out = run_search(cfg, live=False)
    frame = Store(url, create=False).trials_frame("after-oom")
    assert list(frame["status"]) == ["complete", "complete"], list(frame["error"])
    assert out.complete == 2
