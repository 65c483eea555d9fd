"""Fault 5 (scaled down), load: several processes write trials to PostgreSQL at once while the
dashboard's queries read. The full size (16 processes x 1,000 trials) runs in
`benchmarks/reliability.py --load`, whose read-latency percentiles are in docs/reliability.md.

Expected: exact row counts at the end (one row per trial number, all complete, every curve
point, one study row), no writer error, and the reader kept answering during the load (every
query kind answered repeatedly, none failed). Latency is recorded, not asserted (timings belong
in benchmarks, not in unit tests on a shared 2-core machine)."""
from __future__ import annotations

import threading
import time

import pytest

from .workload import collect, exact_counts, percentiles, reader_loop, spawn_writer

WRITERS, CURVE_POINTS = 4, 4
PER_WRITER = {"postgres": 100, "sqlite": 50}


def _load(url: str, study: str, per_writer: int):
    from storage import Store
    with Store(url) as s:  # schema and study up front, so the reader has something to read at once
        from .workload import OBJECTIVES
        s.create_study(study, "", OBJECTIVES)
    stop, lat, errors, final = threading.Event(), {}, [], {}
    reader = threading.Thread(target=reader_loop, args=(url, study, stop, lat, errors), kwargs={"final": final},
                              daemon=True)
    reader.start()
    t0 = time.perf_counter()
    procs = [spawn_writer(url, study, w, per_writer) for w in range(WRITERS)]
    try:
        results = collect(procs, timeout=400)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        stop.set()
        reader.join(60)
    wall = time.perf_counter() - t0
    return results, lat, errors, wall, final


@pytest.mark.slow
@pytest.mark.timeout(500)
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def test_concurrent_writers_while_dashboard_reads(backend, request):
    url = request.getfixturevalue(f"{backend}_url")
    results, lat, errors, wall, final = _load(url, "load", PER_WRITER[backend])
    total = WRITERS * PER_WRITER[backend]
    counts = exact_counts(url, "load")
    assert counts["by_status"] == {"complete": total}
    assert counts["duplicates"] == 0
    assert counts["numbers"] == list(range(total))
    assert counts["curve_points"] == total * CURVE_POINTS
    assert counts["study_rows"] == 1
    assert sum(r["trials"] for r in results) == total
    assert not errors, errors[:5]
    # the dashboard's incremental frame, kept current through the whole write storm, is exactly
    # what a full read gives at the end
    from storage import Store
    with Store(url, create=False) as s:
        full = s.trials_frame("load")
    inc = final["frame"]
    assert len(inc) == total and list(inc["number"]) == list(range(total))
    assert (inc["status"] == "complete").all()
    assert inc["quality"].tolist() == full["quality"].tolist()
    for q in ("revision", "studies", "trials_frame", "pareto"):
        assert len(lat.get(q, [])) >= 3, f"the reader barely ran during the load: {({k: len(v) for k, v in lat.items()})}"
    summary = {q: percentiles(v) for q, v in lat.items()}
    print(f"\n{backend}: {total} trials by {WRITERS} writers in {wall:.1f} s; reads: "
          + ", ".join(f"{q} p50 {s['p50_ms']:.0f} ms p95 {s['p95_ms']:.0f} ms (n={s['n']})" for q, s in summary.items()))
