"""The machinery the fault and load tests and `benchmarks/reliability.py` share.

- `PrivatePostgres`: a PostgreSQL server of our own (initdb into a temporary directory, run as the
  `postgres` user because initdb refuses root, on a free loopback port, fsync off). Restarting it
  is a real fault for every client connected to it; the shared server on 127.0.0.1:5432 is never
  touched, since other areas' tests use it.
- `writer_main`: a writer process. It records trials through the public `Store` API exactly as a
  Ray worker does (start_trial with the architecture, curve points, finish_trial), numbered
  `writer * per_writer + i`, and reports how many transient errors its Store retried. Started as
  `python -m tests.reliability.workload write URL STUDY WRITER N`.
- `reader_loop`: the dashboard's reads (`dashboard.queries` without Streamlit's cache: the
  revision probe, the studies list, the trials frame, the Pareto front), timed one by one.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OBJECTIVES = [("quality", "maximize"), ("params_total", "minimize")]


# ----------------------------------------------------------------------------- a private server
def _pg_bin() -> Path | None:
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if cands:
        return cands[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self, root: str | None = None):
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.root = Path(root or tempfile.mkdtemp(prefix="hnas-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.restarts = 0

    def _as_postgres(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> "PrivatePostgres":
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not self.data.exists():
            self._as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                              "-E", "UTF8")
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, mode: str | None = None):
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=on -c max_connections=200 -c full_page_writes=off")
        args = [self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60"]
        if mode:
            args += ["-m", mode]
        if action in ("start", "restart"):
            args += ["-o", opts]
        self._as_postgres(*args, action)

    def restart(self, mode: str = "fast") -> float:
        """Restart the server (`fast`: clients are disconnected, open transactions rolled back;
        `immediate`: the server is killed and recovers from its WAL). Returns seconds down."""
        t0 = time.perf_counter()
        self._pg_ctl("restart", mode)
        self.restarts += 1
        return time.perf_counter() - t0

    def outage(self, seconds: float, mode: str = "fast") -> float:
        """Stop the server, keep it down `seconds`, start it again (a restart that lasts long
        enough for a busy client to meet it for sure). Returns seconds down."""
        t0 = time.perf_counter()
        self._pg_ctl("stop", mode)
        time.sleep(seconds)
        self._pg_ctl("start")
        self.restarts += 1
        return time.perf_counter() - t0

    def stop(self):
        try:
            self._pg_ctl("stop", "immediate")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------------- writers
def architectures(n: int = 8):
    """A few distinct real architectures (the examples), reused round-robin by the writers."""
    from search_space import Architecture
    files = sorted((REPO / "examples" / "architectures").glob("*.yaml"))
    return [Architecture.from_yaml(f) for f in files][:n]


def write_trials(url: str, study: str, writer: int, n: int, curve_points: int = 4, pause_s: float = 0.0) -> dict:
    from search_space.result import TrialResult
    from storage import Store

    archs = architectures()
    store = Store(url)
    store.create_study(study, "", OBJECTIVES)
    t0 = time.perf_counter()
    worst = 0.0
    for i in range(n):
        number = writer * n + i
        arch = archs[number % len(archs)]
        w0 = time.perf_counter()
        store.start_trial(study, number, arch, fidelity="smoke", seed=writer, node=f"w{writer}", device="cpu")
        q = (number % 97) / 97
        res = TrialResult(status="complete", metrics={"quality": q}, task_scores={"mqar": q},
                          curves={"train_loss": [(s, 5.0 - s * 0.1 - q) for s in range(curve_points)]},
                          fidelity="smoke", seed=writer, device="cpu", wall_time_s=0.01)
        store.finish_trial(study, number, res)
        worst = max(worst, time.perf_counter() - w0)
        if pause_s:
            time.sleep(pause_s)
    out = {"writer": writer, "trials": n, "retries": store.retries, "seconds": time.perf_counter() - t0,
           "worst_trial_s": worst}
    store.close()
    return out


def spawn_writer(url: str, study: str, writer: int, n: int, pause_s: float = 0.0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.workload", "write", url, study, str(writer),
                             str(n), str(pause_s)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def collect(procs: list[subprocess.Popen], timeout: float = 600) -> list[dict]:
    out = []
    deadline = time.time() + timeout
    for p in procs:
        so, se = p.communicate(timeout=max(1, deadline - time.time()))
        if p.returncode != 0:
            raise AssertionError(f"writer exited {p.returncode}: {se[-3000:]}")
        out.append(json.loads(so.strip().splitlines()[-1]))
    return out


# ----------------------------------------------------------------------------- readers
def reader_loop(url: str, study: str, stop, latencies: dict, errors: list, interval_s: float = 0.0,
                final: dict | None = None, full_every: int = 10):
    """What the dashboard asks while a search runs, timed per query (milliseconds).

    `trials_frame` is the dashboard's own path: an `IncrementalTrials` refresh (only the trials
    written since the last read). Every `full_every` rounds the full re-read the dashboard did
    before is timed too (`trials_frame_full`), for comparison. At the end the incremental frame
    is put in `final["frame"]` so the caller can check it equals a full read."""
    from storage import IncrementalTrials, Store
    store = Store(url, create=False)
    inc = IncrementalTrials(store, study)
    rounds = 0
    while not stop.is_set():
        queries = [("revision", lambda: store.last_modified(study)),
                   ("studies", store.list_studies),
                   ("trials_frame", inc.refresh),
                   ("pareto", lambda: store.pareto_front(study, OBJECTIVES))]
        if full_every and rounds % full_every == 0:
            queries.append(("trials_frame_full", lambda: store.trials_frame(study)))
        for name, fn in queries:
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - counted, not fatal: the page retries
                errors.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
            else:
                latencies.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
            if stop.is_set():
                break
        rounds += 1
        if interval_s:
            time.sleep(interval_s)
    if final is not None:
        final["frame"] = inc.refresh()
    store.close()


def percentiles(xs: list[float]) -> dict:
    import numpy as np
    if not xs:
        return {"n": 0}
    a = np.asarray(xs)
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def exact_counts(url: str, study: str) -> dict:
    """Rows as the database holds them (not through Store): trials by status, duplicates, curve points."""
    from sqlalchemy import create_engine, text
    e = create_engine(url)
    try:
        with e.connect() as c:
            sid = c.execute(text("SELECT id FROM hnas_studies WHERE name = :n"), {"n": study}).scalar_one()
            by_status = dict(c.execute(text("SELECT status, count(*) FROM hnas_trials WHERE study_id = :s "
                                            "GROUP BY status"), {"s": sid}).all())
            dup = c.execute(text("SELECT count(*) FROM (SELECT number FROM hnas_trials WHERE study_id = :s "
                                 "GROUP BY number HAVING count(*) > 1) d"), {"s": sid}).scalar_one()
            numbers = [r[0] for r in c.execute(text("SELECT number FROM hnas_trials WHERE study_id = :s"),
                                               {"s": sid})]
            points = c.execute(text("SELECT count(*) FROM hnas_curves cv JOIN hnas_trials t ON cv.trial_id = t.id "
                                    "WHERE t.study_id = :s"), {"s": sid}).scalar_one()
            studies = c.execute(text("SELECT count(*) FROM hnas_studies WHERE name = :n"), {"n": study}).scalar_one()
    finally:
        e.dispose()
    return {"by_status": {k: int(v) for k, v in by_status.items()}, "duplicates": int(dup), "numbers": sorted(numbers),
            "curve_points": int(points), "study_rows": int(studies)}


if __name__ == "__main__":  # python -m tests.reliability.workload write URL STUDY WRITER N [PAUSE]
    if sys.argv[1] == "write":
        url, study, w, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
        print(json.dumps(write_trials(url, study, w, n, pause_s=pause)), flush=True)
