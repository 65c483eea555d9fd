"""`hybrid-nas studies` and `hybrid-nas trials`: look into a store from the terminal.

Thin: parse flags, call `storage.Store`, print a rich table. Read-only, so a SQLite path that does
not exist is an error (not a new empty file). Every storage problem is a `StoreError` (one line,
exit 2) raised by the library; the URL can also come from `HNAS_STORAGE`."""
from __future__ import annotations

import math
import os

import click

STORAGE_HELP = ("database URL: sqlite:///path.db, a file path, or postgresql+psycopg://user@host:5432/db "
                "(default: hybrid-nas.db here; env HNAS_STORAGE)")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return str(v)


def _console():
    from rich.console import Console
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped into a file or grep: do not fold cells into 80 columns
    return console


def _when(ts) -> str:
    try:
        return ts.strftime("%Y-%m-%d %H:%M:%S") if ts is not None and ts == ts else ""
    except (AttributeError, ValueError):
        return ""


@click.command()
@click.option("--storage", "storage_url", envvar="HNAS_STORAGE", default=None, help=STORAGE_HELP)
def studies(storage_url):
    """List the studies in a store with their trial counts."""
    from rich.table import Table

    from storage import TRIAL_STATUSES, Store

    with Store(storage_url, create=False) as store:
        rows = store.list_studies()
    table = Table()
    for col in ("study", "status", "objectives", *TRIAL_STATUSES, "total", "created (UTC)", "updated (UTC)"):
        table.add_column(col, justify="right" if col in TRIAL_STATUSES or col == "total" else "left")
    for s in rows:
        objs = ", ".join(f"{'max' if d == 'maximize' else 'min'} {n}" for n, d in s.objectives)
        table.add_row(s.name, s.status, objs, *(str(s.n_trials[k]) for k in TRIAL_STATUSES), str(s.total),
                      _when(s.created_at), _when(s.updated_at))
    console = _console()
    if not rows:
        console.print("no studies yet")
        return
    console.print(table)


@click.command()
@click.argument("study")
@click.option("--storage", "storage_url", envvar="HNAS_STORAGE", default=None, help=STORAGE_HELP)
@click.option("--status", "statuses", multiple=True, type=click.Choice(["running", "complete", "failed", "pruned"]),
              help="only trials with this status (repeatable)")
@click.option("--sort", "sort_by", default="number", show_default=True,
              help="metric (best first, by its catalogue direction), task:<name>, or a column such as number")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="rows to show")
def trials(study, storage_url, statuses, sort_by, limit):
    """List the trials of STUDY."""
    from rich.table import Table

    import pandas as pd

    from search_space.metrics import METRICS
    from storage import Store, StoreError

    with Store(storage_url, create=False) as store:
        st = store.get_study(study)
        df = store.trials_frame(study, status=list(statuses) or None)
    if sort_by not in df.columns:
        known = ", ".join(["number", "status", "finished_at", *METRICS])
        raise StoreError(f"--sort: unknown column {sort_by!r} (one of {known}, or task:<name>)")
    directions = dict(st.objectives)
    maximize = (directions.get(sort_by) or getattr(METRICS.get(sort_by), "direction", "")) == "maximize"
    df = df.sort_values(sort_by, ascending=not maximize, na_position="last", kind="stable")
    total = len(df)
    df = df.head(limit)

    metric_cols = [n for n, _ in st.objectives]
    if sort_by not in metric_cols and (sort_by in METRICS or sort_by.startswith("task:")):
        metric_cols.append(sort_by)
    table = Table(caption=f"{len(df)} of {total} trials" if total > len(df) else None)
    cols = ["#", "status", "pattern", "fidelity", *metric_cols, "feasible", "device", "wall s", "error"]
    for c in cols:
        table.add_column(c, justify="right" if c in metric_cols or c in ("#", "wall s") else "left",
                         overflow="fold")
    def text(v) -> str:  # missing cells come back as None, nan or pd.NA depending on the dtype
        return "" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)

    for row in df.to_dict("records"):
        feas = text(row["feasible"])
        table.add_row(str(row["number"]), row["status"], text(row["pattern"]), text(row["fidelity"]),
                      *(_fmt(float(row[c])) if c in row else "" for c in metric_cols),
                      feas and ("yes" if row["feasible"] else "no"), text(row["device"]),
                      _fmt(float(row["wall_time_s"])), text(row["error"])[:60])
    _console().print(table)
