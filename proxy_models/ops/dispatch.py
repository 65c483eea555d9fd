"""Run an op with the backend `proxy_models.backends` chose, falling back to plain PyTorch.

`run(op, impls, device, dtype, *args)` asks `backends.choose` for the forward choice (no grad) or
the backward choice (grad enabled: one backend serves both directions, and the backward choice
is the stricter one), and returns (outputs, backend name).

Never crash on a kernel choice:
- before a fast (Triton / fla) backend is first used in this process for a direction, it must
  pass `selftest.check` against the plain-PyTorch form on a small input, forward and (for
  training) backward: a kernel that does not compile, is refused, or computes wrong numbers on
  this GPU is disabled here, with one warning, instead of failing later inside `backward()`;
- a fast backend that raises at call time is disabled the same way.
Under torch.compile the self-test runs eagerly (a graph break, once), and the fast kernels
themselves are `torch.compiler.disable`d: opaque eager calls inside the compiled graph (they
are Triton already; tracing fla's autotuned kernels or our first-call tuning is not worth the risk)."""
from __future__ import annotations

import contextlib
import logging

import torch

from .. import backends
from . import selftest

log = logging.getLogger(__name__)
_DISABLED: set[tuple[str, str]] = set()
_VERIFIED: set[tuple] = set()
_FORCED: dict[str, str] = {}

TORCH = "torch-chunked"


def choice(op: str, device: torch.device, dtype: torch.dtype, need_grad: bool, shape: tuple = ()) -> str:
    return backends.choose(op, device, dtype, "bwd" if need_grad else "fwd", shape)


def disable(op: str, name: str, why: str = "") -> None:
    """Stop using backend `name` for `op` in this process."""
    if (op, name) not in _DISABLED:
        _DISABLED.add((op, name))
        if why:
            log.warning("backend %s for %s disabled (%s); using %s", name, op, why, TORCH)


@torch.compiler.disable  # under torch.compile: a graph break, and the self-test runs eagerly
def _verify(op: str, name: str, impls: dict, device: torch.device, need_grad: bool) -> bool:
    key = (op, name, device.type, device.index, need_grad)
    ok, why = selftest.check(op, impls[name], impls[TORCH], device, need_grad)
    if not ok:
        disable(op, name, f"self-test {'forward+backward' if need_grad else 'forward'}: {why}")
        return False
    log.info("backend %s for %s passed its self-test (%s)", name, op, why)
    _VERIFIED.add(key)
    return True


def run(op: str, impls: dict, device: torch.device, dtype: torch.dtype, *args, probe_shape: tuple = (),
        **kwargs):
    """impls: backend name -> callable; must contain TORCH. probe_shape: what the op's checks in
    `backends` look at (e.g. (T,) for SSD, whose quadratic form is offered only for short T)."""
    need_grad = torch.is_grad_enabled()
    name = _FORCED.get(op) or choice(op, device, dtype, need_grad, probe_shape)
    if (name != TORCH and name in impls and (op, name) not in _DISABLED
            and ((op, name, device.type, device.index, need_grad) in _VERIFIED
                 or _verify(op, name, impls, device, need_grad))):
        try:
            return impls[name](*args, **kwargs), name
        except Exception as exc:  # noqa: BLE001 - any kernel failure falls back, once logged
            msg = str(exc).splitlines()[0] if str(exc) else ""
            disable(op, name, f"{type(exc).__name__}: {msg}")
    return impls[TORCH](*args, **kwargs), TORCH


def used(op: str, device: torch.device, dtype: torch.dtype, need_grad: bool, shape: tuple = ()) -> str:
    """The backend `run` would use now (before any self-test has run), without running it."""
    name = choice(op, device, dtype, need_grad, shape)
    return TORCH if name == TORCH or (op, name) in _DISABLED else name


@contextlib.contextmanager
def forced(op: str, name: str):
    """Run `op` with backend `name` inside the block (benchmarks compare backends with it); the
    self-test still gates it."""
    old = _FORCED.get(op)
    _FORCED[op] = name
    try:
        yield
    finally:
        if old is None:
            _FORCED.pop(op, None)
        else:
            _FORCED[op] = old
