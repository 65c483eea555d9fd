"""The hybrid-nas dashboard: `streamlit run dashboard/app.py -- --storage URL`
(or `hybrid-nas dashboard --storage URL`).

The flow of one run: read the store URL -> list studies -> deep link (`?study=NAME&view=..&trial=N`)
on the first run -> sidebar (study, page, live updates) -> the study's revision -> the cached,
prepared trials frame -> the page -> the selection panel and downloads -> query params written
back -> the live poll.

Design choices:
- Reads only the store (`storage.Store`), never torch or ray (a test checks `sys.modules`).
- Every query is cached on the study's revision counter (`dashboard.queries`), so reruns of an
  unchanged study do not touch the database; the live poll (`st.fragment(run_every=...)`) reads
  that one integer and reruns the app only when it moved, or when the list of studies changed.
- Anything the user can get wrong (no URL, unreachable server, empty store, unknown study in a
  link, an architecture from an older schema) is a message on the page. An unexpected error is
  also a one-line message (logged with its traceback on the server), never a traceback on the page.
"""
from __future__ import annotations

import logging
import sys
import time

import streamlit as st

from dashboard import config, queries, selection
from dashboard.data import metric_columns
from dashboard.export import export_download, items_from_store
from dashboard.views import Ctx, compare, pareto, progress, trial, trials
from search_space.errors import UserError

log = logging.getLogger("hybrid_nas.dashboard")

VIEWS = {
    "pareto": ("Pareto front", pareto.render),
    "progress": ("Progress", progress.render),
    "trials": ("Trials", trials.render),
    "trial": ("Trial", trial.render),
    "compare": ("Compare", compare.render),
}
INTERVALS = [2, 5, 10, 30, 60]
UNREACHABLE = ("unreachable",)


def deep_link(names: list[str]) -> None:
    """Apply `?study=&view=&trial=&live=0&x=&y=` once per session (later runs keep what the user
    picked). The Pareto page applies `x`/`y` (the any-two chart's axes) once it knows the study's
    columns."""
    if st.session_state.get("_deep_link_done"):
        return
    st.session_state["_deep_link_done"] = True
    qp = st.query_params
    s = qp.get("study")
    if s:
        if s in names:
            st.session_state["study"] = s
        else:
            st.session_state["_link_warning"] = f"The link names study {s!r}, which is not in this store."
    if qp.get("live", "").lower() in ("0", "false", "off", "no"):
        st.session_state["live"] = False
    v = qp.get("view")
    if v in VIEWS:
        st.session_state["view"] = v
    t = qp.get("trial")
    if t is not None:
        try:
            st.session_state[trial.KEY] = int(t)
            st.session_state.setdefault("view", "trial")
        except ValueError:
            st.session_state["_link_warning"] = f"The link's trial {t!r} is not a trial number."
    if qp.get("x") or qp.get("y"):
        st.session_state["_link_axes"] = (qp.get("x") or None, qp.get("y") or None)


def write_query_params(study: str, view: str) -> None:
    want = {"study": study}
    if view != "pareto":
        want["view"] = view
    if view == "trial" and st.session_state.get(trial.KEY) is not None:
        want["trial"] = str(st.session_state[trial.KEY])
    if view == "pareto" and st.session_state.get("_xy_link"):
        want["x"], want["y"] = st.session_state["_xy_link"]
    if not st.session_state.get("live", True):
        want["live"] = "0"
    if dict(st.query_params) != want:
        st.query_params.from_dict(want)


def goto(view: str, number: int | None = None) -> None:
    st.session_state["view"] = view
    if number is not None:
        st.session_state[trial.KEY] = number


@st.cache_data(show_spinner=False, max_entries=32, ttl=3600)
def _download(url: str, study: str, rev: int, numbers: tuple[int, ...], objectives: tuple[str, ...], label: str):
    items, problems = items_from_store(queries.store(url), study, list(numbers), list(objectives))
    return (export_download(items, label=label, store_url=url) if items else None), problems


