"""The Streamlit app driven by `streamlit.testing.v1.AppTest` against real seeded SQLite stores."""
from __future__ import annotations

import base64
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from dashboard import plots
from dashboard.data import Objective, prepare
from dashboard.synthetic import OBJECTIVES, random_architecture, result_for, seed_study
from search_space import Architecture
from storage import Store

from .conftest import APP


def _figures(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _chart_ids(at):
    return [c.proto.id for c in at.get("plotly_chart")]


def _values(arr):
    """Plotly JSON arrays arrive binary-encoded ({dtype, bdata}) or as plain lists."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr, dtype=float)


def _trial_traces(fig):
    """(curve index, trial numbers, trace) for each trace of a Pareto scatter that draws trials."""
    out = []
    for i, t in enumerate(fig["data"]):
        if t.get("customdata") is not None:
            cd = _values(t["customdata"])
            out.append((i, cd.reshape(-1, 3)[:, 0].astype(int) if cd.ndim == 1 else cd[:, 0].astype(int), t))
    return out


def _xy_by_trial(fig) -> dict[int, tuple[float, float]]:
    return {int(n): (float(x), float(y)) for _, nums, t in _trial_traces(fig)
            for n, x, y in zip(nums, _values(t["x"]), _values(t["y"]))}


def _no_problems(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _frame(url, study):
    s = Store(url)
    return prepare(s.trials_frame(study), [Objective(*o) for o in s.get_study(study).objectives])


def test_app_imports_neither_torch_nor_ray(seeded):
    # every page is rendered in a fresh interpreter, then its sys.modules is inspected
    code = f"""
import os, sys
os.environ["HYBRID_NAS_STORAGE"] = {seeded!r}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=120).run()
for view in ["progress", "trials", "trial", "compare", "pareto"]:
    at.sidebar.radio(key="view").set_value(view).run()
    assert not at.exception and not at.error, (view, at.exception, at.error)
print("torch" in sys.modules, "ray" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stdout


def test_pareto_page_matches_the_store(app, seeded):
    app.run()
    _no_problems(app)
    assert app.sidebar.selectbox(key="study").value == "demo"  # the newest study comes first
    df = _frame(seeded, "demo")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["trials"] == "40"
    assert metrics["complete"] == str(int((df["status"] == "complete").sum()))
    front = Store(seeded).pareto_front("demo", OBJECTIVES)
    # the page's Pareto category (computed on the frame) is Optuna's front from storage
    assert metrics["Pareto"] == str(len(front))
    assert set(df.loc[df["category"] == "Pareto", "number"]) == set(front["number"])
    figs = _figures(app)
    first = figs[0]
    rows = plots.plotted_rows(df, "decode_tokens_per_s", "quality")
    traces = _trial_traces(first)
    # every plotted trial is one point, in the trace of its category (or the edge rug)
    numbers = np.concatenate([nums for _, nums, _ in traces]).tolist()
    assert sorted(numbers) == sorted(rows["number"].tolist())
    by_name = {t["meta"]: (nums, t) for _, nums, t in traces}
    cat = dict(zip(rows["number"], rows["category"]))
    for c in ("Pareto", "dominated", "infeasible"):
        nums, t = by_name[c]
        assert {cat[n] for n in nums} == {c}
        assert t["marker"]["symbol"] == plots.CATEGORY_STYLE[c][1] and t["marker"]["color"] == plots.CATEGORY_STYLE[c][0]
    # hover summary: trial and category, pattern, params, cache, fidelity (numbers from customdata)
    nums, t = by_name["dominated"]
    r0 = rows.set_index("number").loc[nums[0]]
    cd = _values(t["customdata"]).reshape(-1, 3)[0]
    assert t["hovertext"][0] == r0["pattern"]
    assert np.isclose(cd[1], r0["params_total"], rtol=1e-6) and np.isclose(cd[2], r0["cache_mib_2k"], rtol=1e-6)
    tpl = t["hovertemplate"]
    assert tpl.startswith("<b>trial %{customdata[0]}</b> · %{meta}<br>%{hovertext}")
    assert "params %{customdata[1]" in tpl and "cache@2K %{customdata[2]" in tpl and "fidelity smoke" in tpl
    # categories have legend entries with their counts; failed trials have no throughput: said so
    legend = [t["name"] for t in first["data"]]
    assert any(n.startswith("Pareto (") for n in legend) and any(n.startswith("dominated (") for n in legend)
    assert any(n.startswith("infeasible (") for n in legend)
    assert any(n.startswith("failed (") and n.endswith("no values)") for n in legend)
    # the legend lists categories in their order although the front is drawn last (on top)
    ranks = {t["meta"]: t["legendrank"] for _, _, t in traces}
    assert ranks["Pareto"] < ranks["dominated"] < ranks["infeasible"]
    assert [t["meta"] for _, _, t in traces].index("Pareto") > [t["meta"] for _, _, t in traces].index("dominated")
    # quality vs throughput and quality vs memory side by side, then the selectable pair
    assert figs[1]["layout"]["xaxis"]["title"]["text"] == plots.axis_title("peak_memory_mib")
    assert figs[0]["layout"]["yaxis"]["title"]["text"] == plots.axis_title("quality")
    # the selectable pair starts on a pair the two charts above do not show: the two costs
    assert app.selectbox(key="x_axis").value == "peak_memory_mib"
    assert app.selectbox(key="y_axis").value == "decode_tokens_per_s"
    assert figs[2]["layout"]["xaxis"]["title"]["text"] == plots.axis_title("peak_memory_mib")
    # the primitive mix of the Pareto set, as a table beside it
    mix = next(m.value for m in app.markdown if m.value.startswith("| primitive | trials |"))
    want: dict[str, int] = {}
    store = Store(seeded)
    for n in front["number"]:  # from each Pareto trial's stored architecture
        for p in Architecture.from_yaml(store.trial_yaml("demo", int(n))).primitives():
            want[p] = want.get(p, 0) + 1
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in mix.splitlines()[2:]]
    assert {r[0]: int(r[1]) for r in rows} == want
    for name, n, share in rows:  # the share in words and as an 8-character bar
        pct, bar = share.split("&nbsp;")
        assert pct == f"{want[name] / len(front):.0%}"
        assert bar.count("▰") == round(8 * want[name] / len(front)) and len(bar) == 8 and set(bar) <= {"▰", "▱"}
    # the Pareto set downloads from the sidebar
    labels = [b.label for b in app.sidebar.get("download_button")]
    assert f"download Pareto set ({len(front)}) YAML" in labels


