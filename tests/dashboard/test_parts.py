"""The dashboard's plain parts: Pareto bookkeeping, filters, figures and the architecture diagram."""
from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import plots
from dashboard.config import mask_url, storage_url
from dashboard.data import Filters, Objective, apply_filters, categories, nondominated, prepare, primitives_in
from dashboard.diagram import architecture_dot
from dashboard.synthetic import random_architecture
from search_space.genome import Architecture

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "architectures").glob("*.yaml"))


def _brute_front(F):
    n = len(F)
    return np.array([not any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(n)) for i in range(n)])


@pytest.mark.parametrize("k", [2, 3])
def test_nondominated_matches_the_definition(k):
    rng = np.random.default_rng(k)
    F = rng.integers(0, 6, size=(80, k)).astype(float)  # many ties and duplicates
    assert (nondominated(F) == _brute_front(F)).all()


def test_categories():
    df = pd.DataFrame({
        "number": range(7),
        "status": ["complete", "complete", "complete", "failed", "pruned", "running", "complete"],
        "feasible": pd.array([True, True, False, None, None, None, True], dtype="boolean"),
        "quality": [0.9, 0.5, 0.99, np.nan, 0.1, np.nan, np.nan],
        "peak_memory_mib": [10.0, 5.0, 1.0, np.nan, np.nan, np.nan, 3.0],
    })
    objs = [Objective("quality", "maximize"), Objective("peak_memory_mib", "minimize")]
    assert categories(df, objs).tolist() == ["Pareto", "Pareto", "infeasible", "failed", "pruned", "running", "failed"]


def test_front_2d_and_directions():
    x = np.array([1.0, 2.0, 3.0, 2.5, np.nan])
    y = np.array([1.0, 3.0, 2.0, 1.0, 9.0])
    assert plots.front_2d(x, y, "maximize", "maximize").tolist() == [2, 1]
    assert plots.front_2d(x, y, "minimize", "maximize").tolist() == [0, 1]
    assert plots.direction("decode_tokens_per_s") == "maximize" and plots.direction("task:text_bpb") == "minimize"
    assert plots.direction("task:mqar") == "maximize"


def test_filters_and_primitives():
    arch = Architecture.from_yaml(EXAMPLES[0]) if EXAMPLES else random_architecture(random.Random(0))
    assert primitives_in(arch.to_yaml()) == frozenset(arch.primitives() - {"none"})
    df = pd.DataFrame({"number": [0, 1, 2], "status": ["complete", "failed", "complete"],
                       "quality": [0.1, np.nan, 0.3], "params_total": [1e5, 2e5, 3e5],
                       "yaml": ["mixer: {type: attention}", "- {type: mamba2, d_state: 8}\n  channel: {type: moe}",
                                "mixer:\n  type: attention\nchannel: {type: moe}"]})
    p = prepare(df, [Objective("quality", "maximize")])
    assert apply_filters(p, Filters(primitives=["attention", "moe"]))["number"].tolist() == [2]
    assert apply_filters(p, Filters(statuses=["failed"]))["number"].tolist() == [1]
    assert apply_filters(p, Filters(range_column="params_total", range=(1.5e5, 3e5)))["number"].tolist() == [1, 2]
    assert apply_filters(p, Filters(categories=["Pareto"]))["number"].tolist() == [2]


def _check_dot(dot: str):
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    # edges sit outside the clusters, so an edge never pulls a node into a block it is not in
    body = dot.split("\n")
    last_cluster_end = max(i for i, ln in enumerate(body) if ln == "}" and i < len(body) - 1) if "subgraph" in dot else 0
    assert all("->" not in ln for ln in body[:last_cluster_end])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_diagram_of_every_example(path):
    arch = Architecture.from_yaml(path)
    dot = architecture_dot(arch)
    _check_dot(dot)
    n_items = len(arch.blocks)
    assert len(re.findall(r"label=\"blocks\[\d+\]", dot)) == n_items


