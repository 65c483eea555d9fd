"""Turning the store's trials frame into what the views draw: categories, summaries, filters.

Pure pandas/numpy, no Streamlit and no database: the app caches the result of `prepare` per
(store, study, revision), tests and the benchmark call it directly.

Design choices:
- Category of a trial, in this order: running, failed, pruned, infeasible (a stored constraint
  value > 0, or `feasible` false), failed again when a complete trial has a non-finite objective
  (it diverged), then Pareto / dominated among the rest on the *study's* objectives.
- The Pareto set is computed here, on the frame already in memory (one sweep after a
  lexicographic sort: a point can only be dominated by one sorted before it), so a 10,000-trial
  study needs no second query and the colours always agree with the table.
- Primitives present in a trial are read from its architecture YAML with a regular expression
  over `type:` keys (both the flow and block styles `to_yaml` writes), which costs microseconds
  per trial; parsing 10,000 architectures with pydantic would cost seconds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from search_space.metrics import METRICS
from search_space.registry import CHANNEL_MIXERS, TOKEN_MIXERS


PRIMITIVES = tuple(TOKEN_MIXERS) + tuple(k for k in CHANNEL_MIXERS if k != "none")
_TYPE_RE = re.compile(r"\btype:\s*['\"]?([A-Za-z0-9_]+)")

QUALITY_PREFS = ("quality", "val_bpb", "val_loss")
THROUGHPUT_PREFS = ("decode_tokens_per_s", "train_tokens_per_s", "prefill_tokens_per_s")
MEMORY_PREFS = ("peak_memory_mib", "decode_memory_mib", "cache_mib_2k", "cache_mib_8k", "cache_mib_32k", "params_total")
NON_METRIC = {"number", "seed", "id", "study_id", "architecture_id", "revision", "feasible"}


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "maximize" | "minimize"


def primitives_in(yaml_text: str | None) -> frozenset[str]:
    if not isinstance(yaml_text, str):
        return frozenset()
    return frozenset(t for t in _TYPE_RE.findall(yaml_text) if t in PRIMITIVES)


def nondominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (n x k, every column minimised, no NaN) on the front."""
    n = F.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(F.T[::-1])
    Fs = F[order]
    front = np.empty((0, F.shape[1]))
    keep = []
    for i in range(n):
        f = Fs[i]
        if front.shape[0]:
            le = (front <= f).all(axis=1)
            if (le & (front < f).any(axis=1)).any():
                continue
        keep.append(i)
        front = np.vstack([front, f])
    mask[order[keep]] = True
    return mask


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Numeric columns worth an axis: catalogue metrics first (catalogue order), then task scores,
    then any other numeric column the store added; only those with at least one finite value."""
    cols = []
    for c in list(METRICS) + sorted(c for c in df.columns if str(c).startswith("task:")) + \
            sorted(c for c in df.columns if c not in METRICS and not str(c).startswith("task:")):
        if c in cols or c not in df.columns or c in NON_METRIC:
            continue
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            continue
        if np.isfinite(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)).any():
            cols.append(c)
    return cols


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def categories(df: pd.DataFrame, objectives: list[Objective]) -> pd.Series:
    status = df["status"].astype(str).str.lower().to_numpy() if "status" in df else np.full(len(df), "complete")
    cat = np.full(len(df), "dominated", dtype=object)
    complete = status == "complete"
    cat[~complete] = np.where(status[~complete] == "pruned", "pruned",
                              np.where(np.isin(status[~complete], ["running", "queued", "waiting"]), "running", "failed"))
    infeasible = np.zeros(len(df), dtype=bool)
    if "feasible" in df:
        f = df["feasible"]
        infeasible |= f.notna().to_numpy() & (f.astype("boolean").fillna(True) == False).to_numpy()  # noqa: E712
    cat[complete & infeasible] = "infeasible"
    if objectives:
        F = np.column_stack([(-1.0 if o.direction == "maximize" else 1.0) * _num(df, o.name) for o in objectives])
        # as in storage.pareto: NaN keeps a trial off the front, infinities are ordinary extremes
        finite = ~np.isnan(F).any(axis=1)
    else:
        F = np.zeros((len(df), 0))
        finite = np.ones(len(df), dtype=bool)
    cat[complete & ~infeasible & ~finite] = "failed"
    cand = np.flatnonzero(complete & ~infeasible & finite)
    if objectives and cand.size:
        on = nondominated(F[cand])
        cat[cand[on]] = "Pareto"
    return pd.Series(cat, index=df.index, name="category")


def prepare(frame: pd.DataFrame, objectives: list[Objective]) -> pd.DataFrame:
    """The frame every view reads: the store's columns plus category and primitives."""
    df = frame.copy()
    if "number" not in df:
        df["number"] = np.arange(len(df))
    df["number"] = df["number"].astype(int)
    if "status" not in df:
        df["status"] = "complete"
    df["category"] = categories(df, objectives)
    if "yaml" in df:
        df["primitives"] = [primitives_in(y) for y in df["yaml"]]
    elif "primitives" not in df:
        df["primitives"] = [frozenset()] * len(df)
    if "pattern" not in df:
        df["pattern"] = ""
    if "fidelity" not in df:
        df["fidelity"] = ""
    return df.sort_values("number").reset_index(drop=True)


def pick(df_cols: list[str], objectives: list[Objective], prefs: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str | None:
    """The column for a role (quality, throughput, memory): a study objective of that role first,
    then the first preference that has data."""
    for o in objectives:
        if o.name in prefs and o.name in df_cols and o.name not in exclude:
            return o.name
    for p in prefs:
        if p in df_cols and p not in exclude:
            return p
    return None


def quality_column(df_cols: list[str], objectives: list[Objective]) -> str | None:
    for o in objectives:
        m = METRICS.get(o.name)
        if o.name in df_cols and ((m and m.kind == "quality") or o.name.startswith("task:")):
            return o.name
    return pick(df_cols, objectives, QUALITY_PREFS)


@dataclass
class Filters:
    categories: list[str] | None = None      # keep these categories (None: all)
    statuses: list[str] | None = None        # keep these store statuses (None: all)
    primitives: list[str] | None = None      # keep trials containing every one of these
    range_column: str | None = None
    range: tuple[float, float] | None = None  # inclusive


def apply_filters(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    keep = np.ones(len(df), dtype=bool)
    if f.categories:
        keep &= df["category"].isin(f.categories).to_numpy()
    if f.statuses:
        keep &= df["status"].isin(f.statuses).to_numpy()
    if f.primitives:
        need = set(f.primitives)
        keep &= np.fromiter((need <= p for p in df["primitives"]), dtype=bool, count=len(df))
    if f.range_column and f.range and f.range_column in df:
        v = _num(df, f.range_column)
        lo, hi = f.range
        keep &= (v >= lo) & (v <= hi)
    return df[keep]
