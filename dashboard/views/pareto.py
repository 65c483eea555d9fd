"""The Pareto page: quality against throughput and against memory side by side, any two stored
metrics on chosen axes, a 3-objective view, and the Pareto set as a table.

Every 2-D chart is a selection source (click, box, lasso); the chart's key carries its axes so
that changing an axis starts that chart with an empty selection instead of stale indices.

Above `BIG` trials the page draws the two quality charts and asks before drawing more: each
further WebGL chart of 10,000 points adds to every load (0.2 s with WebGL on a GPU, 0.7 s with
software WebGL: docs/dashboard.md). Picking an axis, the toggle, or a link with `&x=&y=` draws the
any-two chart."""
from __future__ import annotations

import streamlit as st

from .. import plots, queries, selection
from ..data import MEMORY_PREFS, THROUGHPUT_PREFS, pick, quality_column
from . import Ctx, chart

BIG = 5000


@st.cache_resource(show_spinner=False, max_entries=64)
def _scatter_figure(url: str, study: str, rev: int, x: str, y: str, title: str):
    # built once per study revision and axes: a warm page only serialises it
    return plots.pareto_scatter(queries.frame(url, study, rev), x, y, title=title)


@st.cache_resource(show_spinner=False, max_entries=16)
def _figure_3d(url: str, study: str, rev: int, x: str, y: str, z: str, selected: tuple[int, ...]):
    return plots.pareto_3d(queries.frame(url, study, rev), x, y, z, selected=list(selected))


@st.cache_resource(show_spinner=False, max_entries=64)
def _curve_trials(url: str, study: str, rev: int, x: str, y: str, title: str):
    return plots.curve_trials(_scatter_figure(url, study, rev, x, y, title))


def scatter(ctx: Ctx, x: str, y: str, title: str, key: str) -> None:
    fig = _scatter_figure(ctx.url, ctx.study, ctx.rev, x, y, title)
    ev = chart(fig, f"{key}:{x}:{y}", on_select="rerun", selection_mode=("points", "box", "lasso"))
    selection.absorb(f"{key}:{x}:{y}", selection.chart_numbers(ev, _curve_trials(ctx.url, ctx.study, ctx.rev,
                                                                                  x, y, title)))


def _axis_select(label: str, options: list[str], default: str | None, key: str, on_change=None) -> str:
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]  # a column of another study
    if key not in st.session_state:  # (a default beside a value set in session state: Streamlit warns)
        st.session_state[key] = default if default in options else options[0]
    return st.selectbox(label, options, key=key, format_func=plots.axis_title, on_change=on_change)


def _show_xy() -> None:
    st.session_state["show_xy"] = True  # an axis picked: the user wants to see the chart


def _linked_axes(cols: list[str]) -> None:
    """Apply a link's `&x=&y=` (dashboard.app.deep_link keeps them until the study's columns are
    known): those axes, drawn. An axis the study does not have is said in one line."""
    link = st.session_state.pop("_link_axes", None)
    if not link:
        return
    bad = [f"{k}={v!r}" for k, v in zip("xy", link) if v is not None and v not in cols]
    if bad:
        st.warning(f"The link's axis {', '.join(bad)} is not a metric of this study; "
                   f"its metrics are {', '.join(cols)}.")
    for key, v in zip(("x_axis", "y_axis"), link):
        if v in cols:
            st.session_state[key] = v
    st.session_state["show_xy"] = True


def _default_pair(cols: list[str], objs: list[str], shown: set) -> tuple[str, str]:
    """The selectable chart's first axes: a pair of objectives the two charts above do not
    already show (with three objectives: the two costs against each other), else size against
    the first objective; a third chart repeating one above would show nothing new."""
    pairs = [(objs[i], objs[j]) for j in range(len(objs)) for i in range(j + 1, len(objs))]
    if objs and "params_total" in cols and objs[0] != "params_total":
        pairs.append(("params_total", objs[0]))
    for x, y in pairs:
        if (x, y) not in shown and (y, x) not in shown:
            return x, y
    if len(objs) > 1:
        return objs[1], objs[0]
    return (cols[1] if len(cols) > 1 else cols[0]), (objs[0] if objs else cols[0])


