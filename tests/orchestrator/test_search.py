"""Searches on a real local Ray instance, real SQLite files, real evaluations (tiny fidelity)."""
from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.config import load_config_data
from orchestrator.search import run_search
from storage import Store

from orch_helpers import TINY, study_config


pytestmark = pytest.mark.ray


def _optuna_trials(url: str, study: str):
    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


@pytest.fixture(scope="module")
def finished_search(ray_local, tmp_path_factory):
    """One completed search shared by the tests that only read its results."""
    tmp = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{tmp / 'store.db'}"
    cfg = load_config_data(study_config(tmp, url, trials=4, sampler="tpe", study="done"))
    out = run_search(cfg, live=False)
    return cfg, url, out


def test_search_stores_every_trial_in_store_and_optuna(finished_search):
    cfg, url, out = finished_search
    store = Store(url, create=False)
    frame = store.trials_frame("done")
    assert sorted(frame["number"]) == [0, 1, 2, 3]
    assert set(frame["status"]) == {"complete"}
    assert out.complete == 4 and out.failed == 0
    ot = {t.number: t for t in _optuna_trials(url, "done")}
    assert sorted(ot) == [0, 1, 2, 3]
    for _, row in frame.iterrows():
        t = ot[int(row["number"])]
        assert t.state == TrialState.COMPLETE
        assert t.values[0] == pytest.approx(row["quality"])
        assert t.values[1] == pytest.approx(row["params_total"])
        # constraints reached Optuna through Trial.set_constraint: the config's and the space's
        assert "cache_mib_8k<=16" in t.constraints
        assert {"max_params", "max_cache_mib"} <= set(t.constraints)
        assert (all(v <= 0 for v in t.constraints.values())) == bool(row["feasible"])
    # curves written by the worker while training
    curves = store.curves("done", 0)
    assert curves["quality"] and curves["train_loss"]
    assert store.get_study("done").status == "complete"


def test_pareto_front_is_returned(finished_search):
    cfg, url, out = finished_search
    assert out.pareto is not None and len(out.pareto) >= 1
    assert set(out.pareto["number"]) <= {0, 1, 2, 3}


def test_export_pareto_at_scale_validates_and_builds(finished_search, tmp_path):
    import torch
    from click.testing import CliRunner

    from orchestrator.cli import main
    from proxy_models import build_model
    from search_space.genome import Architecture

    cfg, url, out = finished_search
    r = CliRunner().invoke(main, ["export", "--study", "done", "--storage", url, "--pareto",
                                  "--out", str(tmp_path / "exp"), "--scale", "d_model=192,depth=5"])
    assert r.exit_code == 0, r.output
    files = sorted((tmp_path / "exp").glob("*.yaml"))
    assert len(files) == len(out.pareto)
    v = CliRunner().invoke(main, ["validate", *map(str, files)])
    assert v.exit_code == 0, v.output
    text = files[0].read_text()
    assert text.startswith("# exported by hybrid-nas export")
    assert "# study: done" in text and "fidelity: smoke[" in text and "quality=" in text
    arch = Architecture.from_yaml(files[0])
    assert arch.d_model == 192 and len(arch.blocks) == 5
    model = build_model(arch, vocab_size=256)
    assert sum(p.numel() for p in model.parameters()) == arch.param_count(256)
    with torch.no_grad():
        logits = model(torch.randint(0, 256, (1, 8)))
    assert logits.shape == (1, 8, 256)


def test_top_k_export_masks_password(finished_search, tmp_path):
    from orchestrator.export import export_trials, select_trials
    cfg, url, _ = finished_search
    store = Store(url, create=False)
    nums = select_trials(store, "done", pareto=False, top=2, by="quality")
    frame = store.trials_frame("done", "complete")
    best = frame[frame["feasible"].astype(bool)].sort_values("quality", ascending=False)["number"].head(2)
    assert nums == [int(n) for n in best]
    paths = export_trials(store, "done", nums, tmp_path, {}, "postgresql+psycopg://u:***@h/db")
    assert all("***" in p.read_text() and "secret" not in p.read_text() for p in paths)


TWO_WIDTHS = {"name": "two-widths", "d_model": [64, 8192], "depth": {"min": 2, "max": 2},
              "token_mixers": {"retention": {"heads": [2]}}, "channel_mixers": {"swiglu": {"expand": [2]}}}


