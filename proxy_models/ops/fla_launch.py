"""Launch configurations for fla's Triton kernels: one fixed config per kernel instead of autotuning.

Why: fla 0.6 decorates each kernel with `triton.autotune` over 15-30 configs (num_warps x
num_stages x block sizes). On a fresh machine the first call of an op compiles every config of
every kernel it uses: measured on an H100, chunk_rwkv7 forward+backward > 170 s and
chunk_retention 125 s, which no proxy trial (about a minute of training) pays back. With one
config per kernel the first call compiles each kernel once (seconds), and Triton's on-disk cache
makes later processes on the machine start warm.

`limit_autotune()` walks the imported `fla.*` modules for `triton.runtime.autotuner.Autotuner`
objects (also inside `triton.heuristics` wrappers) and keeps the one config `pick` prefers:
num_warps 4, num_stages 2 (the least shared memory of the usual choices), block sizes of 64 (the
head dims the proxies use) or the nearest below. A config that does not compile or computes wrong
numbers on this GPU is caught by the backend self-test (`ops/dispatch.py`), which then falls back
to the PyTorch form. `set_mode("full")` leaves fla's autotuning alone (for long trainings, where
minutes of tuning do pay back). The choice per kernel is kept in `CHOSEN` for the benchmarks.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_MODE = "one"            # "one": a single config per kernel; "full": fla's own autotuning
CHOSEN: dict[str, str] = {}
_SEEN: set[int] = set()
_SCANNED: set[str] = set()  # fla modules already walked (the scan runs again only for new ones)
_N_MODULES = 0              # len(sys.modules) at the last scan: unchanged means nothing new to walk


def set_mode(mode: str) -> None:
    if mode not in ("one", "full"):
        raise ValueError(f"fla autotune mode must be 'one' or 'full', got {mode!r}")
    global _MODE
    _MODE = mode


def mode() -> str:
    return _MODE


def _block_value(values: list[int]) -> int:
    below = [v for v in values if v <= 64]
    return max(below) if below else min(values)


def pick(configs: list) -> object:
    """The preferred config among a kernel's candidates (see the module docstring)."""
    kw_values: dict[str, list] = {}
    for c in configs:
        for k, v in c.kwargs.items():
            kw_values.setdefault(k, []).append(v)
    want = {k: _block_value(vs) if all(isinstance(x, int) for x in vs) else vs[0] for k, vs in kw_values.items()}

    def score(c):
        kw_miss = sum(c.kwargs.get(k) != v for k, v in want.items())
        return (kw_miss, abs((c.num_warps or 4) - 4), abs((c.num_stages or 2) - 2))
    return min(configs, key=score)


def _autotuners(obj, depth: int = 0):
    from triton.runtime.autotuner import Autotuner
    if depth > 4 or obj is None:
        return
    if isinstance(obj, Autotuner):
        yield obj
    inner = getattr(obj, "fn", None)
    if inner is not None and inner is not obj:
        yield from _autotuners(inner, depth + 1)


def limit_autotune() -> int:
    """Reduce every not-yet-seen fla autotuner to one config; returns how many were changed."""
    global _N_MODULES
    if _MODE != "one" or len(sys.modules) == _N_MODULES:
        return 0  # called before every fla kernel call: the common case must cost nothing
    _N_MODULES = len(sys.modules)
    changed = 0
    for name, mod in list(sys.modules.items()):
        if not name.startswith("fla.") or mod is None or name in _SCANNED:
            continue
        _SCANNED.add(name)
        for attr, obj in list(vars(mod).items()):
            for tuner in _autotuners(obj):
                if id(tuner) in _SEEN:
                    continue
                _SEEN.add(id(tuner))
                configs = list(getattr(tuner, "configs", []) or [])
                if len(configs) <= 1:
                    continue
                best = pick(configs)
                tuner.configs = [best]
                CHOSEN[f"{name}.{attr}"] = str(best)
                changed += 1
    if changed:
        log.info("fla: %d kernels limited to one launch config each (no autotuning)", changed)
    return changed
