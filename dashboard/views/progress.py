"""How the search is going: hypervolume against trial number, trials over time by status, the
best value of each objective so far, and the study's config."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from search_space.errors import UserError

from .. import plots, queries
from . import Ctx, chart


# The figures are built once per study revision, as the Pareto page's are: a rerun (a click,
# the live poll) only sends them again.
@st.cache_resource(show_spinner=False, max_entries=16)
def _best_so_far(url: str, study: str, rev: int, objectives: tuple[tuple[str, str], ...]) -> go.Figure | None:
    df = queries.frame(url, study, rev)
    done = df[df["category"].isin(["Pareto", "dominated"])]
    objs = [(name, d) for name, d in objectives if name in done]
    if not len(done) or not objs:
        return None
    traces = []
    for i, (name, direction) in enumerate(objs):
        v = done[name].to_numpy(dtype=float)
        best = np.fmax.accumulate(v) if direction == "maximize" else np.fmin.accumulate(v)
        traces.append(dict(type="scatter", x=done["number"].to_numpy(), y=best, mode="lines", line=dict(shape="hv"),
                           name=plots.axis_title(name), yaxis="y" if i == 0 else f"y{i + 1}"))
    layout = dict(height=320, margin=dict(t=30), title=dict(text="best value so far (feasible trials)"),
                  xaxis=dict(title=dict(text="trial number")), legend=dict(orientation="h"))
    for i in range(1, len(objs)):
        layout[f"yaxis{i + 1}"] = dict(overlaying="y", side="right", showgrid=False, showticklabels=i == 1)
    return plots.figure(traces, layout)


@st.cache_resource(show_spinner=False, max_entries=16)
def _hypervolume_figure(url: str, study: str, rev: int, objectives: tuple[tuple[str, str], ...]) -> go.Figure | None:
    hv = queries.hypervolume(url, study, rev, objectives)  # a UserError is not cached: the page says it
    return plots.hypervolume_figure(hv) if len(hv) else None


@st.cache_resource(show_spinner=False, max_entries=16)
def _timeline_figure(url: str, study: str, rev: int) -> go.Figure:
    df = queries.frame(url, study, rev)
    time_col = "finished_at" if "finished_at" in df and df["finished_at"].notna().any() else "started_at"
    return plots.timeline_figure(df.assign(
        status=np.where(df["category"] == "infeasible", "infeasible", df["status"])), time_col)


def render(ctx: Ctx) -> None:
    df = ctx.df
    objs = tuple((o.name, o.direction) for o in ctx.objectives)
    left, right = st.columns(2)
    with left:
        complete = int((df["status"] == "complete").sum())
        if complete == 0:
            st.info("Hypervolume starts with the first completed trial.")
        else:
            try:
                fig = _hypervolume_figure(ctx.url, ctx.study, ctx.rev, objs)
            except UserError as e:
                st.warning(f"No hypervolume for this study: {e}")
            else:
                if fig is not None:
                    chart(fig, "hv")
                else:
                    st.info("No feasible trial with every objective value yet, so no hypervolume.")
    with right:
        chart(_timeline_figure(ctx.url, ctx.study, ctx.rev), "timeline")
    fig = _best_so_far(ctx.url, ctx.study, ctx.rev, objs)
    if fig is not None:
        chart(fig, "best")
    with st.expander("study config"):
        info = ctx.info
        st.write(f"status **{info.status}**, created {info.created_at:%Y-%m-%d %H:%M} UTC, "
                 f"constraints: {', '.join(info.constraints) or 'none'}")
        if info.config_yaml:
            st.code(info.config_yaml, language="yaml")
        if info.attrs:
            st.json(info.attrs, expanded=False)
