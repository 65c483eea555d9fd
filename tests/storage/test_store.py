"""Store behaviour on SQLite and PostgreSQL: studies, idempotent upserts, non-finite values,
frames, curves, YAML, change counter, pickling."""
import math
import pickle

import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select

from search_space import Architecture
from search_space.metrics import METRICS
from search_space.result import TrialResult
from storage import Store, StoreError
from storage.engine import normalize_url
from storage.models import architectures, curves, studies, trials

from store_helpers import make_arch, result

OBJ = [("quality", "maximize"), ("peak_memory_mib", "minimize")]


def rows(url, table) -> int:
    eng = create_engine(normalize_url(url))
    with eng.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    eng.dispose()
    return n


def test_studies(store):
    s = store.create_study("a", "space: x\n", OBJ, constraints=["peak_memory_mib"], attrs={"optuna": "a"})
    assert (s.name, s.status, s.objectives, s.constraints, s.attrs) == \
        ("a", "running", OBJ, ["peak_memory_mib"], {"optuna": "a"})
    assert s.created_at.tzinfo is not None
    # identical create again: a no-op (a retried create is safe)
    assert store.create_study("a", "space: x\n", OBJ, constraints=["peak_memory_mib"]).created_at == s.created_at
    with pytest.raises(StoreError, match="exists with objectives"):
        store.create_study("a", "space: x\n", [("quality", "minimize"), ("peak_memory_mib", "minimize")])
    with pytest.raises(StoreError, match="different config"):
        store.create_study("a", "space: y\n", OBJ)
    store.set_study_status("a", "paused")
    r = store.create_study("a", "space: y\n", OBJ, resume=True)
    assert (r.config_yaml, r.status, r.constraints) == ("space: y\n", "running", [])
    store.create_study("b", "", [("val_bpb", "minimize")], status="created")
    summaries = {x.name: x for x in store.list_studies()}
    assert set(summaries) == {"a", "b"} and summaries["b"].status == "created"
    assert summaries["a"].n_trials == {"running": 0, "complete": 0, "failed": 0, "pruned": 0}
    with pytest.raises(StoreError, match="not one of"):
        store.set_study_status("a", "bogus")
    with pytest.raises(StoreError, match="no study named 'zz'"):
        store.get_study("zz")
    with pytest.raises(StoreError, match="no study named 'zz'"):
        store.trials_frame("zz")
    with pytest.raises(StoreError, match="direction"):
        store.create_study("c", "", [("quality", "up")])
    store.delete_study("b")
    assert [x.name for x in store.list_studies()] == ["a"]


def test_trial_upserts_are_idempotent(db_url):
    store = Store(db_url)
    store.create_study("s", "", OBJ)
    arch = make_arch(1)
    rev0 = store.last_modified("s")
    res = TrialResult(status="complete", metrics={"quality": 0.8, "peak_memory_mib": 12.0},
                      task_scores={"mqar": 0.9, "selective_copying": 0.7},
                      curves={"train_loss": [(0, 5.0), (10, 3.0), (20, 2.5)]}, measured={"decode_tokens_per_s": 900.0},
                      fidelity="low", seed=3, device="cpu (2 cores)", backend={"blocks[0]": "torch"},
                      wall_time_s=12.5, extra={"shared_device_trials": 4})
    for _ in range(3):  # retries of every write: same rows
        store.start_trial("s", 7, arch, fidelity="low", seed=3, node="n1", device="cpu", params={"x": 1})
        store.finish_trial("s", 7, res, constraints={"peak_memory_mib": -4.0})
        store.add_curve_points("s", 7, "train_loss", [(20, 2.5), (30, 2.0)])
        store.upsert_architecture(arch)
    assert rows(db_url, trials) == 1 and rows(db_url, architectures) == 1 and rows(db_url, curves) == 4
    assert store.last_modified("s") > rev0
    t = store.trial("s", 7)
    assert (t["status"], t["node"], t["params"], t["seed"], t["fidelity"], t["feasible"]) == \
        ("complete", "n1", {"x": 1}, 3, "low", True)
    assert t["metrics"]["quality"] == 0.8 and t["metrics"]["decode_tokens_per_s"] == 900.0
    assert t["metrics"]["params_total"] == arch.costs().params_total  # analytic filled from the architecture
    assert t["extra"] == {"shared_device_trials": 4} and t["backend"] == {"blocks[0]": "torch"}
    assert t["task_scores"] == {"mqar": 0.9, "selective_copying": 0.7}
    assert Architecture.from_yaml(store.trial_yaml("s", 7)).fingerprint() == arch.fingerprint()
    assert store.curves("s", 7) == {"train_loss": [(0, 5.0), (10, 3.0), (20, 2.5), (30, 2.0)]}

    # a late duplicate start must not wipe a complete result; a failed trial may restart
    store.start_trial("s", 7, arch)
    assert store.trial("s", 7)["status"] == "complete"
    store.record_trial_failure("s", 8, "CUDA out of memory")  # never started: the row is created
    store.record_trial_failure("s", 8, "CUDA out of memory")
    assert store.trial("s", 8)["error"] == "CUDA out of memory"
    store.start_trial("s", 8, arch)
    assert store.trial("s", 8)["status"] == "running" and store.trial("s", 8)["error"] is None
    store.finish_trial("s", 8, result("pruned", quality=0.1))
    assert store.count_trials("s") == 2 and store.count_trials("s", "pruned") == 1
    assert store.count_trials("s", ["complete", "pruned"]) == 2
    with pytest.raises(StoreError, match="no trial 99"):
        store.add_curve_points("s", 99, "x", [(0, 1.0)])
    with pytest.raises(StoreError, match="no trial 99"):
        store.trial_yaml("s", 99)
    store.close()


