"""Plotly figures of a study, built from the trials frame (no Streamlit here, so tests and the
benchmark build them directly).

Design choices:
- A Pareto scatter is ONE data trace whose marker colours and symbols encode the category
  (Pareto, dominated, infeasible, failed, pruned, running), plus legend-only traces for the
  legend. A chart selection then reports indices into that one trace, which map straight onto
  the rows of the frame that was plotted, whichever way the selection arrives (clicked points,
  box, lasso, or `point_indices` in session state); it is also one WebGL-free trace that 10,000
  points render quickly in.
- Above `WEBGL_AT` points the trace switches to `Scattergl`.
- The front on the two plotted axes is drawn as a step line, so a projection of a 3-objective
  front still shows what wins on the pair being looked at; the colour says whether a trial is on
  the study's front (its objectives, its constraints).
- Trials with no value on an axis (a failed trial has no quality) are drawn on the axis edge as
  a rug, named as such in the legend, instead of vanishing.
- The figure does not depend on the current selection (no `selectedpoints`): a figure that
  changed with every selection would be re-sent to the browser and lose the selection it reports.
- Axis titles come from the metric catalogue (label and unit); an axis spanning over two decades
  of positive values is logarithmic.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from search_space.metrics import METRICS

from .diagram import PRIMITIVE_COLORS

WEBGL_AT = 5000

CATEGORY_STYLE = {
    # name: (color, symbol, size)
    "Pareto": ("#D62728", "diamond", 11),
    "dominated": ("#7F7F7F", "circle", 7),
    "infeasible": ("#FF9F1C", "x-thin-open", 9),
    "failed": ("#111111", "x", 8),
    "pruned": ("#BCBD22", "triangle-down", 7),
    "running": ("#17BECF", "circle-open", 8),
}
CATEGORY_ORDER = list(CATEGORY_STYLE)

STATUS_COLORS = {"complete": "#4C78A8", "failed": "#111111", "pruned": "#BCBD22", "running": "#17BECF",
                 "infeasible": "#FF9F1C"}


def direction(col: str) -> str:
    """'maximize' or 'minimize' for a frame column (catalogue metrics; task scores by name)."""
    if col in METRICS:
        return METRICS[col].direction
    low = col.lower()
    return "minimize" if any(k in low for k in ("bpb", "loss", "perplexity", "ppl", "error", "_s", "memory")) else "maximize"


def axis_title(col: str) -> str:
    m = METRICS.get(col)
    arrow = " ↑" if direction(col) == "maximize" else " ↓"
    if m:
        return f"{m.label}{f' ({m.unit})' if m.unit else ''}{arrow}"
    if col.startswith("task:"):
        return f"task {col[5:]}{arrow}"
    return col + arrow


def _log_axis(v: pd.Series) -> bool:
    v = pd.to_numeric(v, errors="coerce").dropna()
    v = v[np.isfinite(v)]
    return len(v) > 1 and (v > 0).all() and v.max() / v.min() > 100


def front_2d(x: np.ndarray, y: np.ndarray, dx: str, dy: str) -> np.ndarray:
    """Indices of the points not dominated on (x, y), ordered along x (for the step line)."""
    ok = np.isfinite(x) & np.isfinite(y)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return idx
    sx = -x[idx] if dx == "maximize" else x[idx]
    sy = -y[idx] if dy == "maximize" else y[idx]
    order = np.lexsort((sy, sx))  # best x first, ties by best y
    best = np.inf
    keep = []
    for j in order:
        if sy[j] < best:
            keep.append(idx[j])
            best = sy[j]
    return np.array(keep, dtype=int)


def hover_columns(df: pd.DataFrame) -> np.ndarray:
    """customdata: number, category, pattern, params, cache, fidelity (read by the hover template;
    the first entry lets a clicked point be mapped back to its trial)."""
    def col(name, default=""):
        return df[name] if name in df else pd.Series(default, index=df.index)
    return np.column_stack([
        df["number"].astype(int).to_numpy(), col("category").astype(str).to_numpy(),
        col("pattern").astype(str).to_numpy(), col("params_h").astype(str).to_numpy(),
        col("cache_h").astype(str).to_numpy(), col("fidelity").astype(str).to_numpy(),
    ])


HOVER = ("<b>trial %{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]}<br>"
         "params %{customdata[3]} · cache@2K %{customdata[4]} · fidelity %{customdata[5]}"
         "<br>%{xaxis.title.text}: %{x:.4g}<br>%{yaxis.title.text}: %{y:.4g}<extra></extra>")


def plotted_rows(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows a scatter of (x, y) draws, in trace order: the selection indices refer to these."""
    return df[df[x].notna() | df[y].notna()].reset_index(drop=True) if len(df) else df


