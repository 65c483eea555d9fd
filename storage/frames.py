"""The trials of a study as a pandas frame (one row per trial), built with one query.

Metric dicts are TEXT JSON (see `storage.models`); joining all of them into one JSON array and
parsing that once is several times faster than one `json.loads` per row at 100k trials."""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from search_space.metrics import METRICS

from .models import architectures, trials

ARCH_COSTS = ("params_total", "params_active", "flops_per_token", "cache_mib_2k", "cache_mib_8k", "cache_mib_32k")
BASE_COLUMNS = ["number", "status", "fingerprint", "pattern", "fidelity", "seed", "device", "backend", "node",
                "feasible", "error", "started_at", "finished_at", "updated_at", "rev"]


def parse_many(texts: Sequence[str | None]) -> list[dict]:
    """Parse many JSON texts at once (NaN/Infinity tokens allowed)."""
    if not texts:
        return []
    return json.loads("[" + ",".join(t or "{}" for t in texts) + "]")


def _utc_col(values) -> pd.Series:
    # SQLite returns naive datetimes (we write UTC); PostgreSQL returns aware ones.
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True)


def trials_frame(conn: Connection, study_id: int, status: str | Sequence[str] | None = None,
                 since_revision: int | None = None) -> pd.DataFrame:
    cols = [trials.c.number, trials.c.status, architectures.c.fingerprint, architectures.c.pattern,
            trials.c.fidelity, trials.c.seed, trials.c.device, trials.c.backend, trials.c.node, trials.c.feasible,
            trials.c.error, trials.c.started_at, trials.c.finished_at, trials.c.updated_at, trials.c.rev,
            trials.c.metrics, trials.c.task_scores] + [architectures.c[k].label(f"arch_{k}") for k in ARCH_COSTS]
    q = (select(*cols).select_from(trials.outerjoin(architectures, trials.c.architecture_id == architectures.c.id))
         .where(trials.c.study_id == study_id).order_by(trials.c.number))
    if status is not None:
        q = q.where(trials.c.status.in_([status] if isinstance(status, str) else list(status)))
    if since_revision is not None:
        q = q.where(trials.c.rev > int(since_revision))
    rows = conn.execute(q).all()
    n = len(rows)
    cols_t = list(zip(*rows)) if rows else [()] * len(cols)
    by = dict(zip([c.name for c in cols], cols_t))

    df = pd.DataFrame({
        "number": np.asarray(by["number"], dtype=np.int64),
        "status": list(by["status"]),
        "fingerprint": list(by["fingerprint"]),
        "pattern": list(by["pattern"]),
        "fidelity": list(by["fidelity"]),
        "seed": pd.array(list(by["seed"]), dtype="Int64"),
        "device": list(by["device"]),
        "backend": parse_many(by["backend"]),
        "node": list(by["node"]),
        "feasible": pd.array(list(by["feasible"]), dtype="boolean"),
        "error": list(by["error"]),
        "started_at": _utc_col(by["started_at"]),
        "finished_at": _utc_col(by["finished_at"]),
        "updated_at": _utc_col(by["updated_at"]),
        "rev": np.asarray(by["rev"], dtype=np.int64),
    })
    metrics = pd.DataFrame.from_records(parse_many(by["metrics"]), index=range(n)) if n else pd.DataFrame()
    for k in ARCH_COSTS:  # architecture costs fill in for trials that never finished
        arch_v = np.asarray([np.nan if v is None else v for v in by[f"arch_{k}"]], dtype=float)
        metrics[k] = metrics[k].astype(float).fillna(pd.Series(arch_v)) if k in metrics else arch_v
    ordered = list(METRICS) + sorted(c for c in metrics.columns if c not in METRICS)
    metrics = metrics.reindex(columns=ordered).astype(float)
    tasks = pd.DataFrame.from_records(parse_many(by["task_scores"]), index=range(n)) if n else pd.DataFrame()
    tasks = tasks.reindex(columns=sorted(tasks.columns)).astype(float).add_prefix("task:")
    return pd.concat([df, metrics.set_axis(df.index), tasks.set_axis(df.index)], axis=1)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in `trials_frame`'s order: base, catalogue metrics, other metrics, task scores."""
    cols = list(frame.columns)
    tasks = sorted(c for c in cols if c.startswith("task:"))
    others = sorted(c for c in cols if c not in BASE_COLUMNS and c not in METRICS and c not in tasks)
    return frame[[c for c in BASE_COLUMNS if c in cols] + [c for c in METRICS if c in cols] + others + tasks]


class IncrementalTrials:
    """A study's trials frame kept current by reading only the rows written since the last read.

    Every write to a study's trials stamps its rows with the study's new revision (`rev`), and
    writes to one study are serialized on that revision, so `rev > seen` is exactly what has not
    been read. The first `refresh` reads everything; later ones read the changed rows and replace
    them by trial number. This is what keeps the dashboard responsive while many workers write:
    the live page no longer re-reads a 16,000-trial frame on every revision."""

    def __init__(self, store, study: str):
        self.store, self.study = store, study
        self.frame: pd.DataFrame | None = None
        self.seen = -1
        self.rows_read = 0   # rows fetched by the last refresh (tests and the load benchmark read it)
        self._lock = threading.Lock()  # one refresh at a time (the dashboard serves sessions in threads)

    def refresh(self) -> pd.DataFrame:
        with self._lock:
            return self._refresh()

    def _refresh(self) -> pd.DataFrame:
        delta = self.store.trials_frame(self.study, since_revision=None if self.frame is None else self.seen)
        self.rows_read = len(delta)
        if self.frame is None:
            self.frame = delta
        elif len(delta):
            keep = self.frame[~self.frame["number"].isin(delta["number"])]
            merged = pd.concat([keep, delta], ignore_index=True, sort=False)
            self.frame = _ordered(merged.sort_values("number", kind="stable").reset_index(drop=True))
        if len(self.frame):
            self.seen = max(self.seen, int(self.frame["rev"].max()))
        return self.frame
