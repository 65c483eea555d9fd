"""First-call tuning for the project's own Triton kernels (shared by ops/*/triton.py).

`tuned(key, candidates, launch)` runs `launch(cfg)` with the fastest candidate config for `key`,
timing every candidate on the first call in this process (each launch must rewrite all of its
outputs, so trial runs are harmless) and remembering the winner. Not Triton's autotuner: the
configs change buffer shapes the caller allocates (partial sums per block, stored states per
chunk), which `triton.autotune` cannot know about. Under Triton's CPU interpreter (the tests) or
without CUDA only the first candidate runs. Returns what `launch` returns."""
from __future__ import annotations

import os

import torch

_BEST: dict[tuple, object] = {}


def tuned(key: tuple, candidates, launch, check=None):
    """check(cfg), optional, runs once per candidate before it is timed; a candidate whose check
    raises is dropped (e.g. a forward config whose backward kernel does not fit the GPU)."""
    best = _BEST.get(key)
    if best is not None:
        return launch(best)
    cands = list(candidates)
    if not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
        _BEST[key] = cands[0]
        if check is not None:
            check(cands[0])
        return launch(cands[0])
    timed = []
    for cfg in cands:
        try:
            if check is not None:
                check(cfg)
            launch(cfg)  # compiles
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(3):
                launch(cfg)
            end.record()
            end.synchronize()
            timed.append((start.elapsed_time(end), cfg))
        except Exception:  # noqa: BLE001 - a config that does not compile is not a candidate
            continue
    if not timed:
        raise RuntimeError(f"no Triton config compiles for {key}")
    best = min(timed, key=lambda x: x[0])[1]
    _BEST[key] = best
    return launch(best)
