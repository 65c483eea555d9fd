"""Plotly figures of a study, built from the trials frame (no Streamlit here, so tests and the
benchmark build them directly).

Design choices:
- A Pareto scatter draws one trace per category (Pareto, dominated, infeasible, failed, pruned,
  running) with one colour, symbol and size per trace, so the legend hides and shows a category
  and the browser gets no per-point style arrays. Every point carries
  `customdata = [trial number, params, cache MiB at 2K]`: a selected point reports its trial
  through it, and the hover formats the numbers from it (customdata travels as binary, where
  a formatted hover string per point made the figure 2.4 times larger; the browser spends time
  on every byte: docs/dashboard.md). The hover text is only the block pattern. x and y travel
  as plain lists, with a `layout.datarevision`, and the layout has no template: see `figure()`.
  `curve_trials(fig)` says which trial each point of each trace is.
- Above `WEBGL_AT` points the traces switch to `Scattergl`.
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

import collections
import hashlib
import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from search_space.metrics import METRICS


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


def hover_template(*axes: tuple[str, str], fidelity: str | None = None) -> str:
    """The architecture summary (trial, category, pattern, params, cache, fidelity) and the plotted
    values, from a trace's `customdata` = [number, params, cache] and `hovertext` = the pattern
    (followed by the fidelity when `fidelity` is None: a study of several fidelities).
    `axes`: (column, plotly variable) pairs, e.g. ("quality", "y")."""
    vals = "".join(f"<br>{axis_title(c)}: %{{{v}:.4g}}" for c, v in axes)
    fid = f" · fidelity {fidelity}" if fidelity is not None else ""
    return ("<b>trial %{customdata[0]}</b> · %{meta}<br>%{hovertext}<br>"
            "params %{customdata[1]:.3s} · cache@2K %{customdata[2]:.3g} MiB" + fid + vals + "<extra></extra>")


def _hover_parts(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str | None]:
    """customdata (number, params, cache), hover text per row, and the study's one fidelity
    (None when the rows span several: then each row's text names its own)."""
    def num(c):
        return pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float) if c in rows else np.full(len(rows), np.nan)
    # float32: half the bytes of float64, exact for trial numbers below 16 million, and the hover
    # shows 3 significant digits
    custom = np.column_stack([rows["number"].to_numpy(dtype=float), num("params_total"),
                              num("cache_mib_2k")]).astype(np.float32)
    pattern = rows["pattern"].astype(str).to_numpy(dtype=object) if "pattern" in rows else np.full(len(rows), "", object)
    fids = rows["fidelity"].fillna("").astype(str) if "fidelity" in rows else pd.Series([""] * len(rows))
    if fids.nunique() <= 1:
        one = fids.iloc[0] if len(fids) else ""
        return custom, pattern, one or "–"
    return custom, np.array([f"{p} · fidelity {f or '–'}" for p, f in zip(pattern, fids)], dtype=object), None


def curve_trials(fig: go.Figure) -> list[list[int] | None]:
    """For each trace of a Pareto scatter, the trial number of each of its points in order; None
    for traces that are not trials (the front line, legend entries)."""
    out = []
    for t in fig.data:
        cd = t.customdata
        out.append(None if cd is None else np.asarray(cd, dtype=float).reshape(len(cd), -1)[:, 0].astype(int).tolist())
    return out


