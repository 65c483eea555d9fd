"""Reliability suite set-up: one real local Ray instance for the tests that run searches (reused
if another area's tests already started one in this session), Tune's files in a temp dir."""
from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HYBRID_NAS_RAY_RESULTS", os.path.join(tempfile.gettempdir(), "hnas-reliability-ray-results"))


@pytest.fixture(scope="session")
def ray_session():
    import ray
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    yield ray
    if started:
        ray.shutdown()
