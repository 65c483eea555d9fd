"""Pareto fronts and hypervolume histories, with Optuna's implementations.

- Front: `optuna.study._multi_objective._is_pareto_front` (lexsort + cumulative minimum in 2-D,
  vectorized sweeps in n-D) on values turned into losses (maximized objectives negated).
- Hypervolume: `optuna._hypervolume.compute_hypervolume` (exact; WFG beyond 3-D), used
  incrementally the way Optuna's `plot_hypervolume_history` does: a new non-dominated point adds
  its box minus the part already covered (the hypervolume of the current front clipped to it), so
  each trial costs work proportional to the front, not to all trials seen so far.

Objective values come from the trials' REAL metric columns (`m_<name>`, see `storage.models`),
so a front of 10k trials needs no JSON parsing; other metrics and `task:<name>` scores fall back
to the JSON text. Only complete trials count; only feasible ones (feasible is NULL or true) enter fronts. A NaN in any
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
from .models import METRIC_COLUMNS, architectures, trials


def _signs(objectives) -> np.ndarray:
    return np.asarray([-1.0 if d == "maximize" else 1.0 for _, d in objectives])


def _values(conn: Connection, study_id: int, objectives, *, feasible_only: bool):
    """numbers, values [n, k] (NaN where missing), feasible flags of the complete trials."""
    names = [n for n, _ in objectives]
    cols = [trials.c.number, trials.c.feasible]
    # Catalogue metrics come from their REAL columns; anything else from the JSON text.
    from_cols = [j for j, n in enumerate(names) if n in METRIC_COLUMNS]
    from_json = [j for j, n in enumerate(names) if n not in METRIC_COLUMNS]
    cols += [trials.c[f"m_{names[j]}"] for j in from_cols]
    need_metrics = any(not names[j].startswith("task:") for j in from_json)
    need_tasks = any(names[j].startswith("task:") for j in from_json)
    cols += [trials.c.metrics] if need_metrics else []
    cols += [trials.c.task_scores] if need_tasks else []
    q = select(*cols).where(trials.c.study_id == study_id, trials.c.status == "complete")
    if feasible_only:
        q = q.where(or_(trials.c.feasible.is_(None), trials.c.feasible.is_(True)))
    rows = conn.execute(q.order_by(trials.c.number)).all()
    k = len(names)
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k)), np.zeros(0, dtype=bool)
    table = list(zip(*rows))
    numbers = np.asarray(table[0], dtype=np.int64)
    feasible = np.fromiter((f is not False for f in table[1]), dtype=bool, count=len(rows))
    vals = np.full((len(rows), k), np.nan)
    if from_cols:
        vals[:, from_cols] = np.asarray(table[2:2 + len(from_cols)], dtype=float).T  # None -> NaN
    if from_json:
        metrics = parse_many(table[2 + len(from_cols)]) if need_metrics else None
        tasks = parse_many(table[-1]) if need_tasks else None
        for j in from_json:
            src, key = (tasks, names[j][5:]) if names[j].startswith("task:") else (metrics, names[j])
            vals[:, j] = [d.get(key, np.nan) for d in src]
    return numbers, vals, feasible


def pareto_front(conn: Connection, study_id: int, objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    numbers, vals, _ = _values(conn, study_id, objectives, feasible_only=True)
    loss = vals * _signs(objectives)
    idx = np.flatnonzero(~np.isnan(loss).any(axis=1))
    on_front = np.zeros(len(numbers), dtype=bool)
    if len(idx):
        on_front[idx] = _is_pareto_front(loss[idx], assume_unique_lexsorted=False)
    sel = np.flatnonzero(on_front)
    sel = sel[np.lexsort(tuple(loss[sel].T[::-1]))]  # best first on the first objective, then the next
    # Architecture columns only for the few trials on the front.
    arch = {}
    front_numbers = numbers[sel].tolist()
    for i in range(0, len(front_numbers), 5000):
        q = (select(trials.c.number, architectures.c.fingerprint, architectures.c.pattern)
             .join(architectures, trials.c.architecture_id == architectures.c.id)
             .where(trials.c.study_id == study_id, trials.c.number.in_(front_numbers[i:i + 5000])))
        arch.update({n: (f, p) for n, f, p in conn.execute(q)})
    out = pd.DataFrame({"number": numbers[sel],
                        "fingerprint": [arch.get(n, (None, None))[0] for n in front_numbers],
                        "pattern": [arch.get(n, (None, None))[1] for n in front_numbers]})
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
    numbers, vals, feasible = _values(conn, study_id, objectives, feasible_only=False)
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