def test_axis_selectors_change_the_chart(app, seeded):
    app.run()
    app.selectbox(key="x_axis").set_value("params_total").run()
    app.selectbox(key="y_axis").set_value("task:mqar").run()
    _no_problems(app)
    fig = _figures(app)[2]
    assert fig["layout"]["xaxis"]["title"]["text"] == plots.axis_title("params_total")
    assert fig["layout"]["yaxis"]["title"]["text"] == plots.axis_title("task:mqar")
    df = _frame(seeded, "demo")
    rows = plots.plotted_rows(df, "params_total", "task:mqar")
    xy = _xy_by_trial(fig)
    assert sorted(xy) == sorted(rows["number"].tolist())
    want = dict(zip(rows["number"], rows["params_total"].astype(float)))
    assert all(np.isclose(xy[n][0], want[n], rtol=1e-6) for n in xy)  # 7 significant digits in the browser
    # the 3-objective view exists with the study's three objectives
    assert app.selectbox(key="z3").value == "peak_memory_mib"


def _qp(at, k):
    v = at.query_params.get(k)
    return v[0] if isinstance(v, list) else v


def test_large_study_draws_the_any_two_chart_on_request(app, monkeypatch):
    # `demo` (40 trials) stands in for a large study: the threshold is lowered below it
    from dashboard.views import pareto
    monkeypatch.setattr(pareto, "BIG", 30)
    app.run()
    _no_problems(app)
    titles = [f["layout"]["xaxis"]["title"]["text"] for f in _figures(app)]
    assert titles == [plots.axis_title("decode_tokens_per_s"), plots.axis_title("peak_memory_mib")]
    assert app.toggle(key="show_xy").value is False
    assert any("drawn on request" in c.value for c in app.caption)
    assert _qp(app, "x") is None
    # the toggle draws it on the default axes, and the page's link says so
    app.toggle(key="show_xy").set_value(True).run()
    _no_problems(app)
    figs = _figures(app)
    assert len(figs) == 3 and figs[2]["layout"]["xaxis"]["title"]["text"] == plots.axis_title("peak_memory_mib")
    assert (_qp(app, "x"), _qp(app, "y")) == ("peak_memory_mib", "decode_tokens_per_s")
    # turned off again, then picking an axis draws it by itself
    app.toggle(key="show_xy").set_value(False).run()
    assert len(_figures(app)) == 2 and _qp(app, "x") is None
    app.selectbox(key="y_axis").set_value("params_total").run()
    _no_problems(app)
    figs = _figures(app)
    assert len(figs) == 3 and figs[2]["layout"]["yaxis"]["title"]["text"] == plots.axis_title("params_total")
    assert app.toggle(key="show_xy").value is True