def render(ctx: Ctx) -> None:
    df = ctx.df
    st.session_state["_xy_link"] = None
    n_complete = int((df["status"] == "complete").sum())
    if n_complete == 0:
        by = df["status"].value_counts().to_dict()
        what = ", ".join(f"{v} {k}" for k, v in by.items()) or "no trials"
        st.info(f"Study **{ctx.study}** has no completed trial yet ({what}). The front appears when the "
                "first trial completes; with live updates on, this page refreshes by itself.")
        return
    cols = ctx.columns
    q = quality_column(cols, ctx.objectives)
    thr = pick(cols, ctx.objectives, THROUGHPUT_PREFS)
    mem = pick(cols, ctx.objectives, MEMORY_PREFS)
    if q is None:
        st.warning("No quality metric is stored for this study; choose axes below.")
    else:
        left, right = st.columns(2)
        with left:
            if thr:
                scatter(ctx, thr, q, "quality vs throughput", "pf_thr")
            else:
                st.info("No throughput was measured in this study (no *_tokens_per_s metric).")
        with right:
            if mem:
                scatter(ctx, mem, q, "quality vs memory", "pf_mem")
            else:
                st.info("No memory metric is stored in this study.")

    st.subheader("Any two metrics")
    objs = [o.name for o in ctx.objectives if o.name in cols]
    dx, dy = _default_pair(cols, objs, shown={(thr, q), (mem, q)} if q else set())
    st.session_state.setdefault("show_xy", len(df) <= BIG)
    _linked_axes(cols)
    a, b, c = st.columns([2, 2, 1], vertical_alignment="bottom")
    with a:
        x = _axis_select("x axis", cols, dx, "x_axis", on_change=_show_xy)
    with b:
        y = _axis_select("y axis", cols, dy, "y_axis", on_change=_show_xy)
    with c:
        st.toggle("draw", key="show_xy", help=f"on by default up to {BIG:,} trials; above that, picking an "
                  "axis draws the chart (each 10,000-point chart takes the browser a while to set up)")
    if st.session_state["show_xy"]:
        scatter(ctx, x, y, f"{plots.axis_title(y)} vs {plots.axis_title(x)}", "pf_xy")
        # the page's link names axes the user chose, and on a large study that the chart is drawn
        st.session_state["_xy_link"] = (x, y) if (x, y) != (dx, dy) or len(df) > BIG else None
    else:
        st.session_state["_xy_link"] = None
        st.caption(f"{len(df):,} trials: this chart is drawn on request (pick an axis or turn on *draw*).")

    if len(cols) >= 3:
        # on by default for 3-objective studies up to BIG trials: a 3-D WebGL scene of 10,000
        # points is the slowest thing a browser draws here, so large studies ask for it
        st.session_state.setdefault("show_3d", len(objs) >= 3 and len(df) <= BIG)
        st.toggle("3-objective view", key="show_3d")
    if len(cols) >= 3 and st.session_state["show_3d"]:
        with st.container(border=True):
            defaults = (objs + [c for c in cols if c not in objs])[:3]
            c1, c2, c3 = st.columns(3)
            with c1:
                x3 = _axis_select("x", cols, defaults[0], "x3")
            with c2:
                y3 = _axis_select("y", cols, defaults[1], "y3")
            with c3:
                z3 = _axis_select("z", cols, defaults[2], "z3")
            chart(_figure_3d(ctx.url, ctx.study, ctx.rev, x3, y3, z3, tuple(selection.get())), "pf_3d")

    pareto = df[df["category"] == "Pareto"]
    st.subheader(f"Pareto set on the study's objectives ({len(pareto)} trials)")
    if len(pareto):
        show = ["number", "pattern"] + [o.name for o in ctx.objectives if o.name in df] + \
               [c for c in ("params_total", "cache_mib_2k", "fidelity") if c in df]
        table, mix = st.columns([5, 2])
        with table:
            st.dataframe(pareto[show].rename(columns={"number": "trial"}), hide_index=True, width="stretch",
                         column_config={"params_total": st.column_config.NumberColumn("params", format="compact")})
        # text bars, neither a Plotly chart nor a second data grid: each costs the browser time on
        # every load of the page (docs/dashboard.md)
        mix_table = plots.primitive_mix_markdown(pareto["primitives"])
        if mix_table:
            with mix:
                st.markdown(mix_table)
    else:
        st.info("No complete, feasible trial with every objective value yet.")