def _typed_selection(present: frozenset[int]) -> None:
    """The box's on_change: what was typed becomes trial numbers before the page reruns (a
    widget's value may be rewritten only in its callback); what is not a trial is said once."""
    nums, bad = selection.parse_entries(st.session_state.get(selection.KEY, []))
    missing = [n for n in nums if n not in present]
    st.session_state[selection.KEY] = [n for n in nums if n in present]
    if bad or missing:
        what = [repr(b) for b in bad] + [str(n) for n in missing[:5]] + (["..."] if len(missing) > 5 else [])
        st.session_state["_selection_warning"] = f"Not a trial of this study: {', '.join(what)}."


def selection_panel(ctx: Ctx) -> None:
    numbers = ctx.df["number"].astype(int).tolist()
    present = frozenset(numbers)
    st.session_state[selection.KEY] = [n for n in selection.get() if n in present]
    st.markdown("**selected trials**")
    if len(numbers) > selection.BOX_LISTS_ALL:
        front = ctx.df.loc[ctx.df["category"] == "Pareto", "number"].astype(int)
        numbers = sorted(set(front) | set(selection.get()))
    st.multiselect("selected trials", numbers, key=selection.KEY, label_visibility="collapsed",
                   placeholder="click or lasso points, pick table rows, or type trial numbers",
                   accept_new_options=True, on_change=_typed_selection, args=(present,))
    if st.session_state.get("_selection_warning"):
        st.caption(st.session_state.pop("_selection_warning"))
    sel = selection.get()
    objs = tuple(o.name for o in ctx.objectives)
    if sel:
        c1, c2 = st.columns(2)
        c1.button(f"open trial {sel[0]}", on_click=goto, args=("trial", sel[0]), key="open_sel")
        c2.button("compare", on_click=goto, args=("compare",), disabled=len(sel) < 2, key="cmp_sel")
        d, problems = _download(ctx.url, ctx.study, ctx.rev, tuple(sel), objs, "selected")
        if d is not None:
            st.download_button(f"download selected ({len(sel)}) YAML", d.data, file_name=d.filename, mime=d.mime,
                               key="dl_selected", width="stretch")
        for p in problems:
            st.caption(f"not exported: {p}")
    front = ctx.df.loc[ctx.df["category"] == "Pareto", "number"].astype(int).tolist()
    if front:
        # Built with the page (cached per store revision by _download). A callable built on click
        # never delivered the file in headless Chromium (the browser test timed out waiting).
        d, problems = _download(ctx.url, ctx.study, ctx.rev, tuple(front), objs, "pareto")
        if d is not None:
            st.download_button(f"download Pareto set ({len(front)}) YAML", d.data, file_name=d.filename,
                               mime=d.mime, key="dl_pareto", width="stretch")
        for p in problems:
            st.caption(f"not exported: {p}")


def signature(url: str, study: str | None) -> tuple:
    names = tuple(s.name for s in queries.list_studies(url))
    return names, (queries.revision(url, study) if study in names else None)


def live_poll(url: str, study: str | None) -> None:
    """Rerun the whole app when the store changed; read one integer (and the study names) per tick."""
    if not st.session_state.get("live", True):
        return
    every = st.session_state.get("interval", 5)

    @st.fragment(run_every=every)
    def _poll():
        try:
            sig = signature(url, study)
        except Exception:  # noqa: BLE001 - the poll never breaks the page; a full run reports the error
            sig = UNREACHABLE
        if sig != st.session_state.get("_rendered_sig"):
            st.rerun()
        st.caption(f"live · checked {time.strftime('%H:%M:%S')}")
    _poll()


def header(ctx: Ctx) -> None:
    df, info = ctx.df, ctx.info
    st.markdown(f"## {ctx.study}")
    counts = df["category"].value_counts()
    cols = st.columns(6)
    cols[0].metric("trials", len(df))
    cols[1].metric("complete", int((df["status"] == "complete").sum()))
    cols[2].metric("Pareto", int(counts.get("Pareto", 0)))
    cols[3].metric("infeasible", int(counts.get("infeasible", 0)))
    cols[4].metric("failed", int(counts.get("failed", 0)))
    cols[5].metric("running", int(counts.get("running", 0)))
    objs = ", ".join(f"{o.name} ({'↑' if o.direction == 'maximize' else '↓'})" for o in ctx.objectives)
    cons = ", ".join(info.constraints) or "none"
    st.caption(f"objectives: {objs} · constraints: {cons} · study {info.status} · revision {ctx.rev} · "
               f"updated {info.updated_at:%Y-%m-%d %H:%M:%S} UTC")
    problem = queries.config_problem(ctx.url, ctx.study, ctx.rev)
    if problem:
        st.warning(f"This study's config is from an older schema and does not validate now ({problem}). "
                   "Its trials are shown as stored; architectures that no longer validate cannot be exported.")


