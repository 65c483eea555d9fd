"""One trial: its architecture as a diagram, values (with rank among the study's feasible
trials), per-task scores, learning curves, the YAML (downloadable, with provenance), and what
ran it (device, kernel backends, sampler parameters).

An architecture stored by an older genome schema that no longer validates is shown as stored
YAML with the validation message, never a traceback."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from search_space.errors import UserError
from search_space.genome import Architecture
from search_space.metrics import METRICS

from .. import export, plots, queries, selection
from ..diagram import architecture_dot
from . import Ctx, chart

KEY = "trial_pick"


def values_table(ctx: Ctx, row: pd.Series) -> pd.DataFrame:
    """Metric, value, unit and rank among feasible complete trials (1 = best)."""
    done = ctx.df[ctx.df["category"].isin(["Pareto", "dominated"])]
    out = []
    obj_names = [o.name for o in ctx.objectives]
    for c in obj_names + [c for c in ctx.columns if c not in obj_names]:
        v = row.get(c, np.nan)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        col = done[c].to_numpy(dtype=float) if c in done else np.array([])
        col = col[~np.isnan(col)]
        better = (col > v) if plots.direction(c) == "maximize" else (col < v)
        rank = f"{int(better.sum()) + 1} / {col.size}" if col.size else ""
        m = METRICS.get(c)
        out.append({"metric": ("★ " if c in obj_names else "") + (m.label if m else c), "value": plots.fmt_value(float(v)),
                    "unit": m.unit if m else "", "rank": rank})
    return pd.DataFrame(out)


def render(ctx: Ctx) -> None:
    df = ctx.df
    numbers = df["number"].astype(int).tolist()
    if not numbers:
        st.info("This study has no trials yet.")
        return
    if st.session_state.get(KEY) not in numbers:
        asked = st.session_state.get(KEY)
        pick = next((n for n in selection.get() if n in numbers), numbers[-1])
        if asked is not None:
            st.warning(f"Study {ctx.study} has no trial {asked}; showing trial {pick}.")
        st.session_state[KEY] = pick
    patterns = dict(zip(df["number"].astype(int), df["pattern"].fillna("").astype(str)))
    cats = dict(zip(df["number"].astype(int), df["category"]))
    n = st.selectbox("trial", numbers, key=KEY, format_func=lambda k: f"{k} · {cats.get(k, '')} · {patterns.get(k, '')}")
    t = queries.trial(ctx.url, ctx.study, int(n), ctx.rev)
    row = df[df["number"] == n].iloc[0]

    st.markdown(f"### trial {n} · {row['category']} · `{t.get('pattern') or '?'}`")
    meta = [f"status **{t['status']}**", f"fidelity **{t.get('fidelity') or '–'}**", f"seed {t.get('seed')}",
            f"device {t.get('device') or '–'}", f"node {t.get('node') or '–'}"]
    if t.get("wall_time_s") is not None:
        meta.append(f"wall time {t['wall_time_s']:.1f} s")
    st.caption(" · ".join(meta))
    if t.get("error"):
        st.error(f"{t['status']}: {t['error']}")
    bcol1, bcol2 = st.columns([1, 3])
    with bcol1:
        if st.button("add to selection", key="trial_add"):
            selection.put(selection.get() + [int(n)])

    arch, arch_error = None, None
    yaml_text = t.get("architecture_yaml")
    if yaml_text:
        try:
            arch = Architecture.from_yaml(yaml_text)
        except UserError as e:
            arch_error = " / ".join(e.lines())
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**architecture**")
        if arch is not None:
            st.graphviz_chart(architecture_dot(arch), width="stretch")
        elif arch_error:
            st.warning("This architecture was stored by an older version of the genome schema and does not "
                       f"validate now: {arch_error}")
        else:
            st.info("No architecture is stored for this trial.")
    with right:
        st.markdown("**values** (★ objective; rank among feasible complete trials)")
        vt = values_table(ctx, row)
        if len(vt):
            st.dataframe(vt, hide_index=True, width="stretch")
        scores = t.get("task_scores") or {}
        if scores:
            chart(plots.task_scores_figure({int(n): scores}), "trial_tasks")
        if t.get("constraints"):
            st.markdown("**constraints** (<= 0 is satisfied)")
            st.dataframe(pd.DataFrame([{"constraint": k, "value": v, "ok": v <= 0} for k, v in t["constraints"].items()]),
                         hide_index=True, width="stretch")
    curves = queries.curves(ctx.url, ctx.study, int(n), ctx.rev)
    if curves:
        chart(plots.curves_figure({int(n): curves}), "trial_curves")
    else:
        st.caption("no learning curves stored for this trial")

    if yaml_text:
        st.markdown("**YAML**")
        if arch is not None:
            objs = [o.name for o in ctx.objectives]
            items, _ = export.items_from_store(queries.store(ctx.url), ctx.study, [int(n)], objs)
            d = export.export_download(items, store_url=ctx.url)
            st.download_button(f"download {d.filename}", d.data, file_name=d.filename, mime=d.mime, key="trial_dl")
        st.code(yaml_text, language="yaml")
    with st.expander("run details: kernel backends, sampler parameters, extra"):
        st.json({"backend": t.get("backend") or {}, "params": t.get("params") or {}, "extra": t.get("extra") or {},
                 "measured": t.get("measured") or {}, "analytic": t.get("analytic") or {}}, expanded=False)