def test_link_with_axes_draws_them(app, monkeypatch):
    from dashboard.views import pareto
    monkeypatch.setattr(pareto, "BIG", 30)
    app.query_params["study"] = "demo"
    app.query_params["x"] = "params_total"
    app.query_params["y"] = "task:mqar"
    app.run()
    _no_problems(app)
    figs = _figures(app)
    assert len(figs) == 3
    assert figs[2]["layout"]["xaxis"]["title"]["text"] == plots.axis_title("params_total")
    assert figs[2]["layout"]["yaxis"]["title"]["text"] == plots.axis_title("task:mqar")
    assert (_qp(app, "x"), _qp(app, "y")) == ("params_total", "task:mqar")
    assert not app.warning


def test_link_with_an_unknown_axis_says_so(app):
    # a small study: the chart is drawn anyway; the known axis is taken, the unknown one named
    app.query_params["study"] = "demo"
    app.query_params["x"] = "params_total"
    app.query_params["y"] = "no_such_metric"
    app.run()
    _no_problems(app)
    assert len(app.warning) == 1 and "y='no_such_metric'" in app.warning[0].value
    assert app.selectbox(key="x_axis").value == "params_total"
    assert app.selectbox(key="y_axis").value == "decode_tokens_per_s"  # the default pair's y
    # the chart's axes now differ from the default pair: the link carries them
    assert (_qp(app, "x"), _qp(app, "y")) == ("params_total", "decode_tokens_per_s")


def test_simulated_chart_selection_selects_trials_and_compares(app, seeded):
    app.run()
    key = "pf_thr:decode_tokens_per_s:quality"
    # points as the browser reports them without customdata: a curve and an index into it
    traces = _trial_traces(_figures(app)[0])
    (c0, nums0, _), (c1, nums1, _) = traces[0], traces[1]
    pts = [{"curve_number": c0, "point_index": 0}, {"curve_number": c1, "point_index": 1}]
    app.session_state[key] = {"selection": {"points": pts, "point_indices": [0, 1], "box": [], "lasso": []}}
    app.run()
    _no_problems(app)
    want = sorted([int(nums0[0]), int(nums1[1])])
    assert app.sidebar.multiselect(key="selected").value == want
    labels = [b.label for b in app.sidebar.get("download_button")]
    assert "download selected (2) YAML" in labels
    app.sidebar.button(key="cmp_sel").click().run()
    _no_problems(app)
    assert app.sidebar.radio(key="view").value == "compare"
    table = app.dataframe[0].value
    assert list(table.columns) == ["", f"trial {want[0]}", f"trial {want[1]}"]
    assert any("YAML diff" in m.value for m in app.markdown)
    assert app.query_params["view"] == ["compare"] or app.query_params["view"] == "compare"


def test_points_with_customdata_map_to_trials(app, seeded):
    # what a browser sends: points carrying customdata (a typed-array row: the trial number
    # first), and a point of the front line, which is not a trial
    app.run()
    key = "pf_thr:decode_tokens_per_s:quality"
    fig = _figures(app)[0]
    line = next(i for i, t in enumerate(fig["data"]) if t["name"] == "front on these axes")
    pts = [{"curve_number": 0, "point_index": 5, "customdata": {"0": 7, "1": 1.0e6, "2": 2.0}},
           {"curve_number": line, "point_index": 0}]
    app.session_state[key] = {"selection": {"points": pts, "point_indices": [5, 0], "box": [], "lasso": []}}
    app.run()
    assert app.sidebar.multiselect(key="selected").value == [7]