def test_failures_are_recorded_and_the_search_goes_on(ray_local, tmp_path):
    """Two enqueued architectures, a narrow one and an 8192-wide one, with a memory limit
    (the evaluator's CPU pre-check) that only the wide one exceeds: it fails with the reason,
    the search goes on and the narrow one completes."""
    from search_space.genome import Architecture
    from search_space.space import SearchSpace

    space = SearchSpace.from_dict(TWO_WIDTHS)
    block = {"mixer": {"type": "retention", "heads": 2}, "channel": {"type": "swiglu", "expand": 2}}
    large = Architecture.from_dict({"d_model": 8192, "blocks": [block, block]})
    small = Architecture.from_dict({"d_model": 64, "blocks": [block, block]})
    assert not space.contains(large) and not space.contains(small)
    (tmp_path / "small.yaml").write_text(small.to_yaml())
    (tmp_path / "large.yaml").write_text(large.to_yaml())
    url = f"sqlite:///{tmp_path / 'store.db'}"
    tiny = {"preset": "smoke", "overrides": {**TINY["overrides"], "max_memory_mib": 4000}}
    raw = study_config(tmp_path, url, trials=3, fidelity=tiny, study="mem", space=TWO_WIDTHS,
                       enqueue=[str(tmp_path / "large.yaml"), str(tmp_path / "small.yaml")])
    out = run_search(load_config_data(raw), live=False)
    store = Store(url, create=False)
    frame = store.trials_frame("mem").set_index("number")
    assert sorted(frame.index) == [0, 1, 2]
    assert frame.loc[0, "fingerprint"] == large.fingerprint()
    assert frame.loc[0, "status"] == "failed" and "memory limit" in frame.loc[0, "error"]
    assert frame.loc[1, "fingerprint"] == small.fingerprint()
    assert frame.loc[1, "status"] == "complete"
    ot = {t.number: t for t in _optuna_trials(url, "mem")}
    assert ot[0].state == TrialState.FAIL and ot[0].values is None
    assert ot[1].state == TrialState.COMPLETE
    assert out.failed >= 1 and out.complete >= 1


def test_diverging_trials_fail_with_nan_reason(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    tiny = {"preset": "smoke", "overrides": {**TINY["overrides"], "lr": 1.0e6}}
    out = run_search(load_config_data(study_config(tmp_path, url, trials=2, fidelity=tiny, study="nan")),
                     live=False)
    frame = Store(url, create=False).trials_frame("nan")
    assert list(frame["status"]) == ["failed", "failed"]
    assert all("nan" in e or "diverged" in e for e in frame["error"])
    assert all(t.state == TrialState.FAIL for t in _optuna_trials(url, "nan"))
    assert out.failed == 2 and (out.pareto is None or len(out.pareto) == 0)


def test_asha_stops_and_promotion_reevaluates(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    longer = {"preset": "smoke", "overrides": {**TINY["overrides"], "report_every": 2}}
    raw = study_config(tmp_path, url, trials=4, concurrency=1, study="asha", fidelity=longer,
                       early_stopping={"grace_period": 1, "reduction_factor": 2},
                       promotion={"fidelity": {"preset": "smoke", "overrides": {**TINY["overrides"], "eval_examples": 24}},
                                  "top_k": 1})
    out = run_search(load_config_data(raw), live=False)
    store = Store(url, create=False)
    frame = store.trials_frame("asha")
    assert sorted(frame["number"]) == [0, 1, 2, 3]
    assert set(frame["status"]) <= {"complete", "pruned"}
    ot = {t.number: t.state for t in _optuna_trials(url, "asha")}
    for _, r in frame.iterrows():
        assert ot[int(r["number"])] == (TrialState.COMPLETE if r["status"] == "complete" else TrialState.PRUNED)
    assert out.promoted_study == "asha.smoke"
    promoted = store.trials_frame("asha.smoke")
    assert len(promoted) == 1 and promoted["status"].iloc[0] == "complete"
    assert promoted["fidelity"].iloc[0] != frame["fidelity"].iloc[0]
    assert store.trial("asha.smoke", int(promoted["number"].iloc[0]))["extra"]["fidelity_overrides"]["eval_examples"] == 24
    best = frame[frame["status"] == "complete"].sort_values("quality", ascending=False)
    best = best[best["feasible"].astype(bool)]
    assert int(promoted["number"].iloc[0]) == int(best["number"].iloc[0])
    assert promoted["fingerprint"].iloc[0] == best["fingerprint"].iloc[0]
    assert not math.isnan(promoted["quality"].iloc[0])