def pareto_scatter(df: pd.DataFrame, x: str, y: str, title: str = "", height: int = 430) -> go.Figure:
    """Scatter of y against x, one point per trial of `plotted_rows(df, x, y)`."""
    rows = plotted_rows(df, x, y)
    dx, dy = direction(x), direction(y)
    xs = pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float) if len(rows) else np.array([])
    ys = pd.to_numeric(rows[y], errors="coerce").to_numpy(dtype=float) if len(rows) else np.array([])
    logx, logy = _log_axis(rows[x]) if len(rows) else False, _log_axis(rows[y]) if len(rows) else False

    # a rug for trials missing one value: pinned to the low edge of the other axis
    miss_x, miss_y = ~np.isfinite(xs), ~np.isfinite(ys)
    if miss_x.any() or miss_y.any():
        fx, fy = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
        edge_x = (fx.min() if fx.size else 0.0)
        edge_y = (fy.min() if fy.size else 0.0)
        xs = np.where(miss_x, edge_x, xs)
        ys = np.where(miss_y, edge_y, ys)

    cats = rows["category"].astype(str).to_numpy() if len(rows) else np.array([], dtype=str)
    colors = [CATEGORY_STYLE.get(c, CATEGORY_STYLE["dominated"])[0] for c in cats]
    symbols = [CATEGORY_STYLE.get(c, CATEGORY_STYLE["dominated"])[1] for c in cats]
    sizes = [CATEGORY_STYLE.get(c, CATEGORY_STYLE["dominated"])[2] for c in cats]
    missing = miss_x | miss_y
    symbols = [("line-ns-open" if mx else "line-ew-open") if m else s
               for s, m, mx in zip(symbols, missing, miss_x)]

    Trace = go.Scattergl if len(rows) >= WEBGL_AT else go.Scatter
    fig = go.Figure()
    fig.add_trace(Trace(
        x=xs, y=ys, mode="markers", name="trials", showlegend=False,
        marker=dict(color=colors, symbol=symbols, size=sizes, opacity=0.85,
                    line=dict(width=0.5, color="#FFFFFF")),
        customdata=hover_columns(rows) if len(rows) else None, hovertemplate=HOVER,
    ))
    # the front on these two axes among feasible complete trials
    ok = rows["category"].isin(["Pareto", "dominated"]).to_numpy() if len(rows) else np.array([], bool)
    fr = front_2d(np.where(ok & ~missing, xs, np.nan), np.where(ok & ~missing, ys, np.nan), dx, dy)
    if fr.size:
        fig.add_trace(go.Scatter(x=xs[fr], y=ys[fr], mode="lines", name="front on these axes",
                                 line=dict(shape="hv" if dx == "maximize" else "vh", dash="dot", color="#D62728", width=1),
                                 hoverinfo="skip"))
    present = set(cats)
    for c in CATEGORY_ORDER:
        if c in present:
            col, sym, size = CATEGORY_STYLE[c]
            n = int((cats == c).sum())
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{c} ({n})",
                                     marker=dict(color=col, symbol=sym, size=size)))
    unplotted = df.loc[df[x].isna() & df[y].isna(), "category"].value_counts() if len(df) else {}
    for c in CATEGORY_ORDER:
        n = int(unplotted.get(c, 0)) if len(unplotted) else 0
        if n:  # e.g. failed trials with no measurement: say they exist rather than hide them
            col, sym, size = CATEGORY_STYLE[c]
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{c} ({n}, no values)",
                                     marker=dict(color=col, symbol=sym, size=size)))
    if missing.any():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"no value: on the edge ({int(missing.sum())})",
                                 marker=dict(color="#555555", symbol="line-ns-open", size=9)))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      # dragmode/clickmode left to Streamlit: it picks click-to-select with box and
                      # lasso in the modebar; a layout dragmode of "lasso" turns click selection off
                      legend=dict(font=dict(size=10), itemsizing="constant"),
                      hovermode="closest", template="plotly_white",
                      uirevision=f"{x}|{y}")
    fig.update_xaxes(title=axis_title(x), type="log" if logx else None)
    fig.update_yaxes(title=axis_title(y), type="log" if logy else None)
    return fig