def test_deep_link_to_a_trial(app, seeded):
    app.query_params["study"] = "other"
    app.query_params["trial"] = "4"
    app.run()
    _no_problems(app)
    assert app.sidebar.selectbox(key="study").value == "other"
    assert app.sidebar.radio(key="view").value == "trial"
    assert app.selectbox(key="trial_pick").value == 4
    dot = app.get("graphviz_chart")[0].proto.spec
    assert dot.startswith("digraph") and "embedding" in dot
    yaml_text = app.code[0].value
    from search_space.genome import Architecture
    assert Architecture.from_yaml(yaml_text).fingerprint() == \
        Architecture.from_yaml(Store(seeded).trial_yaml("other", 4)).fingerprint()
    assert any(b.label.startswith("download other-trial4.yaml") for b in app.get("download_button"))
    # the page writes its state back into the URL
    app.selectbox(key="trial_pick").set_value(6).run()
    assert app.query_params["trial"] in (["6"], "6")


def test_study_selection_resets_selection_and_updates_link(app):
    app.run()
    app.sidebar.multiselect(key="selected").set_value([1, 2]).run()
    app.sidebar.selectbox(key="study").set_value("other").run()
    _no_problems(app)
    assert app.sidebar.multiselect(key="selected").value == []
    assert app.query_params["study"] in (["other"], "other")
    assert {m.label: m.value for m in app.metric}["trials"] == "12"


def test_selection_box_of_a_large_study_lists_the_front_and_takes_typed_numbers(app, seeded, monkeypatch):
    # `demo` (42 trials) stands in for a study above the box's listing limit
    from dashboard import selection
    monkeypatch.setattr(selection, "BOX_LISTS_ALL", 10)
    app.run()
    _no_problems(app)
    box = app.sidebar.multiselect(key="selected")
    front = sorted(_frame(seeded, "demo").query("category == 'Pareto'")["number"].astype(int))
    assert sorted(int(o) for o in box.options) == front
    # typed entries: a number, a list and a range; they become trial numbers
    box.set_value(["3", "5, 8-9"]).run()
    _no_problems(app)
    assert app.sidebar.multiselect(key="selected").value == [3, 5, 8, 9]
    assert "download selected (4) YAML" in [b.label for b in app.sidebar.get("download_button")]
    # the selection stays listed beside the front
    assert {"3", "5", "8", "9"} <= set(app.sidebar.multiselect(key="selected").options)
    # what is not a trial of the study is said in one line, and the rest is kept
    app.sidebar.multiselect(key="selected").set_value([3, "nine", "500"]).run()
    _no_problems(app)
    assert app.sidebar.multiselect(key="selected").value == [3]
    assert any(c.value == "Not a trial of this study: 'nine', 500." for c in app.sidebar.caption)


def test_parse_typed_selection():
    from dashboard.selection import parse_entries
    assert parse_entries([4, "12", "40-42, 7", " 9 "]) == ([4, 7, 9, 12, 40, 41, 42], [])
    assert parse_entries(["x1", "3-", "-2", "1-200000"]) == ([], ["x1", "3-", "-2", "1-200000"])


def test_trials_table_filters(app, seeded):
    app.run()
    app.sidebar.radio(key="view").set_value("trials").run()
    df = _frame(seeded, "demo")
    assert len(app.dataframe[0].value) == len(df)
    app.multiselect(key="f_category").set_value(["Pareto"]).run()
    t = app.dataframe[0].value
    assert set(t["number"]) == set(df.loc[df["category"] == "Pareto", "number"])
    app.multiselect(key="f_category").set_value([]).run()
    app.multiselect(key="f_status").set_value(["failed"]).run()
    assert set(app.dataframe[0].value["status"]) == {"failed"}
    app.multiselect(key="f_status").set_value([]).run()
    app.multiselect(key="f_primitives").set_value(["moe"]).run()
    t = app.dataframe[0].value
    s = Store(seeded)
    assert len(t) and all("type: moe" in s.trial_yaml("demo", int(n)) for n in t["number"])
    assert len(t) == sum("type: moe" in s.trial_yaml("demo", int(n)) for n in df["number"])
    app.multiselect(key="f_primitives").set_value([]).run()
    app.selectbox(key="f_range_col").set_value("params_total").run()
    lo, hi = app.slider(key="f_range:params_total").value
    mid = float(np.median(df["params_total"]))
    app.slider(key="f_range:params_total").set_value((lo, mid)).run()
    _no_problems(app)
    t = app.dataframe[0].value
    assert len(t) == int((df["params_total"] <= mid).sum()) and (t["params_total"] <= mid).all()


