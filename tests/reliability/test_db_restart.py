"""Fault 4: the PostgreSQL server is restarted while several processes write trials.

Injection: a private PostgreSQL server (tests/reliability/workload.py: initdb in a temp dir, own
port; the shared server is never touched) is restarted three times (`pg_ctl restart -m fast`, then
`-m immediate`, which kills the server and makes it recover from its WAL, then fast again) while
writer processes record trials through `storage.Store` as Ray workers do.

Expected: every writer finishes without an error (its Store retried the transient failures: the
retry count is asserted > 0, so the fault did hit them), and the database holds exactly the trials
written: one row per trial number, all complete, every curve point, no duplicate."""
from __future__ import annotations

import os
import time

import pytest

from .workload import PrivatePostgres, collect, exact_counts, spawn_writer

WRITERS, PER_WRITER, CURVE_POINTS = 3, 60, 4


@pytest.fixture(scope="module")
def private_pg():
    try:
        pg = PrivatePostgres().start()
    except Exception as e:  # no server binaries on this machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot start a private PostgreSQL server: {e}")
    yield pg
    pg.stop()


def _count(url: str, study: str) -> int:
    from sqlalchemy import create_engine, text
    e = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with e.connect() as c:
            return c.execute(text("SELECT count(*) FROM hnas_trials t JOIN hnas_studies s ON s.id = t.study_id "
                                  "WHERE s.name = :n AND t.status = 'complete'"), {"n": study}).scalar_one()
    except Exception:
        return -1
    finally:
        e.dispose()


def _postmaster_start(url: str):
    from sqlalchemy import create_engine, text
    e = create_engine(url)
    try:
        with e.connect() as c:
            return c.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()
    finally:
        e.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(400)
def test_writers_survive_server_restarts(private_pg):
    url, study = private_pg.url, "restart"
    from storage import Store
    Store(url).close()  # schema first, so writers start writing at once
    started = _postmaster_start(url)
    procs = [spawn_writer(url, study, w, PER_WRITER, pause_s=0.02) for w in range(WRITERS)]
    total = WRITERS * PER_WRITER
    down = []
    try:
        for mode, after in (("fast", total // 6), ("immediate", total // 3), ("fast", total // 2)):
            deadline = time.time() + 180
            while _count(url, study) < after and time.time() < deadline:
                assert all(p.poll() in (None, 0) for p in procs), [p.stderr.read() for p in procs if p.poll()]
                time.sleep(0.2)
            n_before = _count(url, study)
            assert n_before < total, "the writers finished before the fault: make them slower"
            down.append(private_pg.restart(mode))
        results = collect(procs, timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert _postmaster_start(url) != started
    counts = exact_counts(url, study)
    assert counts["by_status"] == {"complete": total}, counts["by_status"]
    assert counts["duplicates"] == 0
    assert counts["numbers"] == list(range(total))
    assert counts["curve_points"] == total * CURVE_POINTS
    assert counts["study_rows"] == 1
    retries = sum(r["retries"] for r in results)
    assert retries > 0, f"no writer met the restarts (server down {down} s): the test injected nothing"
    print(f"\nrestarts {private_pg.restarts} (down {[round(d, 2) for d in down]} s), retries {retries}, "
          f"rows {total}, curve points {counts['curve_points']}")