def plotted_rows(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows a scatter of (x, y) draws: those with a value on either axis (split into traces by
    category; `curve_trials` maps a trace's points back to trials)."""
    return df[df[x].notna() | df[y].notna()].reset_index(drop=True) if len(df) else df


# Streamlit's light chart look (fonts, greys, grid), set on every figure's layout. The app draws
# every chart with `st.plotly_chart(..., theme=None)`: Streamlit's theme is applied in the browser
# by rewriting the figure's JSON text, dozens of passes over it (for the Pareto page of a
# 10,000-trial study, about 0.2 s of a 2.3 s load on the GPU machine: docs/dashboard.md).
# Not a Plotly template either (`template` is null in the JSON): Streamlit hands every figure to
# Plotly.react a second time right after the first draw, re-parsed, and Plotly.react counts a
# template that is a new object as a change that needs a full recalculation and redraw.
_TEXT, _GRID = "#31333F", "#E6EAF1"
LOOK = dict(
    font=dict(family='"Source Sans", sans-serif', size=12, color=_TEXT),
    paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF",
    colorway=["#0068C9", "#83C9FF", "#FF2B2B", "#FFABAB", "#29B09D", "#7DEFA1", "#FF8700", "#FFD16A", "#6D3FC0"],
    title=dict(x=0, xanchor="left", font=dict(size=14, color=_TEXT)),
    hoverlabel=dict(bgcolor="#FFFFFF", bordercolor="#D5DAE5", font=dict(color=_TEXT)),
    margin=dict(l=10, r=10, t=40, b=10), hovermode="closest",
    legend=dict(font=dict(size=10), itemsizing="constant"))
# ticklabeloverflow "allow": Plotly's default for numeric axes ("hide past div") measures every tick
# label's box once per label drawn (quadratic in the labels, each a layout read); with automargin
# the labels never reach past the chart's div, so there is nothing to hide.
AXIS_LOOK = {"x": dict(showgrid=False, zeroline=False, gridcolor=_GRID, linecolor=_GRID, tickcolor=_GRID, automargin=True,
                       ticklabeloverflow="allow"),
             "y": dict(showgrid=True, zeroline=False, gridcolor=_GRID, linecolor=_GRID, tickcolor=_GRID, automargin=True,
                       ticklabeloverflow="allow")}
_AXIS = re.compile(r"^([xy])axis\d*$")


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _significant(v: np.ndarray, digits: int) -> list[float]:
    """`v` rounded to `digits` significant digits, as floats whose shortest form is that many
    digits: k / 10**p is the double nearest the decimal (IEEE division is correctly rounded)."""
    v = v.astype(np.float64)
    with np.errstate(all="ignore"):
        p = digits - 1 - np.floor(np.log10(np.abs(v)))
    p = np.where(np.isfinite(p), p, 0.0)
    scale = np.power(10.0, np.abs(p))
    with np.errstate(all="ignore"):
        out = np.where(p >= 0, np.round(v * scale) / scale, np.round(v / scale) * scale)
    return out.tolist()


def _plain(v):
    """A 1-D numeric or string array as a JSON list. Plotly.react diffs data arrays with
    Array.isArray, so a binary (typed) array is a change every time the browser re-parses the
    figure, and a change of `x` means a full recalculation; a plain list with an unchanged
    `layout.datarevision` is not. Floats keep 7 significant digits (float32's precision) in their
    shortest decimal form: the JSON is a tenth larger than binary, not twice."""
    if isinstance(v, (pd.Series, pd.Index)):
        v = v.to_numpy()
    if not isinstance(v, np.ndarray) or v.ndim != 1:
        return v  # 2-D customdata stays binary: it decodes to a plain array of rows
    if v.dtype.kind == "f":
        return _significant(v, 7)  # NaN -> JSON null
    if v.dtype.kind in "biuOU":
        return v.tolist()
    return v  # datetimes: plotly writes them as strings


def _digest(obj, h) -> None:
    """Feed `obj` (the traces: dicts, lists, arrays, scalars) to the hash `h`."""
    if isinstance(obj, dict):
        for k in sorted(obj):
            h.update(f"{k}=".encode())
            _digest(obj[k], h)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        h.update(f"{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(repr(obj.tolist()).encode())
    else:
        h.update(repr(obj).encode())


class Figure(go.Figure):
    """A figure whose dict form is built once. Streamlit asks for it on every run of the page,
    and plotly builds it by deep-copying every array and walking every list (about 12 ms for
    10,000 points). The figures here are cached per study revision and never changed after
    `figure()` returns. The dict is shared: read it, do not change it."""

    def to_dict(self) -> dict:
        d = getattr(self, "_dict_once", None)
        if d is None:
            d = self._dict_once = super().to_dict()
        return d


def figure(traces: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, not validated property by property: plotly's validation of
    10,000-element arrays costs seconds per page, and every value here is produced by this
    module from the catalogue, not typed by a user. The layout gets `LOOK` (and `AXIS_LOOK` on
    every 2-D axis) under what the caller sets, and a `datarevision` that is a digest of the data,
    so that Plotly.react redraws only when the data changed."""
    traces = [{k: _plain(v) for k, v in t.items()} for t in traces]
    lay = _merged(LOOK, layout)
    for name in {"xaxis", "yaxis", *(k for k in lay if _AXIS.match(k))}:
        lay[name] = _merged(AXIS_LOOK[name[0]], lay.get(name) or {})
    h = hashlib.blake2b(digest_size=8)
    _digest(traces, h)
    lay["datarevision"] = h.hexdigest()
    fig = Figure(data=traces, layout=lay, _validate=False)
    # after construction: a figure built without a template gets plotly's default one, which
    # importing Streamlit sets to its own (a template of placeholder colours)
    fig.layout.template = None
    return fig


def _legend_entry(name: str, color: str, symbol: str, size: int) -> dict:
    return dict(type="scatter", x=[None], y=[None], mode="markers", name=name,
                marker=dict(color=color, symbol=symbol, size=size))


# A Pareto scatter's margins, set to what its tick labels, axis titles and legend need, so that
# Plotly draws it once. Plotly lays a chart out with `layout.margin`, then lets the legend and the
# automargin axes push the margins out, and if any side grew it draws the whole chart again: for a
# 10,000-point WebGL scatter a second full draw (about a sixth of the chart's time in the browser:
# docs/dashboard.md). A margin at least as wide as every push is no change and no second draw;
# automargin stays on, so a wider label (a y tick label over 4 characters) costs the second draw
# as before instead of being cut off.
SCATTER_MARGIN = dict(l=64, t=40, b=50)  # y labels up to 4 characters + title; x labels + title; title
# the legend, at the plot's right edge: symbols and padding, then text of 10 px Source Sans, whose
# characters here average 4.3 px (measured, docs/dashboard.md): 4.6 keeps a few pixels spare
LEGEND_FIXED_PX, LEGEND_CHAR_PX = 52, 4.6


def legend_margin(names: list[str]) -> int:
    """The right margin that a vertical legend of these entry names needs (an upper estimate)."""
    return math.ceil(LEGEND_FIXED_PX + LEGEND_CHAR_PX * max((len(n) for n in names), default=0))


def _title(text: str) -> dict:
    return dict(text=text, font=dict(size=14))


# draw order: the front on top of the cloud (the legend keeps CATEGORY_ORDER through legendrank)
DRAW_ORDER = ["dominated", "pruned", "running", "infeasible", "failed", "Pareto"]


def pareto_scatter(df: pd.DataFrame, x: str, y: str, title: str = "", height: int = 430) -> go.Figure:
    """Scatter of y against x, one point per trial of `plotted_rows(df, x, y)`, one trace per category."""
    rows = plotted_rows(df, x, y)
    dx, dy = direction(x), direction(y)
    xs = pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float) if len(rows) else np.array([])
    ys = pd.to_numeric(rows[y], errors="coerce").to_numpy(dtype=float) if len(rows) else np.array([])
    logx, logy = (_log_axis(rows[x]), _log_axis(rows[y])) if len(rows) else (False, False)

    # a rug for trials missing one value: pinned to the low edge of the other axis
    miss_x, miss_y = ~np.isfinite(xs), ~np.isfinite(ys)
    if miss_x.any() or miss_y.any():
        fx, fy = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
        xs = np.where(miss_x, fx.min() if fx.size else 0.0, xs)
        ys = np.where(miss_y, fy.min() if fy.size else 0.0, ys)
    missing = miss_x | miss_y

    cats = rows["category"].astype(str).to_numpy() if len(rows) else np.array([], dtype=str)
    kind = "scattergl" if len(rows) >= WEBGL_AT else "scatter"
    traces = []
    if len(rows):
        custom, text, fidelity = _hover_parts(rows)
        hover = hover_template((x, "x"), (y, "y"), fidelity=fidelity)
        for c in DRAW_ORDER:
            m = (cats == c) & ~missing
            if m.any():
                color, symbol, size = CATEGORY_STYLE[c]
                traces.append(dict(type=kind, x=xs[m], y=ys[m], mode="markers", name=f"{c} ({int(m.sum())})", meta=c,
                                   legendrank=CATEGORY_ORDER.index(c), customdata=custom[m], hovertext=text[m].tolist(),
                                   hovertemplate=hover,
                                   marker=dict(color=color, symbol=symbol, size=size, opacity=0.85,
                                               line=dict(width=0.5, color="#FFFFFF"))))
        if missing.any():  # one trace of any category: its points keep their category's colour
            style = [CATEGORY_STYLE.get(c, CATEGORY_STYLE["dominated"]) for c in cats[missing]]
            traces.append(dict(type=kind, x=xs[missing], y=ys[missing], mode="markers",
                               name=f"no value: on the edge ({int(missing.sum())})", meta="no value on one axis",
                               legendrank=len(CATEGORY_ORDER) + 1, customdata=custom[missing],
                               hovertext=[f"{c} · {t}" for c, t in zip(cats[missing], text[missing])],
                               hovertemplate=hover,
                               marker=dict(color=[st[0] for st in style], size=9,
                                           symbol=np.where(miss_x[missing], "line-ns-open", "line-ew-open").tolist())))
    # the front on these two axes among feasible complete trials
    ok = rows["category"].isin(["Pareto", "dominated"]).to_numpy() if len(rows) else np.array([], bool)
    fr = front_2d(np.where(ok & ~missing, xs, np.nan), np.where(ok & ~missing, ys, np.nan), dx, dy)
    if fr.size:
        traces.append(dict(type="scatter", x=xs[fr], y=ys[fr], mode="lines", name="front on these axes",
                           legendrank=len(CATEGORY_ORDER),
                           line=dict(shape="hv" if dx == "maximize" else "vh", dash="dot", color="#D62728", width=1),
                           hoverinfo="skip"))
    unplotted = df.loc[df[x].isna() & df[y].isna(), "category"].value_counts() if len(df) else {}
    for c in CATEGORY_ORDER:
        n = int(unplotted.get(c, 0)) if len(unplotted) else 0
        if n:  # e.g. failed trials with no measurement: say they exist rather than hide them
            entry = _legend_entry(f"{c} ({n}, no values)", *CATEGORY_STYLE[c])
            traces.append(dict(entry, legendrank=len(CATEGORY_ORDER) + 2))
    # click-to-select, pan on drag, box and lasso in the modebar: what Streamlit sets on a chart
    # with every selection mode on, set here so that its setting them is no change (a change is one
    # more Plotly.react of 10,000 points); a layout dragmode of "lasso" would turn clicks off
    return figure(traces, dict(
        title=_title(title), height=height, uirevision=f"{x}|{y}",
        margin=dict(SCATTER_MARGIN, r=legend_margin([t["name"] for t in traces])),
        legend=dict(x=1, xanchor="left"),  # at the plot's edge (not 2% of its width beyond): a known margin
        clickmode="event+select", dragmode="pan",  # hovermode "closest" comes with LOOK
        xaxis=dict(title=dict(text=axis_title(x)), type="log" if logx else "-"),
        yaxis=dict(title=dict(text=axis_title(y)), type="log" if logy else "-")))


def pareto_3d(df: pd.DataFrame, x: str, y: str, z: str, height: int = 520,
              selected: list[int] | None = None) -> go.Figure:
    """3-D scatter by category; `selected` trials get a ring (this chart is not a selection source)."""
    rows = df.dropna(subset=[x, y, z]) if len(df) else df
    sym3 = {"diamond": "diamond", "circle": "circle", "x": "x", "x-thin-open": "x", "triangle-down": "square",
            "circle-open": "circle-open"}
    custom, text, fidelity = _hover_parts(rows) if len(rows) else (None, None, None)
    hover = hover_template((x, "x"), (y, "y"), (z, "z"), fidelity=fidelity)
    cats = rows["category"].to_numpy() if len(rows) else np.array([])
    traces = []
    for c in CATEGORY_ORDER:
        m = cats == c
        if not m.any():
            continue
        part = rows[m]
        col, sym, size = CATEGORY_STYLE[c]
        traces.append(dict(type="scatter3d", x=part[x].to_numpy(), y=part[y].to_numpy(), z=part[z].to_numpy(),
                           mode="markers", name=f"{c} ({len(part)})", meta=c, customdata=custom[m],
                           hovertext=text[m].tolist(), hovertemplate=hover,
                           marker=dict(color=col, symbol=sym3.get(sym, "circle"), size=max(3, size // 2),
                                       opacity=0.9 if c == "Pareto" else 0.45)))
    if selected and len(rows):
        part = rows[rows["number"].isin(selected)]
        if len(part):
            traces.append(dict(type="scatter3d", x=part[x].to_numpy(), y=part[y].to_numpy(), z=part[z].to_numpy(),
                               mode="markers", name="selected", hoverinfo="skip",
                               marker=dict(symbol="circle-open", size=9, color="#000000")))
    axis = lambda c: dict(title=dict(text=axis_title(c)), type="log" if len(rows) and _log_axis(rows[c]) else "-")  # noqa: E731
    return figure(traces, dict(height=height, margin=dict(l=0, r=0, t=30, b=0), legend=dict(orientation="h"),
                               uirevision=f"{x}|{y}|{z}", scene=dict(xaxis=axis(x), yaxis=axis(y), zaxis=axis(z))))


def hypervolume_figure(hv: pd.DataFrame, height: int = 320) -> go.Figure:
    """Hypervolume (of the front so far) against trial number; `hv` has `number`, `hypervolume`."""
    return figure([dict(type="scatter", x=hv["number"].to_numpy(), y=hv["hypervolume"].to_numpy(), mode="lines",
                        line=dict(shape="hv", color="#4C78A8"), name="hypervolume",
                        hovertemplate="after trial %{x}: %{y:.5g}<extra></extra>")],
                  dict(height=height, title=_title("hypervolume of the front so far"),
                       xaxis=dict(title=dict(text="trial number")), yaxis=dict(title=dict(text="hypervolume"))))


def timeline_figure(df: pd.DataFrame, time_col: str, height: int = 320) -> go.Figure:
    """Cumulative trials by status against time (when each trial finished, or started)."""
    traces = []
    if len(df) and time_col in df:
        d = df[[time_col, "status"]].dropna().sort_values(time_col)
        for status, part in d.groupby("status", sort=False):
            t = part[time_col]
            if getattr(t.dt, "tz", None) is not None:
                t = t.dt.tz_convert(None)  # shown as UTC
            traces.append(dict(type="scatter", x=t.to_numpy(), y=np.arange(1, len(part) + 1), mode="lines", name=str(status),
                               line=dict(shape="hv", color=STATUS_COLORS.get(status, "#999999")),
                               hovertemplate="%{x}<br>%{y} " + str(status) + "<extra></extra>"))
    return figure(traces, dict(height=height, title=_title("trials over time, by status (UTC)"),
                               xaxis=dict(title=dict(text="time (UTC)")),
                               yaxis=dict(title=dict(text="trials (cumulative)")), legend=dict(orientation="h")))


def curves_figure(curves_by_trial: dict[int, dict[str, list]], height: int = 340) -> go.Figure:
    """Learning curves; several trials overlay (one colour per trial, one dash per curve name).
    Losses share the left axis, scores the right one."""
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    names = sorted({k for c in curves_by_trial.values() for k in c})
    palette = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#9D755D", "#72B7B2", "#EECA3B"]
    traces = []
    for i, (num, curves) in enumerate(curves_by_trial.items()):
        for name, pts in curves.items():
            if not pts:
                continue
            steps, vals = zip(*pts)
            lossy = "loss" in name or "bpb" in name
            traces.append(dict(type="scatter", x=list(steps), y=list(vals), mode="lines", name=f"trial {num}: {name}",
                               yaxis="y" if lossy or len(names) == 1 else "y2",
                               line=dict(color=palette[i % len(palette)], dash=dashes[names.index(name) % len(dashes)])))
    return figure(traces, dict(height=height, title=_title("learning curves"), xaxis=dict(title=dict(text="step")),
                               yaxis=dict(title=dict(text="loss")), legend=dict(orientation="h"),
                               yaxis2=dict(title=dict(text="score"), overlaying="y", side="right", showgrid=False)))


def task_scores_figure(scores_by_trial: dict[int, dict[str, float]], height: int = 320) -> go.Figure:
    palette = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#9D755D"]
    traces = []
    for i, (num, scores) in enumerate(scores_by_trial.items()):
        names = sorted(scores)
        traces.append(dict(type="bar", x=names, y=[scores[n] for n in names], name=f"trial {num}",
                           marker=dict(color=palette[i % len(palette)]),
                           hovertemplate="%{x}: %{y:.4g}<extra>trial " + str(num) + "</extra>"))
    return figure(traces, dict(height=height, barmode="group", title=_title("per-task scores"),
                               legend=dict(orientation="h")))


def primitive_mix_markdown(primitive_sets, bar: int = 8) -> str:
    """How many of the given trials (e.g. the Pareto set; each a set of primitive names) contain
    each primitive, most frequent first, with their share, as a Markdown table with a text bar per
    share ("" when no trial names a primitive). The page shows it so rather than as a second data
    grid: a second grid cost about 0.2 s of every Pareto page load in the browser
    (docs/dashboard.md), and eight rows need no sorting or scrolling."""
    sets = list(primitive_sets)
    counts = collections.Counter(p for s in sets for p in s)
    rows = ["| primitive | trials | share |", "|:--|--:|:--|"]
    for name in sorted(counts, key=lambda k: (-counts[k], k)):
        share = counts[name] / len(sets)
        full = int(round(share * bar))
        rows.append(f"| {name} | {counts[name]} | {share:.0%}&nbsp;{'▰' * full}{'▱' * (bar - full)} |")
    return "\n".join(rows) if counts else ""


def fmt_value(v) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v))):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)