def pareto_3d(df: pd.DataFrame, x: str, y: str, z: str, height: int = 520,
              selected: list[int] | None = None) -> go.Figure:
    """3-D scatter by category; `selected` trials get a ring (this chart is not a selection source)."""
    rows = df.dropna(subset=[x, y, z]) if len(df) else df
    fig = go.Figure()
    for c in CATEGORY_ORDER:
        part = rows[rows["category"] == c] if len(rows) else rows
        if not len(part):
            continue
        col, sym, size = CATEGORY_STYLE[c]
        sym3 = {"diamond": "diamond", "circle": "circle", "x": "x", "x-thin-open": "x",
                "triangle-down": "square", "circle-open": "circle-open"}.get(sym, "circle")
        fig.add_trace(go.Scatter3d(x=part[x], y=part[y], z=part[z], mode="markers", name=f"{c} ({len(part)})",
                                   marker=dict(color=col, symbol=sym3, size=max(3, size // 2),
                                               opacity=0.9 if c == "Pareto" else 0.45),
                                   customdata=hover_columns(part),
                                   hovertemplate=HOVER.replace("%{xaxis.title.text}", axis_title(x))
                                   .replace("%{yaxis.title.text}", axis_title(y))
                                   + f"<br>{axis_title(z)}: %{{z:.4g}}"))
    if selected and len(rows):
        part = rows[rows["number"].isin(selected)]
        if len(part):
            fig.add_trace(go.Scatter3d(x=part[x], y=part[y], z=part[z], mode="markers", name="selected",
                                       marker=dict(symbol="circle-open", size=9, color="#000000"), hoverinfo="skip"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0), template="plotly_white",
                      legend=dict(orientation="h"), uirevision=f"{x}|{y}|{z}",
                      scene=dict(xaxis_title=axis_title(x), yaxis_title=axis_title(y), zaxis_title=axis_title(z),
                                 xaxis_type="log" if _log_axis(rows[x]) else None,
                                 yaxis_type="log" if _log_axis(rows[y]) else None,
                                 zaxis_type="log" if _log_axis(rows[z]) else None))
    return fig


def hypervolume_figure(hv: pd.DataFrame, height: int = 320) -> go.Figure:
    """Hypervolume (of the front so far) against trial number; `hv` has `number`, `hypervolume`."""
    fig = go.Figure(go.Scatter(x=hv["number"], y=hv["hypervolume"], mode="lines", line=dict(shape="hv", color="#4C78A8"),
                               hovertemplate="after trial %{x}: %{y:.5g}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      title=dict(text="hypervolume of the front so far", font=dict(size=14)),
                      xaxis_title="trial number", yaxis_title="hypervolume")
    return fig


def timeline_figure(df: pd.DataFrame, time_col: str, height: int = 320) -> go.Figure:
    """Cumulative trials by status against time (when each trial finished, or started)."""
    fig = go.Figure()
    if len(df) and time_col in df:
        d = df[[time_col, "status"]].dropna().sort_values(time_col)
        for status, part in d.groupby("status", sort=False):
            fig.add_trace(go.Scatter(x=part[time_col], y=np.arange(1, len(part) + 1), mode="lines",
                                     line=dict(shape="hv", color=STATUS_COLORS.get(status, "#999999")),
                                     name=str(status), hovertemplate="%{x}<br>%{y} " + str(status) + "<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      title=dict(text="trials over time, by status", font=dict(size=14)),
                      xaxis_title="time", yaxis_title="trials (cumulative)", legend=dict(orientation="h"))
    return fig


def curves_figure(curves_by_trial: dict[int, dict[str, list]], height: int = 340) -> go.Figure:
    """Learning curves; several trials overlay (one colour per trial, one dash per curve name)."""
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    names = sorted({k for c in curves_by_trial.values() for k in c})
    palette = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#9D755D", "#72B7B2", "#EECA3B"]
    for i, (num, curves) in enumerate(curves_by_trial.items()):
        for name, pts in curves.items():
            if not pts:
                continue
            steps, vals = zip(*pts)
            yaxis = "y2" if ("loss" not in name and "bpb" not in name and len(names) > 1) else "y"
            fig.add_trace(go.Scatter(x=steps, y=vals, mode="lines", name=f"trial {num}: {name}",
                                     line=dict(color=palette[i % len(palette)], dash=dashes[names.index(name) % len(dashes)]),
                                     yaxis=yaxis))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      title=dict(text="learning curves", font=dict(size=14)), xaxis_title="step",
                      yaxis=dict(title="loss"), yaxis2=dict(title="score", overlaying="y", side="right", showgrid=False),
                      legend=dict(orientation="h"))
    return fig


def task_scores_figure(scores_by_trial: dict[int, dict[str, float]], height: int = 320) -> go.Figure:
    fig = go.Figure()
    palette = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#9D755D"]
    for i, (num, scores) in enumerate(scores_by_trial.items()):
        names = sorted(scores)
        fig.add_trace(go.Bar(x=names, y=[scores[n] for n in names], name=f"trial {num}",
                             marker_color=palette[i % len(palette)],
                             hovertemplate="%{x}: %{y:.4g}<extra>trial " + str(num) + "</extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white", barmode="group",
                      title=dict(text="per-task scores", font=dict(size=14)), legend=dict(orientation="h"))
    return fig


def primitive_mix_figure(counts: dict[str, int], height: int = 260) -> go.Figure:
    """How often each primitive appears among the given trials (e.g. the Pareto set)."""
    names = sorted(counts, key=lambda k: -counts[k])
    fig = go.Figure(go.Bar(x=names, y=[counts[n] for n in names],
                           marker_color=[PRIMITIVE_COLORS.get(n, "#999999") for n in names]))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      title=dict(text="primitives in the Pareto set (trials containing each)", font=dict(size=14)))
    return fig


def fmt_value(v) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v))):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)
