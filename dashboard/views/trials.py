"""The trials table: sortable (click a header), filtered by category, status, primitives present
and a range of any numeric column; selecting rows selects trials."""
from __future__ import annotations

import zlib

import numpy as np
import streamlit as st

from .. import plots, selection
from ..data import PRIMITIVES, Filters, apply_filters
from ..plots import CATEGORY_ORDER
from . import Ctx


def filters_ui(ctx: Ctx) -> Filters:
    df = ctx.df
    c1, c2, c3 = st.columns(3)
    present_cats = [c for c in CATEGORY_ORDER if c in set(df["category"])]
    with c1:
        cats = st.multiselect("category", present_cats, key="f_category",
                              help="Pareto and dominated: complete, feasible trials; infeasible: a constraint is violated")
    with c2:
        statuses = st.multiselect("status", sorted(set(df["status"].astype(str))), key="f_status")
    with c3:
        prims = st.multiselect("contains every one of", list(PRIMITIVES), key="f_primitives")
    c4, c5 = st.columns([1, 2])
    range_col, rng = None, None
    with c4:
        options = ["(no range filter)"] + ctx.columns
        if st.session_state.get("f_range_col") not in options:
            st.session_state.pop("f_range_col", None)
        choice = st.selectbox("range of", options, key="f_range_col",
                              format_func=lambda c: c if c.startswith("(") else plots.axis_title(c))
    with c5:
        if not choice.startswith("("):
            v = df[choice].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size and v.min() < v.max():
                lo, hi = float(v.min()), float(v.max())
                rng = st.slider(plots.axis_title(choice), lo, hi, (lo, hi), key=f"f_range:{choice}",
                                format="%.4g")
                range_col = choice
    return Filters(categories=cats or None, statuses=statuses or None, primitives=prims or None,
                   range_column=range_col, range=rng)


def render(ctx: Ctx) -> None:
    df = ctx.df
    f = filters_ui(ctx)
    shown = apply_filters(df, f)
    obj = [o.name for o in ctx.objectives if o.name in df]
    extra = [c for c in ("params_total", "cache_mib_2k", "flops_per_token", "wall_time_s") if c in df and c not in obj]
    tasks = [c for c in df.columns if str(c).startswith("task:")]
    cols = ["number", "category", "status", "pattern", "fidelity"] + obj + extra + tasks + \
           [c for c in ("finished_at", "error") if c in df]
    table = shown[cols].reset_index(drop=True)
    st.caption(f"{len(shown)} of {len(df)} trials; click a column header to sort, select rows to select trials.")
    cfg = {"number": st.column_config.NumberColumn("trial", format="%d"),
           "params_total": st.column_config.NumberColumn("params", format="compact"),
           "flops_per_token": st.column_config.NumberColumn("FLOPs/token", format="compact"),
           "finished_at": st.column_config.DatetimeColumn("finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
           "pattern": st.column_config.TextColumn("pattern", width="medium")}
    ev = st.dataframe(table, hide_index=True, width="stretch", height=520, column_config=cfg,
                      on_select="rerun", selection_mode="multi-row", key=f"trials_table:{zlib.crc32(repr(f).encode())}")
    rows = []
    try:
        rows = list(ev["selection"]["rows"])
    except (KeyError, TypeError):
        rows = list(getattr(getattr(ev, "selection", None), "rows", []) or [])
    numbers = [int(table["number"].iloc[i]) for i in rows if 0 <= i < len(table)]
    # row positions refer to this filtered table, so each filter has its own table key
    selection.absorb(f"trials_table:{zlib.crc32(repr(f).encode())}", numbers)
