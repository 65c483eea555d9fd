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