def main() -> None:
    t0 = time.perf_counter()
    st.set_page_config(page_title="hybrid-nas", page_icon="🧬", layout="wide")
    url = config.storage_url(sys.argv[1:])
    if not url:
        st.error("No store given. Start the dashboard with `hybrid-nas dashboard --storage URL` "
                 f"(or set {config.ENV_VAR}).")
        return
    with st.sidebar:
        st.title("hybrid-nas")
        st.caption(f"store: `{config.mask_url(url)}`")
    try:
        summaries = queries.list_studies(url)
    except UserError as e:
        st.error(f"Cannot read the store: {e}")
        st.caption("Check the URL and that the database server is running; with live updates on, "
                   "this page comes back by itself when the store can be read.")
        st.session_state["_rendered_sig"] = UNREACHABLE
        with st.sidebar:
            live_poll(url, None)
        return
    names = [s.name for s in summaries]
    if not names:
        st.info(f"The store `{config.mask_url(url)}` has no studies yet. Start one with "
                "`hybrid-nas search ...`; it appears here by itself while live updates are on.")
        st.session_state["_rendered_sig"] = ((), None)
        with st.sidebar:
            live_poll(url, None)
        return
    deep_link(names)
    by_name = {s.name: s for s in summaries}
    with st.sidebar:
        if st.session_state.get("study") not in names:
            st.session_state["study"] = names[0]
        study = st.selectbox("study", names, key="study",
                             format_func=lambda n: f"{n} · {by_name[n].total} trials · {by_name[n].status}")
        view = st.radio("page", list(VIEWS), key="view", format_func=lambda v: VIEWS[v][0])
        st.session_state.setdefault("live", True)
        st.session_state.setdefault("interval", 5)
        st.toggle("live updates", key="live", help="poll the store and show new trials as they land")
        st.select_slider("refresh every", INTERVALS, key="interval", format_func=lambda s: f"{s} s",
                         disabled=not st.session_state["live"])
        panel = st.container()
    if st.session_state.get("_link_warning"):
        st.warning(st.session_state.pop("_link_warning"))
    if st.session_state.get("_last_study") != study:
        # another study: its trial numbers mean other trials
        if st.session_state.get("_last_study") is not None:
            selection.put([])
            st.session_state.pop(trial.KEY, None)
            for k in ("show_3d", "show_xy"):  # their defaults depend on the study's size
                st.session_state.pop(k, None)
        st.session_state["_last_study"] = study

    rev = queries.revision(url, study)
    info = queries.study_info(url, study, rev)
    df = queries.frame(url, study, rev)
    ctx = Ctx(url=url, study=study, rev=rev, info=info, df=df, objectives=queries.objectives(info),
              columns=metric_columns(df))
    header(ctx)
    VIEWS[view][1](ctx)
    with panel:
        selection_panel(ctx)
        st.session_state["_rendered_sig"] = (tuple(names), rev)
        live_poll(url, study)
        # the server's share of a page view (the benchmark reads it too)
        st.session_state["_render_s"] = time.perf_counter() - t0
        st.caption(f"page built in {st.session_state['_render_s']:.2f} s · {len(df):,} trials")
    write_query_params(study, view)


def run() -> None:
    try:
        main()
    except UserError as e:
        st.error(str(e))
    except Exception as e:  # noqa: BLE001 - the page shows one line; the server log has the traceback
        log.exception("dashboard error")
        st.error(f"The dashboard hit an unexpected error ({type(e).__name__}): {' '.join(str(e).split())[:400]}")


run()
