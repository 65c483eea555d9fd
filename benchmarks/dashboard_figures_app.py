"""The Pareto page's three scatters of the benchmark's 10,000-trial study and nothing else, for
`benchmarks/dashboard_figures.py`: ?v=old draws them as an earlier dashboard/plots.py did (the
file named by HNAS_OLD_PLOTS, drawn with Streamlit's theme as that version was), ?v=new as the
current one does (theme=None; the old one with HNAS_OLD_THEME, default Streamlit's), ?v=new-tables adds the Pareto-set tables the page shows below, ?v=svg draws the current figures as SVG
at any size (the app switches to WebGL at plots.WEBGL_AT points). (?v=pair, the first two as
panels of one figure, was measured at 6666375 and reverted: docs/dashboard.md.)"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import streamlit as st  # noqa: E402

from dashboard import plots, queries  # noqa: E402

URL = os.environ["HYBRID_NAS_STORAGE"]
STUDY = os.environ.get("HNAS_STUDY", "bench")
PAIRS = [("train_tokens_per_s", "quality"), ("peak_memory_mib", "quality"), ("params_total", "quality")]


@st.cache_resource
def old_plots():
    spec = importlib.util.spec_from_file_location("old_plots", os.environ["HNAS_OLD_PLOTS"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@st.cache_resource
def figures(v: str):
    df = queries.frame(URL, STUDY, queries.revision(URL, STUDY))
    mod = old_plots() if v == "old" else plots
    if v == "svg":  # the current figures, drawn as SVG at any size
        at, plots.WEBGL_AT = plots.WEBGL_AT, 10**9
        try:
            return df, [plots.pareto_scatter(df, x, y) for x, y in PAIRS]
        finally:
            plots.WEBGL_AT = at
    return df, [mod.pareto_scatter(df, x, y) for x, y in PAIRS]


v = st.query_params.get("v", "new")
old_theme = os.environ.get("HNAS_OLD_THEME", "streamlit")
theme = (None if old_theme == "none" else old_theme) if v == "old" else None
df, figs = figures(v)
st.sidebar.title("figures")
a, b = st.columns(2)
with a:
    st.plotly_chart(figs[0], key="a", on_select="rerun", theme=theme, width="stretch")
with b:
    st.plotly_chart(figs[1], key="b", on_select="rerun", theme=theme, width="stretch")
st.plotly_chart(figs[2], key="c", on_select="rerun", theme=theme, width="stretch")
if v == "new-tables":  # as the Pareto page shows them
    pareto = df[df["category"] == "Pareto"]
    t, m = st.columns([3, 1])
    with t:
        st.dataframe(pareto[["number", "pattern", "quality", "train_tokens_per_s", "peak_memory_mib", "params_total"]],
                     hide_index=True, width="stretch")
    with m:
        st.markdown(plots.primitive_mix_markdown(pareto["primitives"]))
