"""`TrialResult`: what one evaluation of one architecture produced (the evaluators -> storage hop).

A plain dataclass (no torch) so storage and the orchestrator can pass it around. Non-finite
numbers are kept as floats (nan/inf); storage records them explicitly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass
class TrialResult:
    status: Literal["complete", "failed", "pruned"]
    #: objective-ready metrics by catalogue name (search_space.metrics.METRICS)
    metrics: dict[str, float] = field(default_factory=dict)
    #: per-task quality scores, e.g. {"mqar": 0.93, "selective_copying": 0.71, "text_bpb": 2.1}
    task_scores: dict[str, float] = field(default_factory=dict)
    #: learning curves: name -> [(step, value), ...], e.g. "train_loss", "quality"
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    analytic: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    fidelity: str = ""
    seed: int = 0
    device: str = ""          # e.g. "cpu (2 cores)" or "NVIDIA H100 80GB HBM3"
    backend: dict[str, str] = field(default_factory=dict)  # layer path -> kernel backend
    wall_time_s: float = 0.0
    error: str | None = None  # failure reason ("diverged: loss is nan at step 40", "CUDA OOM", ...)
    extra: dict = field(default_factory=dict)  # e.g. {"shared_device_trials": 4}

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialResult":
        d = dict(d)
        d["curves"] = {k: [tuple(p) for p in v] for k, v in d.get("curves", {}).items()}
        return cls(**d)
