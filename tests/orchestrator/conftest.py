"""Orchestrator test set-up: one real local Ray instance per session (2 CPUs); study configs
with a tiny test-only fidelity come from orch_helpers."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HYBRID_NAS_RAY_RESULTS", "/tmp/hybrid-nas-test-ray-results")


@pytest.fixture(scope="session")
def ray_local():
    import ray
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_space():
    from orch_helpers import SMALL_SPACE
    from search_space.space import SearchSpace
    return SearchSpace.from_yaml(SMALL_SPACE)
