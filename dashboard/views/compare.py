"""Two or more selected trials side by side: values (best per row marked), diagrams, curves
overlaid, per-task scores grouped, and for two trials a diff of their YAML."""
from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import streamlit as st

from search_space.errors import UserError
from search_space.genome import Architecture
from search_space.metrics import METRICS

from .. import plots, queries, selection
from ..diagram import architecture_dot
from . import Ctx, chart

MAX_DIAGRAMS = 4


def comparison_table(ctx: Ctx, numbers: list[int]) -> pd.DataFrame:
    """Rows: pattern, category, then every metric with data; columns: `trial N`; the best value
    of each metric row (by its direction) is prefixed with ★."""
    rows = ctx.df.set_index("number").loc[numbers]
    obj = [o.name for o in ctx.objectives]
    metrics = obj + [c for c in ctx.columns if c not in obj]
    data = {"": ["pattern", "category", "fidelity"] + [(METRICS[c].label if c in METRICS else c) for c in metrics]}
    best = {}
    for c in metrics:
        v = rows[c].to_numpy(dtype=float)
        if np.isfinite(v).any():
            best[c] = np.nanmax(v) if plots.direction(c) == "maximize" else np.nanmin(v)
    for n in numbers:
        r = rows.loc[n]
        col = [str(r["pattern"]), str(r["category"]), str(r.get("fidelity", ""))]
        for c in metrics:
            v = float(r[c])
            s = plots.fmt_value(v)
            if c in best and np.isfinite(v) and v == best[c] and len(numbers) > 1:
                s = "★ " + s
            col.append(s)
        data[f"trial {n}"] = col
    out = pd.DataFrame(data)
    keep = [i for i in range(len(out)) if i < 3 or any(out.iloc[i, j] != "–" for j in range(1, out.shape[1]))]
    return out.iloc[keep].reset_index(drop=True)


def render(ctx: Ctx) -> None:
    present = set(ctx.df["number"].astype(int))
    numbers = [n for n in selection.get() if n in present]
    if len(numbers) < 2:
        st.info("Select two or more trials to compare them: click or lasso points on the Pareto charts, "
                "pick rows in the trials table, or add them in the sidebar.")
        return
    st.markdown(f"### comparing {len(numbers)} trials")
    st.dataframe(comparison_table(ctx, numbers), hide_index=True, width="stretch")

    trials = {n: queries.trial(ctx.url, ctx.study, n, ctx.rev) for n in numbers}
    shown = numbers[:MAX_DIAGRAMS]
    if len(numbers) > MAX_DIAGRAMS:
        st.caption(f"diagrams of the first {MAX_DIAGRAMS} trials")
    for n, col in zip(shown, st.columns(len(shown))):
        with col:
            st.markdown(f"**trial {n}** `{trials[n].get('pattern') or '?'}`")
            y = trials[n].get("architecture_yaml")
            if not y:
                st.info("no architecture stored")
                continue
            try:
                st.graphviz_chart(architecture_dot(Architecture.from_yaml(y)), width="stretch")
            except UserError as e:
                st.warning(f"older schema, does not validate: {' / '.join(e.lines())}")
    curves = {n: queries.curves(ctx.url, ctx.study, n, ctx.rev) for n in numbers}
    if any(curves.values()):
        chart(plots.curves_figure({n: c for n, c in curves.items() if c}), "cmp_curves")
    scores = {n: trials[n].get("task_scores") or {} for n in numbers}
    if any(scores.values()):
        chart(plots.task_scores_figure({n: s for n, s in scores.items() if s}), "cmp_tasks")
    if len(numbers) == 2:
        a, b = (trials[n].get("architecture_yaml") or "" for n in numbers)
        diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                            f"trial {numbers[0]}", f"trial {numbers[1]}"))
        st.markdown("**YAML diff**")
        st.code(diff or "(identical architectures)", language="diff")
