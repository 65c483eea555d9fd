"""Pareto fronts and hypervolume histories, with Optuna's implementations.

- Front: `optuna.study._multi_objective._is_pareto_front` (lexsort + cumulative minimum in 2-D,
  vectorized sweeps in n-D) on values turned into losses (maximized objectives negated).
- Hypervolume: `optuna._hypervolume.compute_hypervolume` (exact; WFG beyond 3-D), used
  incrementally the way Optuna's `plot_hypervolume_history` does: a new non-dominated point adds
  its box minus the part already covered (the hypervolume of the current front clipped to it), so
  each trial costs work proportional to the front, not to all trials seen so far.

Only complete trials count; only feasible ones (feasible is NULL or true) enter fronts. A NaN in any
objective keeps a trial off the front. Infinities are ordinary extremes: +inf loss never beats
anything and lies beyond every reference point; a -inf loss makes the hypervolume infinite."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _is_pareto_front
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from .frames import parse_many
from .models import architectures, trials


def _signs(objectives) -> np.ndarray:
    return np.asarray([-1.0 if d == "maximize" else 1.0 for _, d in objectives])


def _values(conn: Connection, study_id: int, objectives, *, feasible_only: bool, with_arch: bool):
    names = [n for n, _ in objectives]
    need_tasks = any(n.startswith("task:") for n in names)
    cols = [trials.c.number, trials.c.feasible, trials.c.metrics]
    if need_tasks:
        cols.append(trials.c.task_scores)
    src = trials
    if with_arch:
        cols += [architectures.c.fingerprint, architectures.c.pattern]
        src = trials.outerjoin(architectures, trials.c.architecture_id == architectures.c.id)
    q = select(*cols).select_from(src).where(trials.c.study_id == study_id, trials.c.status == "complete")
    if feasible_only:
        q = q.where(or_(trials.c.feasible.is_(None), trials.c.feasible.is_(True)))
    rows = conn.execute(q.order_by(trials.c.number)).all()
    metrics = parse_many([r.metrics for r in rows])
    tasks = parse_many([r.task_scores for r in rows]) if need_tasks else None
    vals = np.empty((len(rows), len(names)), dtype=float)
    for j, name in enumerate(names):
        src_dicts, key = (tasks, name[5:]) if name.startswith("task:") else (metrics, name)
        vals[:, j] = [d.get(key, np.nan) for d in src_dicts]
    numbers = np.fromiter((r.number for r in rows), dtype=np.int64, count=len(rows))
    feasible = np.fromiter((r.feasible is not False for r in rows), dtype=bool, count=len(rows))
    return rows, numbers, vals, feasible


def pareto_front(conn: Connection, study_id: int, objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    rows, numbers, vals, _ = _values(conn, study_id, objectives, feasible_only=True, with_arch=True)
    loss = vals * _signs(objectives)
    idx = np.flatnonzero(~np.isnan(loss).any(axis=1))
    on_front = np.zeros(len(rows), dtype=bool)
    if len(idx):
        on_front[idx] = _is_pareto_front(loss[idx], assume_unique_lexsorted=False)
    sel = np.flatnonzero(on_front)
    sel = sel[np.lexsort(tuple(loss[sel].T[::-1]))]  # best first on the first objective, then the next
    out = pd.DataFrame({"number": numbers[sel],
                        "fingerprint": [rows[i].fingerprint for i in sel],
                        "pattern": [rows[i].pattern for i in sel]})
    for j, (name, _) in enumerate(objectives):
        out[name] = vals[sel, j]
    return out


def default_reference(loss: np.ndarray) -> np.ndarray:
    """Nadir of the finite points pushed out by 10% of each objective's range (in loss space)."""
    finite = loss[np.isfinite(loss).all(axis=1)]
    if not len(finite):
        return np.ones(loss.shape[1])
    hi, lo = finite.max(axis=0), finite.min(axis=0)
    span = hi - lo
    span = np.where(span > 0, span, np.where(hi != 0, np.abs(hi), 1.0))
    return hi + 0.1 * span


def hypervolume_history(conn: Connection, study_id: int, objectives: Sequence[tuple[str, str]],
                        reference_point: Sequence[float] | None = None) -> pd.DataFrame:
    _, numbers, vals, feasible = _values(conn, study_id, objectives, feasible_only=False, with_arch=False)
    signs = _signs(objectives)
    loss = vals * signs
    usable = feasible & ~np.isnan(loss).any(axis=1)
    if reference_point is None:
        ref = default_reference(loss[usable])
    else:
        ref = np.asarray(reference_point, dtype=float) * signs
    # Trials that cannot change the volume are settled without a Python-level step: beyond the
    # reference point, infeasible, NaN.
    usable &= (loss <= ref).all(axis=1)
    hv_out = np.zeros(len(numbers))
    hv, front = 0.0, None
    for i in range(len(numbers)):
        if usable[i] and np.isfinite(hv):
            v = loss[i:i + 1]
            if front is None or not (front <= v).all(axis=1).any():
                if np.isneginf(v).any():
                    hv = np.inf
                else:
                    hv += float(np.prod(ref - v))
                    if front is None:
                        front = v
                    else:
                        hv -= compute_hypervolume(np.maximum(front, v), ref)
                        front = np.concatenate([front[(front < v).any(axis=1)], v], axis=0)
        hv_out[i] = hv
    return pd.DataFrame({"number": numbers, "hypervolume": hv_out})