def test_diagram_marks_parallel_recursion_and_sharing():
    arch = Architecture.from_dict({"d_model": 64, "blocks": [
        {"mixer": {"parallel": [{"type": "attention"}, {"type": "mamba2"}], "combine": "gated_sum"}, "share": "w"},
        {"mixer": {"parallel": [{"type": "attention"}, {"type": "mamba2"}], "combine": "gated_sum"}, "share": "w"},
        {"recursion": {"max_depth": 3, "capacity": [1.0, 0.5, 0.25], "body": [{"mixer": {"type": "rwkv7"}}]}},
        {"mixer": {"type": "retention"}, "repeat": 4}]})
    dot = architecture_dot(arch)
    _check_dot(dot)
    assert dot.count("combine: gated_sum") == 2
    assert "owns shared weights 'w'" in dot and "reuses weights 'w'" in dot
    assert 'style=dotted dir=none constraint=false' in dot  # the tie between sharers
    assert "recursion, up to 3x (expert_choice capacity 1, 0.5, 0.25)" in dot
    assert 'label="depth <= 3"' in dot  # the back-edge of the recursion
    assert "x4" in dot  # repeat


@pytest.mark.parametrize("seed", range(20))
def test_random_architectures_draw(seed):
    _check_dot(architecture_dot(random_architecture(random.Random(seed))))


def test_figures_build_for_edge_cases():
    empty = prepare(pd.DataFrame({"number": [], "status": [], "quality": [], "peak_memory_mib": []}),
                    [Objective("quality", "maximize")])
    plots.pareto_scatter(empty, "peak_memory_mib", "quality")
    one = prepare(pd.DataFrame({"number": [0, 1], "status": ["complete", "failed"], "quality": [0.5, np.nan],
                                "peak_memory_mib": [10.0, 12.0]}), [Objective("quality", "maximize")])
    fig = plots.pareto_scatter(one, "peak_memory_mib", "quality")
    names = [t.name for t in fig.data]
    assert "no value: on the edge (1)" in names  # the failed trial's missing quality is drawn on the edge
    plots.pareto_3d(one, "peak_memory_mib", "quality", "peak_memory_mib", selected=[0])
    plots.timeline_figure(one, "finished_at")
    plots.curves_figure({0: {"train_loss": [(1, 2.0), (2, 1.5)], "quality": [(1, 0.1)]}})
    plots.task_scores_figure({0: {"mqar": 0.5}, 1: {"mqar": 0.7}})


