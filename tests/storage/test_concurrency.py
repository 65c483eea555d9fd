"""8 processes x 200 trials written at once, with deliberate retries of the same writes, end with
exactly the expected rows, on SQLite and PostgreSQL.

The processes open a fresh database together (so the schema upgrade races too), create the same
study, and share 8 architectures (so architecture upserts collide). Transient failures are real:
on SQLite a thread holds the write lock longer than the workers' busy timeout now and then, so
their writes fail with "database is locked" and are retried; on PostgreSQL a thread terminates
the workers' busy backends now and then (`pg_terminate_backend`), so some transactions die mid-way
or lose their commit response."""
import math
import multiprocessing as mp
import sqlite3
import threading
import time

import psycopg
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from search_space.result import TrialResult
from storage import Store
from storage.engine import normalize_url
from storage.models import architectures, curves, studies, trials

from store_helpers import make_arch

N_PROC, N_TRIALS = 8, 200
OBJ = [("quality", "maximize"), ("peak_memory_mib", "minimize")]


def _result(number: int) -> TrialResult:
    return TrialResult(status="complete", metrics={"quality": number / 1000, "peak_memory_mib": float(number % 17)},
                       curves={"loss": [(0, 3.0), (1, 2.0 - number / 1e4), (2, math.nan)]}, seed=number,
                       device="cpu")


def _worker(url: str, k: int, busy_ms: int, barrier, out):
    try:
        store = Store(url, busy_timeout_ms=busy_ms, retry_attempts=30, connect=False)
        archs = [make_arch(i) for i in range(8)]
        barrier.wait()
        store.create_study("c", "space: {}\n", OBJ)
        for j in range(N_TRIALS):
            n = k * N_TRIALS + j
            arch = archs[(k + j) % 8]
            cons = {"mem": float(n % 17) - 8}
            if j % 4 == 0:
                store.start_trial("c", n, arch, fidelity="low", seed=n, node=f"w{k}")
            store.finish_trial("c", n, _result(n), cons, arch=arch, node=f"w{k}")
            # Deliberate retries, as a client does after losing the response of a committed write:
            if j % 3 == 0:
                store.finish_trial("c", n, _result(n), cons, arch=arch, node=f"w{k}")
            if j % 10 == 0:
                store.start_trial("c", n, arch, fidelity="low", seed=n, node=f"w{k}")  # late: must not reset
                store.add_curve_points("c", n, "loss", [(1, 2.0 - n / 1e4), (2, math.nan)])
        out.put((k, store.retries, None))
    except BaseException as e:  # report, never hang the parent
        out.put((k, -1, f"{type(e).__name__}: {e}"))


def _run_workers(url: str, busy_ms: int) -> list[int]:
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(N_PROC), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, k, busy_ms, barrier, out)) for k in range(N_PROC)]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [r[2] for r in results if r[2]]
    assert not errors, errors
    return [r[1] for r in results]


def _check_rows(url: str):
    eng = create_engine(normalize_url(url))
    with eng.connect() as conn:
        def count(t):
            return conn.execute(select(func.count()).select_from(t)).scalar_one()
        assert count(studies) == 1
        assert count(architectures) == 8
        assert count(trials) == N_PROC * N_TRIALS
        assert count(curves) == N_PROC * N_TRIALS * 3
        st = dict(conn.execute(select(trials.c.status, func.count()).group_by(trials.c.status)).all())
        assert st == {"complete": N_PROC * N_TRIALS}
        nums = sorted(n for (n,) in conn.execute(select(trials.c.number)))
        assert nums == list(range(N_PROC * N_TRIALS))
    eng.dispose()
    store = Store(url)
    df = store.trials_frame("c")
    assert (df["quality"] == df["number"] / 1000).all()
    assert (df["feasible"] == ((df["number"] % 17) <= 8)).all()
    assert store.curves("c", 1599)["loss"][:2] == [(0, 3.0), (1, 2.0 - 1599 / 1e4)]
    assert math.isnan(store.curves("c", 1599)["loss"][2][1])
    front = store.pareto_front("c", OBJ)
    assert front["number"].tolist()[0] == max(n for n in range(1600) if n % 17 <= 8)
    store.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_concurrent_writers_sqlite(sqlite_url):
    path = make_url(sqlite_url).database
    stop, holds = threading.Event(), []

    def locker():
        # Holds the write lock longer than the workers' busy timeout now and then: their writes
        # fail with "database is locked" and must be retried.
        time.sleep(1.0)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        while not stop.is_set() and len(holds) < 6:
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(0.4)
            conn.execute("COMMIT")
            holds.append(1)
            time.sleep(0.6)
        conn.close()

    t = threading.Thread(target=locker, daemon=True)
    t.start()
    try:
        retries = _run_workers(sqlite_url, busy_ms=150)
    finally:
        stop.set()
        t.join(timeout=10)
    _check_rows(sqlite_url)
    assert holds and sum(retries) > 0, "no write was retried: the test did not exercise the retry path"
    print(f"sqlite: {len(holds)} lock holds, {sum(retries)} retries")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_concurrent_writers_postgres(postgres_url):
    url = make_url(postgres_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    stop, killed = threading.Event(), []

    def killer():
        with psycopg.connect(conninfo, autocommit=True) as conn:
            time.sleep(0.5)
            while not stop.is_set() and len(killed) < 15:
                # one busy backend at a time: enough to hit every kind of statement, not a storm
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM (SELECT pid FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid() AND application_name = 'hybrid-nas' "
                    "AND state IN ('active', 'idle in transaction') ORDER BY random() LIMIT 1) AS victim",
                    (url.database,)).fetchall()
                killed.extend(r[0] for r in rows if r[0])
                time.sleep(0.3)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        retries = _run_workers(postgres_url, busy_ms=30_000)
    finally:
        stop.set()
        t.join(timeout=10)
    _check_rows(postgres_url)
    assert killed, "no backend was terminated: the test did not exercise the retry path"
    assert sum(retries) > 0
    print(f"postgres: {len(killed)} backends terminated, {sum(retries)} retries")
