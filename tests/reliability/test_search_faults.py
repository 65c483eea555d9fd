"""Faults 1 and 2, in real searches (real Ray Tune + Optuna, real stores, tiny-fidelity trials):

1. Ray workers killed mid-trial, repeatedly: while the search runs, a killer thread SIGKILLs the
   worker process (`ray::ImplicitFunc`, a child of *our* raylet; other sessions' Ray processes are
   never touched) of a trial the store shows as running, several times. Expected: the search
   completes; every trial number is stored exactly once and none is left running; a killed trial
   was retried (Tune's FailureConfig) or is stored failed with the worker as the cause; the Optuna
   study and the store agree trial by trial (states and objective values).
2. The driver killed at random points, then `--resume`: `hybrid-nas search` runs as a separate
   process joined to our Ray instance and is SIGKILLed at random moments (seeded), during set-up
   and in the middle of trials; then `hybrid-nas search CONFIG --resume` runs to the end. Expected:
   the study has exactly its trial count of finished trials in Optuna and in the store, no number
   twice, none missing, none left running, and both agree trial by trial.

The PostgreSQL variants use a storage URL with a password (the shared server's trust auth ignores
it) and check that it appears in none of the driver's output, Tune's files or the stored config.
"""
from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .search_helpers import KILLABLE, REPO, study_config, trial_workers

PASSWORD = "s3cret"
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _with_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return url
    return u.set(password=PASSWORD).render_as_string(hide_password=False)


def check_study_consistent(url: str, study: str, trials: int) -> dict:
    """Optuna and the store agree, and the study has exactly `trials` finished trials."""
    import optuna
    from optuna.trial import TrialState

    from storage import Store
    from .workload import exact_counts

    ot = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    numbers = [t.number for t in ot]
    assert len(numbers) == len(set(numbers))
    finished = {t.number: t for t in ot if t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)}
    left = [(t.number, t.state.name) for t in ot if t.number not in finished]
    assert not left, f"Optuna trials not finished: {left}"
    assert sorted(finished) == list(range(trials)), sorted(finished)
    counts = exact_counts(url, study)
    assert counts["duplicates"] == 0
    assert counts["numbers"] == list(range(trials)), counts["numbers"]
    assert "running" not in counts["by_status"], counts["by_status"]
    with Store(url, create=False) as s:
        frame = s.trials_frame(study).set_index("number")
    state_of = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}
    for n, t in finished.items():
        row = frame.loc[n]
        assert t.state == state_of[row["status"]], (n, t.state, row["status"], row["error"])
        if t.state == TrialState.COMPLETE:
            assert t.values[0] == pytest.approx(float(row["quality"]))
            assert t.values[1] == pytest.approx(float(row["params_total"]))
        else:
            assert isinstance(row["error"], str) and row["error"], (n, row["error"])
    return {"by_status": counts["by_status"], "errors": [e for e in frame["error"] if isinstance(e, str)]}


# ----------------------------------------------------------------------------------- 1. workers
def _killer(url: str, study: str, kills: int, stop: threading.Event, log: list, seed: int = 1):
    """SIGKILL a trial worker while the store shows a trial running, `kills` times."""
    from storage import Store
    rng = random.Random(seed)
    store = None
    while len(log) < kills and not stop.is_set():
        time.sleep(0.5)
        try:  # the store and the study appear only once the search has started
            store = store or Store(url, create=False)
            running = store.count_trials(study, "running")
        except Exception:
            continue
        pids = trial_workers()
        if not running or not pids:
            continue
        time.sleep(rng.uniform(0.0, 1.0))  # somewhere inside the trial, not always at its start
        pids = trial_workers()
        if not pids:
            continue
        pid = rng.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
            log.append(pid)
        except ProcessLookupError:
            pass
        time.sleep(2.0)  # let Tune notice and restart before the next kill
    if store is not None:
        store.close()


def _backends(default: str):
    """One backend per fault in the default run (the suite's time budget); both with
    HNAS_REL_ALL_BACKENDS=1 (benchmarks/reliability.py --searches)."""
    both = os.environ.get("HNAS_REL_ALL_BACKENDS", "") not in ("", "0")
    names = ["sqlite", "postgres"] if both else [default]
    return [pytest.param(n, marks=pytest.mark.postgres) if n == "postgres" else n for n in names]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend", _backends("sqlite"))
def test_workers_killed_mid_trial(ray_session, backend, request, tmp_path, capsys):
    from orchestrator.config import load_config_data
    from orchestrator.search import run_search

    url = _with_password(request.getfixturevalue(f"{backend}_url"))
    trials, kills = int(os.environ.get("HNAS_REL_TRIALS", 6)), int(os.environ.get("HNAS_REL_KILLS", 3))
    cfg = load_config_data(study_config(url, "killw", trials=trials, concurrency=2, fidelity=KILLABLE))
    stop, log = threading.Event(), []
    t = threading.Thread(target=_killer, args=(url, "killw", kills, stop, log), daemon=True)
    t.start()
    try:
        out = run_search(cfg, live=False)
    finally:
        stop.set()
        t.join(30)
    assert len(log) >= 2, f"only {len(log)} workers were killed: the test injected too little"
    res = check_study_consistent(url, "killw", trials)
    assert out.complete + out.failed + out.pruned == trials
    assert res["by_status"].get("complete", 0) >= 1
    for e in res["errors"]:
        assert "worker" in e.lower() or "died" in e.lower() or "actor" in e.lower(), e
    printed = capsys.readouterr()
    assert PASSWORD not in printed.out + printed.err
    print(f"\n{backend}: {len(log)} workers killed; stored {res['by_status']}; failures: {res['errors']}")


