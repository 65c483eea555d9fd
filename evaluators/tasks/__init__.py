"""Synthetic tasks: name -> class. `make_task("mqar", seq_len=128, num_kv_pairs=8)`."""
from __future__ import annotations

from dataclasses import fields

from .base import IGNORE, Task, accuracy
from .compression import Compression
from .memorization import Memorization
from .mqar import MQAR, MQAR_CONFIGS
from .recall import FuzzyInContextRecall, InContextRecall, NoisyInContextRecall
from .selective_copying import SelectiveCopying

TASKS: dict[str, type[Task]] = {t.name: t for t in (
    InContextRecall, NoisyInContextRecall, FuzzyInContextRecall, SelectiveCopying,
    Compression, Memorization, MQAR)}


def make_task(name: str, **params) -> Task:
    """Build a task; unknown names or parameters raise ValueError naming them."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
    cls = TASKS[name]
    known = {f.name for f in fields(cls)}
    bad = sorted(set(params) - known)
    if bad:
        raise ValueError(f"task {name!r} has no parameter {bad[0]!r} (known: {', '.join(sorted(known))})")
    task = cls(**params)
    task.check()
    return task


__all__ = ["TASKS", "make_task", "Task", "IGNORE", "accuracy", "MQAR_CONFIGS"]
