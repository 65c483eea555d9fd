"""Resume after the driver is SIGKILLed mid-search: no duplicates, no gaps, nothing finished re-run.

The driver runs as a real subprocess (`python -m orchestrator.cli search ...`) joining the
session's Ray instance, as a driver on a cluster would; killing it makes Ray stop its trials."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from orchestrator.cli import main
from storage import Store, StoreError

from orch_helpers import study_config, write_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _complete(url: str, study: str) -> int:
    try:
        return Store(url).count_trials(study, "complete")
    except StoreError:
        return 0


def test_resume_after_driver_killed(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    trials = 6
    cfg = write_config(tmp_path, study_config(tmp_path, url, trials=trials, concurrency=1, sampler="tpe",
                                              study="killed"))
    address = ray_local.get_runtime_context().gcs_address
    env = dict(os.environ, RAY_ADDRESS=address)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "search", str(cfg), "--no-live"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.time() + 400
        while _complete(url, "killed") < 2:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.time() < deadline, "the driver did not finish 2 trials in time"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = Store(url)
    before = store.trials_frame("killed").set_index("number")
    done_before = before[before["status"] == "complete"]
    assert 2 <= len(done_before) < trials
    time.sleep(3)  # Ray notices the dead driver and stops its trial
    open_before = [t.number for t in optuna.load_study(study_name="killed", storage=url).get_trials(deepcopy=False)
                   if t.state == TrialState.RUNNING]

    r = CliRunner().invoke(main, ["search", str(cfg), "--resume", "--no-live"], env={"RAY_ADDRESS": address})
    assert r.exit_code == 0, r.output

    after = store.trials_frame("killed").set_index("number")
    assert sorted(after.index) == list(range(trials)), "gaps or extra trials in the store"
    assert set(after["status"]) <= {"complete", "failed", "pruned"}
    # finished trials were not run again
    for n, row in done_before.iterrows():
        assert after.loc[n, "finished_at"] == row["finished_at"]
        assert after.loc[n, "fingerprint"] == row["fingerprint"]
    ot = optuna.load_study(study_name="killed", storage=url).get_trials(deepcopy=False)
    assert sorted(t.number for t in ot) == list(range(trials)), "gaps or duplicates in the Optuna study"
    state = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}
    for t in ot:
        assert t.state == state[after.loc[t.number, "status"]]
    assert store.get_study("killed").status == "complete"
    # a trial the killed driver left open either had its stored result told to Optuna, or was
    # re-run under its own number (marked in Optuna)
    for n in open_before:
        t = next(t for t in ot if t.number == n)
        assert t.system_attrs.get("hn:rerun") or n in done_before.index


@pytest.mark.parametrize("sampler", ["random", "tpe", "evolution"])
def test_searcher_reruns_an_orphan_under_its_own_number(tmp_path, small_space, sampler):
    """A trial a killed driver left RUNNING in the Optuna study is re-run by the next driver's
    searcher under its own number. The searcher's study reads through Optuna's cached storage,
    which knows only the trials it has read: with a sampler that reads no trials before sampling
    (random), the re-run once failed with KeyError inside `set_trial_param`."""
    from orchestrator.config import load_config_data
    from orchestrator.search import RERUN_ATTR, make_searcher, optuna_storage
    url = f"sqlite:///{tmp_path / 'o.db'}"
    cfg = load_config_data(study_config(tmp_path, url, sampler=sampler, trials=4))
    # the killed driver: one trial finished, one created and never told; killed before the
    # orphan drew its architecture (the re-run then draws it: writes through the cached storage)
    first = optuna.create_study(study_name=cfg.study, storage=optuna_storage(url), directions=cfg.directions)
    done = first.ask()
    small_space.sample(done)
    first.tell(done, [0.5, 1e5])
    orphan = first.ask()
    # the next driver: a fresh searcher (its own storage and cache) re-runs the orphan first
    searcher = make_searcher(cfg, small_space, url, orphans=[orphan.number])
    searcher.set_search_properties(None, None, {})
    config = searcher.suggest("tune-trial-1")
    assert config is not None
    ot = searcher._ot_trials["tune-trial-1"]
    assert ot.number == orphan.number
    stored = optuna.load_study(study_name=cfg.study, storage=url).trials[orphan.number]
    assert stored.system_attrs.get(RERUN_ATTR) is True
    assert stored.params and stored.params == ot.params  # drawn by the re-run, in the study