def test_non_finite_values_round_trip(store):
    store.create_study("s", "", OBJ)
    inf, nan = math.inf, math.nan
    res = TrialResult(status="complete", metrics={"quality": -inf, "peak_memory_mib": inf, "val_bpb": nan},
                      task_scores={"mqar": nan}, curves={"loss": [(0, 1.0), (1, nan), (2, inf), (3, -inf)]})
    store.finish_trial("s", 0, res, constraints={"c": nan})
    t = store.trial("s", 0)
    assert t["metrics"]["quality"] == -inf and t["metrics"]["peak_memory_mib"] == inf
    assert math.isnan(t["metrics"]["val_bpb"]) and math.isnan(t["task_scores"]["mqar"])
    assert math.isnan(t["constraints"]["c"]) and t["feasible"] is False  # NaN constraint: infeasible
    pts = store.curves("s", 0)["loss"]
    assert pts[0] == (0, 1.0) and math.isnan(pts[1][1]) and pts[2:] == [(2, inf), (3, -inf)]
    df = store.trials_frame("s")
    assert df.loc[0, "quality"] == -inf and df.loc[0, "peak_memory_mib"] == inf
    assert math.isnan(df.loc[0, "val_bpb"]) and math.isnan(df.loc[0, "task:mqar"])


def test_trials_frame_columns(store):
    store.create_study("s", "", OBJ)
    store.start_trial("s", 2, make_arch(2), fidelity="mid", seed=1, node="n", device="cpu")
    store.finish_trial("s", 0, TrialResult(status="complete", metrics={"quality": 0.5, "custom": 1.0},
                                           task_scores={"mqar": 0.5}), arch=make_arch(0))
    store.finish_trial("s", 1, result("failed", quality=math.nan), constraints={"m": 1.0})
    df = store.trials_frame("s")
    assert list(df["number"]) == [0, 1, 2] and list(df["status"]) == ["complete", "failed", "running"]
    for col in ["number", "status", "fingerprint", "pattern", "fidelity", "seed", "device", "backend", "node",
                "feasible", "error", "started_at", "finished_at", *METRICS, "custom", "task:mqar"]:
        assert col in df.columns, col
    assert df.loc[2, "params_total"] == make_arch(2).costs().params_total  # running: costs from the architecture
    assert df.loc[0, "fingerprint"] == make_arch(0).fingerprint() and pd.isna(df.loc[1, "fingerprint"])
    assert pd.isna(df.loc[0, "feasible"]) and not df.loc[1, "feasible"]  # no constraints / violated
    assert str(df["finished_at"].dtype).startswith("datetime64") and df.loc[0, "finished_at"].tzinfo is not None
    assert len(store.trials_frame("s", status="running")) == 1
    empty = store.create_study("e", "", OBJ) and store.trials_frame("e")
    assert len(empty) == 0 and "quality" in empty.columns


def test_incremental_trials_read_only_what_changed(store):
    from storage import IncrementalTrials
    store.create_study("inc", "", OBJ)
    for n in range(3):
        store.finish_trial("inc", n, result(quality=0.1 * n), arch=make_arch(n))
    inc = IncrementalTrials(store, "inc")
    first = inc.refresh()
    assert inc.rows_read == 3 and list(first["number"]) == [0, 1, 2]
    assert inc.refresh() is first and inc.rows_read == 0  # nothing new: no rows read
    store.start_trial("inc", 3, make_arch(3))
    store.finish_trial("inc", 1, TrialResult(status="complete", metrics={"quality": 0.9, "extra_metric": 2.0},
                                             task_scores={"mqar": 1.0}))
    store.add_curve_points("inc", 0, "loss", [(1, 2.0)])  # curves do not touch the frame's rows
    df = inc.refresh()
    assert inc.rows_read == 2  # trial 1 rewritten, trial 3 new
    full = store.trials_frame("inc")
    assert list(df.columns) == list(full.columns)
    pd.testing.assert_frame_equal(df.reset_index(drop=True), full.reset_index(drop=True), check_dtype=False)
    assert df.loc[df["number"] == 1, "quality"].item() == 0.9
    # revisions only grow, and a reader that has seen revision r misses nothing written after it
    store.record_trial_failure("inc", 3, "boom")
    assert inc.refresh().set_index("number").loc[3, "status"] == "failed" and inc.rows_read == 1


