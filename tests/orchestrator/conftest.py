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


@pytest.fixture
def tiny_space():
    """(space, every): the 40-architecture tiny space and fingerprint -> architecture for all of it."""
    import random

    from orch_helpers import TINY_SPACE
    from search_space.space import SearchSpace
    space = SearchSpace.from_yaml(TINY_SPACE)
    rng = random.Random(0)
    every = {a.fingerprint(): a for a in (space.random(rng) for _ in range(3000))}
    assert len(every) == 40
    return space, every