# ----------------------------------------------------------------------------------- 2. driver
def _driver(cfg_path: Path, address: str, resume: bool, env: dict, cwd: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "orchestrator.cli", "search", str(cfg_path), "--no-live", "--address", address]
    if resume:
        args.append("--resume")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _exists(url: str, study: str) -> bool:
    from storage import Store
    try:
        with Store(url, create=False) as s:
            s.get_study(study)
        return True
    except Exception:
        return False


def _finished(url: str, study: str) -> int:
    from storage import Store
    try:
        with Store(url, create=False) as s:
            return s.count_trials(study, ["complete", "failed", "pruned"])
    except Exception:
        return 0


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend", _backends("postgres"))
def test_driver_killed_then_resumed(ray_session, backend, request, tmp_path):
    import ray
    url = _with_password(request.getfixturevalue(f"{backend}_url"))
    trials = int(os.environ.get("HNAS_REL_TRIALS", 6))
    cfg_path = tmp_path / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(study_config(url, "killd", trials=trials, concurrency=2, fidelity=KILLABLE)))
    address = ray.get_runtime_context().gcs_address
    results_dir = tmp_path / "ray_results"
    env = dict(os.environ, HYBRID_NAS_RAY_RESULTS=str(results_dir), PYTHONPATH=str(REPO))
    env.pop("RAY_ADDRESS", None)
    rng = random.Random(7 if backend == "sqlite" else 11)
    outputs, kills = [], []
    # kill points: during start-up or set-up (5-25 s in), then after some trials finished
    plans = [("time", rng.uniform(5.0, 25.0))]
    step = max(1, (trials - 1) // max(1, int(os.environ.get("HNAS_REL_KILLS", 3)) - 1))
    plans += [("finished", min(trials - 1, rng.randint(k, k + step - 1))) for k in range(1, trials - 1, step)]
    for i, (kind, at) in enumerate(plans):
        # as a user would: --resume once the study exists (a driver killed before creating it
        # left nothing to resume, and `--resume` of a missing study is an error, exit 2)
        p = _driver(cfg_path, address, resume=_exists(url, "killd"), env=env, cwd=tmp_path)
        t0 = time.time()
        while p.poll() is None and time.time() - t0 < 400:
            if kind == "time" and time.time() - t0 >= at:
                break
            if kind == "finished" and _finished(url, "killd") >= at:
                time.sleep(rng.uniform(0.0, 1.5))  # land anywhere in the next trials
                break
            time.sleep(0.2)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills.append((kind, at, _finished(url, "killd")))
        out, _ = p.communicate(timeout=60)
        outputs.append(out)
        if p.returncode == 0:  # it finished before the kill point: nothing left to interrupt
            break
    assert kills, "the driver was never killed: the test injected nothing"
    final = _driver(cfg_path, address, resume=_exists(url, "killd"), env=env, cwd=tmp_path)
    out, _ = final.communicate(timeout=600)
    outputs.append(out)
    assert final.returncode == 0, out[-4000:]
    res = check_study_consistent(url, "killd", trials)
    for o in outputs:
        assert "Traceback" not in o or "KeyboardInterrupt" in o, o[-3000:]
        assert PASSWORD not in o
    # nothing Tune writes, its pickled experiment state (tuner.pkl, searcher-state-*.pkl) included
    leaked = [str(f) for f in results_dir.rglob("*") if f.is_file() and PASSWORD.encode() in f.read_bytes()]
    assert not leaked, f"the database password is in Tune's files: {leaked[:5]}"
    from storage import Store
    with Store(url, create=False) as s:
        assert PASSWORD not in s.get_study("killd").config_yaml
    print(f"\n{backend}: driver killed {len(kills)} times at {kills}; final {res['by_status']}")


@pytest.mark.postgres
def test_tune_searcher_state_has_no_password(postgres_url, tmp_path):
    """What Tune saves of our searcher (it does so every few seconds during a search) must not
    carry the database password. No Ray needed: the searcher is saved the way Tune saves it."""
    from orchestrator.config import load_config_data
    from orchestrator.search import make_searcher
    from storage import Store

    url = _with_password(postgres_url)
    cfg = load_config_data(study_config(url, "pw"))
    Store(url).close()
    searcher = make_searcher(cfg, cfg.load_space(), url)
    searcher.set_search_properties(None, None, {})
    path = tmp_path / "searcher-state.pkl"
    searcher.save(str(path))
    assert PASSWORD.encode() not in path.read_bytes()
    # tuner.pkl holds the searcher itself, pickled by Ray's cloudpickle
    from ray import cloudpickle
    assert PASSWORD.encode() not in cloudpickle.dumps(searcher)
    # in this process the saved state still reaches the database (Tune's own restore path)
    import pickle
    state = pickle.loads(path.read_bytes())
    assert any(s.study_name == "pw" for s in state["_storage"].get_all_studies())