def test_store_pickles_by_url_only(db_url):
    s = Store(db_url)
    s.create_study("s", "", OBJ)
    s.trials_frame("s")  # engine exists now
    blob = pickle.dumps(s)
    assert b"Engine" not in blob and len(blob) < 600
    t = pickle.loads(blob)
    t.finish_trial("s", 0, result(quality=0.1))
    assert s.count_trials("s") == 1
    t.close(), s.close()


def test_password_hidden_in_repr_and_errors():
    s = Store("postgresql://hnas:s3cret@127.0.0.1:1/x", connect=False)
    assert "s3cret" not in repr(s)
    with pytest.raises(StoreError) as e:
        s.list_studies()
    assert "s3cret" not in str(e.value) and "\n" not in str(e.value)
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("some/file.db").database == "some/file.db"


@pytest.mark.parametrize("url,match", [
    ("mysql://u:pw@h/db", "unsupported storage URL scheme 'mysql'"),
    ("postgresql+psycopg2://u@h/db", "unsupported PostgreSQL driver"),
    ("postgresql://u@h", "names no database"),
    ("sqlite://", "names no file"),
    (":memory:", "in-memory"),
    ("http://[::1", "bad storage URL|unsupported"),
])
def test_bad_urls(url, match):
    with pytest.raises(StoreError, match=match) as e:
        Store(url)
    assert "pw@" not in str(e.value)


def test_not_a_database_and_missing_file(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("these are not the tables you are looking for\n" * 20)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(str(bad))
    with pytest.raises(StoreError, match="no database file"):
        Store(str(tmp_path / "missing.db"), create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreError, match="unable to open"):
        Store(f"sqlite:///{tmp_path}/no/such/dir/x.db")


def test_finish_trials_batch(db_url):
    store = Store(db_url)
    store.create_study("s", "", OBJ)
    store.start_trial("s", 1, make_arch(1), node="n1")  # architecture known from the start only
    items = [(n, TrialResult(status="complete", metrics={"quality": n / 10}, curves={"loss": [(0, 1.0), (1, n)]}),
              {"c": n - 2.0}, make_arch(n % 3) if n != 1 else None) for n in range(6)]
    for _ in range(2):  # a retried batch: same rows
        assert store.finish_trials("s", items, chunk=4) == 6
    assert rows(db_url, trials) == 6 and rows(db_url, curves) == 12 and rows(db_url, architectures) == 3
    df = store.trials_frame("s")
    assert df["quality"].tolist() == [n / 10 for n in range(6)]
    assert df["feasible"].tolist() == [True, True, True, False, False, False]
    assert df.loc[1, "node"] == "n1" and df.loc[1, "fingerprint"] == make_arch(1).fingerprint()
    assert store.trial("s", 1)["metrics"]["params_total"] == make_arch(1).costs().params_total
    assert store.curves("s", 5) == {"loss": [(0, 1.0), (1, 5.0)]}
    store.close()


def test_study_deleted_and_recreated_by_another_process(db_url):
    a, b = Store(db_url), Store(db_url)
    a.create_study("s", "", OBJ)
    a.finish_trial("s", 0, result(quality=0.1))  # `a` caches the study's id
    b.delete_study("s")
    with pytest.raises(StoreError, match="no study named 's'"):
        a.finish_trial("s", 1, result(quality=0.2))
    b.create_study("s", "", OBJ)
    a.finish_trial("s", 2, result(quality=0.3))  # lands in the new study
    assert b.trials_frame("s")["number"].tolist() == [2]
    a.close(), b.close()


def test_finish_without_fidelity_or_device_keeps_what_start_recorded(store):
    store.create_study("keep", "", OBJ)
    store.start_trial("keep", 0, make_arch(0), fidelity="quick", seed=3, device="cuda (H200)")
    store.finish_trial("keep", 0, TrialResult(status="complete", metrics={"quality": 0.5}))
    t = store.trial("keep", 0)
    assert (t["fidelity"], t["device"]) == ("quick", "cuda (H200)")
    store.finish_trial("keep", 1, TrialResult(status="failed", error="x"))  # no start: defaults
    assert store.trial("keep", 1)["fidelity"] == ""
