"""Shared test set-up: one torch thread (CI has 2 cores shared with Ray and the database)."""
import os

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
