"""Helpers for the storage tests: small real architectures and results (no __init__.py in tests/storage:
a package named `storage` would shadow the real one)."""
from search_space import Architecture
from search_space.result import TrialResult

MIXERS = [{"type": "attention", "heads": 4}, {"type": "mamba2"}, {"type": "retention", "heads": 4}]


def make_arch(i: int) -> Architecture:
    """A distinct small architecture per i (d_model and block mix vary)."""
    blocks = [{"mixer": MIXERS[(i + k) % len(MIXERS)]} for k in range(1 + i % 3)]
    return Architecture.from_dict({"name": f"a{i}", "d_model": 64 + 32 * (i // 3), "blocks": blocks})


def result(status="complete", **metrics) -> TrialResult:
    return TrialResult(status=status, metrics={k: float(v) for k, v in metrics.items()})


