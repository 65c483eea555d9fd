"""GPU sharing (orchestrator/packing.py): the arithmetic, the heaviest-architecture probe (run on
CPU here: same code, CPU peak memory), the worker set-up, and `resources.gpu: auto` falling back to
the CPU settings on a Ray cluster without GPUs (real Ray)."""
from __future__ import annotations

import math

import pytest

from evaluators.trainer import GRAPH_WARMUP
from orchestrator.packing import RAY_RESOLUTION, heaviest, measure_peaks, plan_packing, probe_fidelity, setup_worker


def test_memory_bound_packing():
    # 20 GB per trial + 0.5 GB context on an 80 GB card: 3 fit, not 4
    p = plan_packing(20_000, 81_559, max_per_gpu=8, context_mib=500, reserve_frac=0.03)
    assert p.trials_per_gpu == 3 and p.limited_by == "memory"
    assert p.gpu_fraction == pytest.approx(0.3333)
    assert 3 * (p.memory_cap_mib + p.context_mib) <= p.usable_mib + 1e-6
    assert p.memory_cap_mib >= p.need_mib


def test_cap_and_cpu_bounds():
    small = plan_packing(1_000, 81_559, max_per_gpu=8, context_mib=500)
    assert (small.trials_per_gpu, small.limited_by, small.gpu_fraction) == (8, "max_per_gpu", 0.125)
    # a 16-core host with 2 CPUs per trial: at most 8 trials, and a cap of 16 does not matter
    cpus = plan_packing(1_000, 81_559, max_per_gpu=16, cpus_per_gpu=16, cpu_per_trial=2)
    assert (cpus.trials_per_gpu, cpus.limited_by) == (8, "cpus")
    third = plan_packing(1_000, 81_559, max_per_gpu=16, cpus_per_gpu=6, cpu_per_trial=2)
    assert third.trials_per_gpu == 3


def test_too_big_for_one_gpu_runs_alone_with_a_note():
    p = plan_packing(90_000, 81_559)
    assert p.trials_per_gpu == 1 and p.gpu_fraction == 1.0 and "out of memory" in p.note


@pytest.mark.parametrize("k", range(1, 65))
def test_k_shares_fit_in_one_gpu_at_rays_resolution(k):
    p = plan_packing(100, 1e6, max_per_gpu=k, context_mib=500)
    assert p.trials_per_gpu == k
    units = round(p.gpu_fraction / RAY_RESOLUTION)
    assert abs(units * RAY_RESOLUTION - p.gpu_fraction) < 1e-12
    assert k * units <= round(1 / RAY_RESOLUTION)            # k of them fit on one GPU
    assert units == round(1 / RAY_RESOLUTION) // k             # and no smaller share than needed


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        plan_packing(0, 80_000)
    with pytest.raises(ValueError):
        plan_packing(100, -1)


def test_heaviest_ranks_by_estimate_and_probe_keeps_shapes(small_space):
    from evaluators.fidelity import FIDELITIES
    std = FIDELITIES["standard"]
    top = heaviest(small_space, std, samples=12, top=3, seed=1)
    assert len(top) == 3
    ests = [e for e, _ in top]
    assert ests == sorted(ests, reverse=True)
    probe = probe_fidelity(std)
    for t, p in zip(std.tasks, probe.tasks):
        assert (p.batch_size, p.params) == (t.batch_size, t.params)
        from evaluators.tasks import make_task
        # past the CUDA-graph warm-up: the step is captured and replayed, its pool in the peak
        assert p.tokens // (p.batch_size * make_task(p.name, **p.params).input_len) == GRAPH_WARMUP + 2
    assert probe_fidelity(std.model_copy(update={"cuda_graphs": False})).tasks[0].tokens == 2 * 64 * 127
    assert probe.text.seq_len == std.text.seq_len and probe.text.batch_size == std.text.batch_size
    assert probe.efficiency.measure is False and probe.max_seconds is None


def test_measure_peaks_runs_a_real_short_training_on_cpu(small_space):
    from evaluators.fidelity import FIDELITIES
    import random
    arch = small_space.random(random.Random(0))
    got = measure_peaks([arch.to_dict()], probe_fidelity(FIDELITIES["smoke"]).model_dump(mode="json"), device="cpu")
    (row,) = got["archs"]
    assert row["status"] == "complete", row["error"]
    assert row["peak_reserved_mib"] > 10  # the process's peak resident set


def test_setup_worker_on_cpu_turns_fla_off_and_records_nothing():
    from proxy_models import backends
    try:
        assert setup_worker({"gpu": 0}) == {}
        assert backends._FLA_ENABLED is False
        setup_worker({"gpu": 0, "fla_kernels": True})
        assert backends._FLA_ENABLED is True
    finally:
        backends.set_fla_enabled(False)  # the process default


def test_auto_falls_back_to_cpu_without_gpus(ray_local, tmp_path, caplog):
    from orch_helpers import study_config
    from orchestrator.config import load_config_data
    from orchestrator.search import preflight

    data = study_config(tmp_path, f"sqlite:///{tmp_path / 's.db'}", resources={"cpu": 1, "gpu": "auto"})
    cfg = load_config_data(data)
    assert cfg.resources.gpu == "auto"
    with pytest.raises(ValueError):
        cfg.resources.as_ray()
    with caplog.at_level("WARNING", logger="orchestrator.packing"):
        prep = preflight(cfg)
    assert prep.cfg.resources.gpu == 0 and prep.cfg.resources.as_ray() == {"cpu": 1.0, "gpu": 0.0}
    assert prep.packing["mode"] == "cpu" and "no GPU" in prep.packing["note"]
    assert any("no GPU" in r.getMessage() for r in caplog.records)
    assert math.isfinite(prep.cfg.resources.memory_margin)
