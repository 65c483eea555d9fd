"""Run an op with the backend `proxy_models.backends` chose, falling back to plain PyTorch.

`run(op, impls, x, *args)` asks `backends.choose` for the forward choice (no grad) or the backward
choice (grad enabled: one backend must serve both directions, and the backward choice is the
stricter one), calls it, and returns (outputs, backend name). An fla kernel that raises at call
time (a dtype it does not take, an import that fails late) is logged once and replaced by the
plain-PyTorch form, whose name is then reported: a run never crashes on a kernel choice."""
from __future__ import annotations

import logging

import torch

from .. import backends

log = logging.getLogger(__name__)
_FAILED: set[tuple] = set()
_DISABLED: set[tuple[str, str]] = set()

TORCH = "torch-chunked"


def choice(op: str, device: torch.device, dtype: torch.dtype, need_grad: bool, shape: tuple = ()) -> str:
    return backends.choose(op, device, dtype, "bwd" if need_grad else "fwd", shape)


def run(op: str, impls: dict, device: torch.device, dtype: torch.dtype, *args, probe_shape: tuple = (),
        **kwargs):
    """impls: backend name -> callable; must contain TORCH. probe_shape: what the op's checks in
    `backends` look at (e.g. (T,) for SSD, whose quadratic form is offered only for short T)."""
    name = choice(op, device, dtype, torch.is_grad_enabled(), probe_shape)
    key = (op, name, device.type, dtype)
    if name != TORCH and name in impls and key not in _FAILED and (op, name) not in _DISABLED:
        try:
            return impls[name](*args, **kwargs), name
        except Exception as exc:  # noqa: BLE001 - any kernel failure falls back, once logged
            _FAILED.add(key)
            log.warning("backend %s for %s failed (%s: %s); using %s from now on",
                        name, op, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", TORCH)
    return impls[TORCH](*args, **kwargs), TORCH


def disable(op: str, name: str) -> None:
    """Stop using backend `name` for `op` in this process (e.g. it failed a correctness check)."""
    _DISABLED.add((op, name))


def used(op: str, device: torch.device, dtype: torch.dtype, need_grad: bool, shape: tuple = ()) -> str:
    """The backend `run` would use now, without running it."""
    name = choice(op, device, dtype, need_grad, shape)
    if name == TORCH or (op, name) in _DISABLED or (op, name, device.type, dtype) in _FAILED:
        return TORCH
    return name