def test_progress_page(app):
    app.run()
    app.sidebar.radio(key="view").set_value("progress").run()
    _no_problems(app)
    figs = _figures(app)
    hv = figs[0]
    assert hv["layout"]["title"]["text"].startswith("hypervolume")
    y = _values(hv["data"][0]["y"])
    assert len(y) and np.all(np.diff(y) >= -1e-9)  # hypervolume never decreases
    assert figs[1]["layout"]["title"]["text"].startswith("trials over time")
    assert {t["name"] for t in figs[1]["data"]} >= {"complete", "failed"}


def test_new_trials_appear_on_the_next_run(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    url = f"sqlite:///{tmp_path / 'live.db'}"
    s = Store(url)
    seed_study(s, "live", 5, seed=3, running=0)
    monkeypatch.setenv("HYBRID_NAS_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert {m.label: m.value for m in at.metric}["trials"] == "5"
    rng = random.Random(1)
    arch = random_architecture(rng)
    s.finish_trial("live", 5, result_for(arch, rng), constraints={"params_total": -1.0}, arch=arch)
    at.run()  # what the live poll triggers: the revision moved, the cached frame is replaced
    assert {m.label: m.value for m in at.metric}["trials"] == "6"
    assert any(c.value.startswith("live · checked") for c in at.sidebar.caption)


def test_live_updates_can_be_turned_off_by_link(app):
    app.query_params["live"] = "0"
    app.run()
    _no_problems(app)
    assert app.sidebar.toggle(key="live").value is False
    assert not any(c.value.startswith("live · checked") for c in app.sidebar.caption)
    assert app.query_params["live"] in (["0"], "0")
    app.sidebar.toggle(key="live").set_value(True).run()
    assert any(c.value.startswith("live · checked") for c in app.sidebar.caption)
    assert "live" not in app.query_params


# ------------------------------------------------------------------------------ error states
def test_empty_store(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(url).close()
    monkeypatch.setenv("HYBRID_NAS_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=120).run()
    _no_problems(at)
    assert "has no studies yet" in at.info[0].value


@pytest.mark.parametrize("url, needle", [
    ("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nothing", "Cannot read the store"),
    ("sqlite:////nonexistent/dir/store.db", "no database file"),
])
def test_unreachable_database_is_a_message(url, needle, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("HYBRID_NAS_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.error and needle in at.error[0].value
    page = " ".join(e.value for e in at.error) + " ".join(c.value for c in at.sidebar.caption)
    assert "s3cret" not in page


def test_no_url(monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.delenv("HYBRID_NAS_STORAGE", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and "No store given" in at.error[0].value


def test_study_without_completed_trials(app):
    app.query_params["study"] = "pending"
    app.run()
    _no_problems(app)
    assert any("no completed trial yet" in i.value and "3 running" in i.value for i in app.info)
    app.sidebar.radio(key="view").set_value("progress").run()
    _no_problems(app)


def test_study_from_an_older_schema(app):
    app.query_params["study"] = "oldschema"
    app.run()
    _no_problems(app)
    assert any("older schema" in w.value for w in app.warning)
    app.sidebar.radio(key="view").set_value("trial").run()
    app.selectbox(key="trial_pick").set_value(0).run()
    _no_problems(app)
    assert any("older version of the genome schema" in w.value and "n_heads" in w.value for w in app.warning)
    assert not app.get("graphviz_chart")


def test_unknown_study_in_link(app):
    app.query_params["study"] = "nope"
    app.run()
    _no_problems(app)
    assert any("'nope'" in w.value for w in app.warning)
    assert app.sidebar.selectbox(key="study").value in ("demo", "other", "pending", "oldschema")


def test_store_that_comes_back_is_picked_up(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    url = f"sqlite:///{tmp_path / 'later.db'}"
    monkeypatch.setenv("HYBRID_NAS_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "no database file" in at.error[0].value
    assert any(c.value.startswith("live · checked") for c in at.sidebar.caption)  # still polling
    with Store(url) as s:
        seed_study(s, "late", 4, seed=2, running=0)
    at.run()  # what the poll triggers once the store can be read
    _no_problems(at)
    assert {m.label: m.value for m in at.metric}["trials"] == "4"


def test_link_to_a_missing_trial(app):
    app.query_params["study"] = "other"
    app.query_params["trial"] = "999"
    app.run()
    _no_problems(app)
    assert any("has no trial 999" in w.value for w in app.warning)
    assert app.selectbox(key="trial_pick").value == 11
