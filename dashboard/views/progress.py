"""How the search is going: hypervolume against trial number, trials over time by status, the
best value of each objective so far, and the study's config."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from search_space.errors import UserError

from .. import plots, queries
from . import Ctx


def _best_so_far(ctx: Ctx) -> go.Figure | None:
    done = ctx.df[ctx.df["category"].isin(["Pareto", "dominated"])]
    objs = [o for o in ctx.objectives if o.name in done]
    if not len(done) or not objs:
        return None
    traces = []
    for i, o in enumerate(objs):
        v = done[o.name].to_numpy(dtype=float)
        best = np.fmax.accumulate(v) if o.direction == "maximize" else np.fmin.accumulate(v)
        traces.append(dict(type="scatter", x=done["number"].to_numpy(), y=best, mode="lines", line=dict(shape="hv"),
                           name=plots.axis_title(o.name), yaxis="y" if i == 0 else f"y{i + 1}"))
    layout = dict(height=320, margin=dict(t=30), title=dict(text="best value so far (feasible trials)"),
                  xaxis=dict(title=dict(text="trial number")), legend=dict(orientation="h"))
    for i in range(1, len(objs)):
        layout[f"yaxis{i + 1}"] = dict(overlaying="y", side="right", showgrid=False, showticklabels=i == 1)
    return plots.figure(traces, layout)


def render(ctx: Ctx) -> None:
    df = ctx.df
    left, right = st.columns(2)
    with left:
        complete = int((df["status"] == "complete").sum())
        if complete == 0:
            st.info("Hypervolume starts with the first completed trial.")
        else:
            objs = tuple((o.name, o.direction) for o in ctx.objectives)
            try:
                hv = queries.hypervolume(ctx.url, ctx.study, ctx.rev, objs)
            except UserError as e:
                hv = None
                st.warning(f"No hypervolume for this study: {e}")
            if hv is not None and len(hv):
                st.plotly_chart(plots.hypervolume_figure(hv), key="hv", width="stretch", theme=None)
            elif hv is not None:
                st.info("No feasible trial with every objective value yet, so no hypervolume.")
    with right:
        time_col = "finished_at" if "finished_at" in df and df["finished_at"].notna().any() else "started_at"
        st.plotly_chart(plots.timeline_figure(df.assign(
            status=np.where(df["category"] == "infeasible", "infeasible", df["status"])), time_col),
            key="timeline", width="stretch", theme=None)
    fig = _best_so_far(ctx)
    if fig is not None:
        st.plotly_chart(fig, key="best", width="stretch", theme=None)
    with st.expander("study config"):
        info = ctx.info
        st.write(f"status **{info.status}**, created {info.created_at:%Y-%m-%d %H:%M} UTC, "
                 f"constraints: {', '.join(info.constraints) or 'none'}")
        if info.config_yaml:
            st.code(info.config_yaml, language="yaml")
        if info.attrs:
            st.json(info.attrs, expanded=False)