def test_url_handling():
    assert mask_url("postgresql+psycopg://u:pw@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert storage_url(["--storage", "sqlite:///a.db"], {}) == "sqlite:///a.db"
    assert storage_url([], {"HYBRID_NAS_STORAGE": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert storage_url(["--sto", "x"], {}) is None  # no abbreviations: pytest's own flags never match


def test_chart_selection_maps_points_to_trials():
    from dashboard.selection import chart_numbers
    curves = [[10, 11, 12], [20, 21], None]  # two traces of trials, then the front line
    ev = {"selection": {"points": [
        {"curve_number": 1, "point_index": 1},                          # by curve and index
        {"curve_number": 0, "point_index": 2, "customdata": [12, 3e6, 1.5]},  # by customdata
        {"curve_number": 0, "point_index": 0, "customdata": 10},
        {"curve_number": 1, "point_index": 0, "customdata": {"0": 20, "1": 2e6, "2": 0.5}},  # a typed-array row
        {"curve_number": 2, "point_index": 0},                          # the front line: not a trial
        {"curve_number": 7, "point_index": 0}]}}                        # no such trace
    assert chart_numbers(ev, curves) == [10, 12, 20, 21]
    # bare indices name points of the one trace of trials, and are ambiguous with several
    assert chart_numbers({"selection": {"points": [], "point_indices": [0, 2, 9]}}, [[5, 6, 7], None]) == [5, 7]
    assert chart_numbers({"selection": {"points": [], "point_indices": [0]}}, curves) == []
    assert chart_numbers({"selection": None}, curves) == []


def test_scatter_traces_split_by_category_with_their_trials():
    df = prepare(pd.DataFrame({"number": [0, 1, 2, 3], "status": ["complete"] * 3 + ["failed"],
                               "quality": [0.5, 0.4, 0.6, np.nan], "peak_memory_mib": [10.0, 12.0, 8.0, 9.0],
                               "pattern": ["A", "M2", "A M2", "R7"], "params_total": [1e6, 2e6, 3e6, 4e6],
                               "cache_mib_2k": [1.0, 0.5, 2.0, 0.1]}),
                 [Objective("quality", "maximize"), Objective("peak_memory_mib", "minimize")])
    fig = plots.pareto_scatter(df, "peak_memory_mib", "quality")
    curves = plots.curve_trials(fig)
    by_meta = {t.meta: c for t, c in zip(fig.data, curves) if c is not None}
    assert sorted(n for c in by_meta.values() for n in c) == [0, 1, 2, 3]
    assert by_meta["no value on one axis"] == [3]  # the failed trial has no quality: on the edge
    cats = dict(zip(df["number"], df["category"]))
    for meta, nums in by_meta.items():
        if meta in plots.CATEGORY_STYLE:
            assert {cats[n] for n in nums} == {meta}
    # the hover's numbers come from customdata: [number, params, cache]
    t = next(t for t in fig.data if t.meta == "Pareto")
    cd = np.asarray(t.customdata)
    assert np.allclose(cd[:, 1], [df.set_index("number").loc[n, "params_total"] for n in cd[:, 0].astype(int)])


def test_figures_are_plain_json_with_a_data_revision():
    """What the browser gets (dashboard/plots.py `figure`): x/y as JSON lists of 7-digit floats
    (a binary array is a change for every Plotly.react, and a change of x means a full
    recalculation), customdata still binary, no template (a new template object is a change
    too), the Streamlit look on every axis, and a datarevision that moves with the data only."""
    import json

    import plotly.io as pio
    df = prepare(pd.DataFrame({"number": list(range(6)), "status": ["complete"] * 5 + ["failed"],
                               "quality": [0.5, 0.4, 0.6, 1 / 3, 0.45, np.nan],
                               "peak_memory_mib": [10.0, 12.0, 8.0, 123456.789, 9.5, 9.0],
                               "pattern": ["A", "M2", "A M2", "R7", "A", "M1"], "params_total": [1e6] * 6}),
                 [Objective("quality", "maximize"), Objective("peak_memory_mib", "minimize")])
    fig = plots.pareto_scatter(df, "peak_memory_mib", "quality")
    spec = json.loads(pio.to_json(fig.to_dict(), validate=False))
    lay = spec["layout"]
    assert lay["template"] is None
    assert lay["clickmode"] == "event+select" and lay["dragmode"] == "pan"
    assert lay["xaxis"]["gridcolor"] == lay["yaxis"]["gridcolor"] and lay["xaxis"]["title"]["text"]
    assert lay["title"]["x"] == 0 and lay["font"]["family"].startswith('"Source Sans"')
    for t in spec["data"]:
        assert isinstance(t["x"], list) and isinstance(t["y"], list)
    pts = [t for t in spec["data"] if t.get("customdata") is not None]
    assert all("bdata" in t["customdata"] for t in pts)  # 2-D: decoded to a plain array of rows
    xs = {v for t in pts for v in t["x"]}
    assert 123456.8 in xs and 1 / 3 not in {v for t in pts for v in t["y"]}
    assert 0.3333333 in {v for t in pts for v in t["y"]}
    rev = lay["datarevision"]
    assert plots.pareto_scatter(df, "peak_memory_mib", "quality").layout.datarevision == rev  # same data
    moved = df.copy()
    moved.loc[0, "quality"] = 0.55
    assert plots.pareto_scatter(moved, "peak_memory_mib", "quality").layout.datarevision != rev
    # a figure with a second y axis gets the look on it as well, under what the caller set
    curves = plots.curves_figure({0: {"train_loss": [(1, 2.0), (2, 1.5)], "quality": [(1, 0.1), (2, 0.2)]}})
    assert curves.layout.yaxis2.gridcolor == plots.AXIS_LOOK["y"]["gridcolor"]
    assert curves.layout.yaxis2.showgrid is False and curves.to_dict()["layout"]["template"] is None


def test_significant_digits_are_the_shortest_decimals():
    v = np.array([0.123456789, 123456.789, 1.5e-7, 0.0, -3.14159265, 12345678901.0, 0.1 + 0.2, np.nan])
    out = plots._significant(v, 7)
    assert out[:7] == [0.1234568, 123456.8, 1.5e-07, 0.0, -3.141593, 12345680000.0, 0.3]
    assert np.isnan(out[7])
    assert max(len(repr(x)) for x in plots._significant(np.random.default_rng(0).random(1000) * 1e5, 7)) <= 9
