"""Bad study configs fail before any trial: one line on stderr, exit code 2, nothing stored."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config_data

from orch_helpers import TINY, study_config, write_config


def _run(args):
    r = CliRunner().invoke(main, args)
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    return r, lines


def _assert_one_line(r, lines, *needles):
    assert r.exit_code == 2, r.output
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error: ") and "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("over, needles", [
    ({"sampler": "annealing"}, ["sampler.type", "annealing"]),
    ({"objectives": ["quality", "decode_tokens_per_s"]}, ["objectives[1]", "not produced"]),
    ({"objectives": ["qualty"]}, ["objectives[0].metric", "unknown metric"]),
    ({"constraints": ["params_total <= lots"]}, ["constraints[0]"]),
    ({"fidelity": {"preset": "smokey"}}, ["fidelity", "smokey"]),
    ({"fidelity": {"preset": "smoke", "overrides": {"lr": -1}}}, ["fidelity.overrides.lr"]),
    ({"sampler": {"type": "nsga2", "mutation_rate": 3}}, ["sampler.options.mutation_rate"]),
    ({"sampler": {"type": "tpe", "no_repeat": "no"}}, ["sampler.no_repeat", "boolean"]),
    ({"sampler": {"type": "evolution", "no_repeat": False}}, ["sampler.no_repeat", "never proposes"]),
    ({"sampler": {"type": "evolution", "screen": -1}}, ["sampler.options.screen"]),
    ({"trials": 0}, ["trials"]),
    ({"resources": {"gpu": 1.5}}, ["resources.gpu"]),
    ({"space": "no/such/space.yaml"}, ["space", "no such file"]),
])
def test_bad_config_one_line_exit_2_nothing_stored(tmp_path, over, needles):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = write_config(tmp_path, study_config(tmp_path, url, **over))
    r, lines = _run(["search", str(cfg)])
    _assert_one_line(r, lines, *needles)
    assert not (tmp_path / "store.db").exists()


def test_unreachable_storage(tmp_path):
    cfg = write_config(tmp_path, study_config(tmp_path, "postgresql+psycopg://postgres:hunter2@127.0.0.1:9/nope"))
    r, lines = _run(["search", str(cfg)])
    _assert_one_line(r, lines, "127.0.0.1")
    assert "hunter2" not in r.output


@pytest.mark.parametrize("address, needles", [
    ("127.0.0.1:1", ["address", "cannot reach the Ray cluster", "127.0.0.1:1"]),
    ("ray://127.0.0.1:1", ["address", "cannot reach"]),
    ("not-an-address", ["address", "is not 'auto', HOST:PORT"]),
])
def test_unreachable_ray_cluster_fails_at_once_and_writes_nothing(tmp_path, address, needles):
    import time
    url = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = write_config(tmp_path, study_config(tmp_path, url))
    t0 = time.time()
    r, lines = _run(["search", str(cfg), "--address", address])
    _assert_one_line(r, lines, *needles)
    assert time.time() - t0 < 30, "ray.init retries an unreachable cluster for minutes: we must not wait for it"
    assert not (tmp_path / "store.db").exists()


@pytest.mark.ray
def test_resources_the_cluster_cannot_give(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for res, field in (({"cpu": 1, "gpu": 0.25}, "resources.gpu"), ({"cpu": 64}, "resources.cpu")):
        cfg = write_config(tmp_path, study_config(tmp_path, url, resources=res))
        r, lines = _run(["search", str(cfg)])
        _assert_one_line(r, lines, field)
        from storage import Store
        assert Store(url).list_studies() == []


def test_flags_override_the_file(tmp_path):
    raw = study_config(tmp_path, "sqlite:///a.db", trials=3)
    cfg = load_config_data(raw).with_overrides(trials=9, study="other", storage="sqlite:///b.db",
                                               sampler={"type": "nsga2"})
    assert (cfg.trials, cfg.study, cfg.storage, cfg.sampler.type) == (9, "other", "sqlite:///b.db", "nsga2")
    assert cfg.fidelity.overrides == TINY["overrides"]


def test_constraint_forms_and_violation():
    cfg = load_config_data({"space": "x.yaml", "objectives": ["quality"], "trials": 1,
                            "constraints": ["params_total <= 5e6", "decode_tokens_per_s >= 1_000"]})
    le, ge = cfg.constraints
    assert le.violation(4e6) < 0 < le.violation(6e6)
    assert ge.violation(2000) < 0 < ge.violation(10)
    assert le.violation(float("nan")) > 0
    assert cfg.objectives[0].direction == "maximize"
