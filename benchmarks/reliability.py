"""Reliability benchmarks: the larger versions of tests/reliability (issue 9).

    python benchmarks/reliability.py --load            # 16 writer processes x 1,000 trials on PostgreSQL
                                                       # while the dashboard's queries read (latency pcts)
    python benchmarks/reliability.py --restart         # PostgreSQL restarted 6 times under 4 writers x 300
    python benchmarks/reliability.py --fuzz 300        # the bad-input fuzz tests with 300 examples each
    python benchmarks/reliability.py --searches        # worker-kill and driver-kill searches (pytest, -s)
    python benchmarks/reliability.py --all --quick     # everything at a small size (CPU, a few minutes)

Each part writes `benchmarks/results/reliability-<part>-<device>.json` (device = CPU model and core
count; these runs use no GPU). PostgreSQL runs use a private server (initdb in a temp dir, see
tests/reliability/workload.py) unless `--pg-url` names one; the restart benchmark always uses a
private server, since it restarts it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability.workload import (OBJECTIVES, PrivatePostgres, collect, exact_counts,  # noqa: E402
                                        percentiles, reader_loop, spawn_writer)

RESULTS = REPO / "benchmarks" / "results"


def device_name() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:60]


def save(part: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"part": part, "device": device_name(), "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_at_end": os.getloadavg(), **data}
    p = RESULTS / f"reliability-{part}-{_slug(device_name())}.json"
    p.write_text(json.dumps(data, indent=2, default=str))
    print(f"wrote {p}")
    return p


def _pg(url: str | None):
    if url:
        class _Given:
            def __init__(self, u):
                self.url = u

            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False
        return _Given(url)
    return PrivatePostgres()


# ---------------------------------------------------------------------------------------------- load
def bench_load(writers: int, per_writer: int, pg_url: str | None, sqlite: bool = False) -> dict:
    from storage import Store
    with _pg(pg_url) as pg:
        url = f"sqlite:///{Path(os.environ.get('TMPDIR', '/tmp')) / f'hnas-load-{os.getpid()}.db'}" if sqlite else pg.url
        study = f"load-{int(time.time())}"
        with Store(url) as s:
            s.create_study(study, "", OBJECTIVES)
        stop, lat, errors, final = threading.Event(), {}, [], {}
        reader = threading.Thread(target=reader_loop, args=(url, study, stop, lat, errors), kwargs={"final": final},
                                  daemon=True)
        t0 = time.perf_counter()
        procs = [spawn_writer(url, study, w, per_writer) for w in range(writers)]
        reader.start()
        try:
            results = collect(procs, timeout=6 * 3600)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            stop.set()
            reader.join(120)
        wall = time.perf_counter() - t0
        counts = exact_counts(url, study)
        total = writers * per_writer
        ok = (counts["by_status"] == {"complete": total} and counts["duplicates"] == 0
              and counts["numbers"] == list(range(total)) and counts["curve_points"] == total * 4)
        inc = final.get("frame")
        with Store(url, create=False) as s:
            full = s.trials_frame(study)
        # the dashboard's incremental frame, kept through the whole load, equals a full read
        inc_exact = (inc is not None and list(inc["number"]) == list(full["number"])
                     and list(inc["status"]) == list(full["status"]) and inc["quality"].tolist() == full["quality"].tolist())
        return {"backend": "sqlite" if sqlite else "postgresql", "writers": writers, "trials_per_writer": per_writer,
                "expected_trials": total, "stored": counts["by_status"], "duplicates": counts["duplicates"],
                "curve_points": counts["curve_points"], "exact": ok, "incremental_frame_exact": bool(inc_exact),
                "wall_s": wall,
                "trials_per_s": total / wall, "writer_retries": sum(r["retries"] for r in results),
                "worst_trial_write_s": max(r["worst_trial_s"] for r in results),
                "read_latency": {q: percentiles(v) for q, v in lat.items()}, "read_errors": errors[:20],
                "n_read_errors": len(errors)}


# ---------------------------------------------------------------------------------------------- restart
def bench_restart(writers: int, per_writer: int, restarts: int) -> dict:
    from storage import Store
    with PrivatePostgres() as pg:
        url, study = pg.url, "restart"
        Store(url).close()
        procs = [spawn_writer(url, study, w, per_writer, pause_s=0.02) for w in range(writers)]
        total = writers * per_writer
        modes = ["fast", "immediate"] * restarts
        down, at = [], []
        try:
            for i in range(restarts):
                target = total * (i + 1) // (restarts + 2)
                while True:
                    try:
                        n = sum(exact_counts(url, study)["by_status"].values())
                    except Exception:
                        n = 0
                    if n >= target or all(p.poll() is not None for p in procs):
                        break
                    time.sleep(0.2)
                at.append(n)
                down.append(pg.restart(modes[i]))
            results = collect(procs, timeout=3600)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        counts = exact_counts(url, study)
        ok = (counts["by_status"] == {"complete": total} and counts["duplicates"] == 0
              and counts["numbers"] == list(range(total)) and counts["curve_points"] == total * 4)
        inc = final.get("frame")
        with Store(url, create=False) as s:
            full = s.trials_frame(study)
        # the dashboard's incremental frame, kept through the whole load, equals a full read
        inc_exact = (inc is not None and list(inc["number"]) == list(full["number"])
                     and list(inc["status"]) == list(full["status"]) and inc["quality"].tolist() == full["quality"].tolist())
        return {"writers": writers, "trials_per_writer": per_writer, "restarts": restarts,
                "modes": modes[:restarts], "rows_when_restarted": at, "restart_s": down,
                "writer_retries": sum(r["retries"] for r in results),
                "writer_errors": 0, "stored": counts["by_status"], "duplicates": counts["duplicates"],
                "curve_points": counts["curve_points"], "exact": ok}


# ---------------------------------------------------------------------------------------------- pytest-driven parts
def _pytest(args: list[str], env: dict | None = None, timeout: int = 7200) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "-s", *args],
                       cwd=REPO, capture_output=True, text=True, env=dict(os.environ, **(env or {})), timeout=timeout)
    out = p.stdout + p.stderr
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    notes = [ln.strip() for ln in out.splitlines()
             if re.match(r"^\s*(sqlite|postgres)(ql)?: ", ln) or "Hypothesis Statistics" in ln or "% of examples" in ln
             or re.match(r"^\s+- ", ln)]
    return {"returncode": p.returncode, "wall_s": time.perf_counter() - t0, "summary": summary[-1:] or out[-500:],
            "notes": notes[:200]}


def bench_fuzz(examples: int) -> dict:
    res = _pytest(["tests/reliability/test_bad_input.py", "-k", "fuzz", "--hypothesis-show-statistics"],
                  env={"HNAS_FUZZ_EXAMPLES": str(examples)})
    res["examples_per_test"] = examples
    return res


def bench_searches(trials: int, kills: int) -> dict:
    return _pytest(["tests/reliability/test_search_faults.py"],
                   env={"HNAS_REL_TRIALS": str(trials), "HNAS_REL_KILLS": str(kills),
                        "HNAS_REL_ALL_BACKENDS": "1"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--fuzz", type=int, nargs="?", const=300, default=None, metavar="EXAMPLES")
    ap.add_argument("--searches", action="store_true")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes (CPU, minutes)")
    ap.add_argument("--writers", type=int, default=None)
    ap.add_argument("--per-writer", type=int, default=None)
    ap.add_argument("--pg-url", default=None, help="use this PostgreSQL server for --load (default: a private one)")
    ap.add_argument("--sqlite", action="store_true", help="--load against a SQLite file instead")
    a = ap.parse_args(argv)
    if not any([a.load, a.restart, a.fuzz, a.searches, a.all]):
        ap.error("pick --load, --restart, --fuzz, --searches or --all")
    q = a.quick
    if a.load or a.all:
        w, n = a.writers or (4 if q else 16), a.per_writer or (50 if q else 1000)
        r = bench_load(w, n, a.pg_url, sqlite=a.sqlite)
        save(f"load-{'sqlite' if a.sqlite else 'postgresql'}{'-quick' if q else ''}", r)
        print(json.dumps({k: v for k, v in r.items() if k != "read_errors"}, indent=1, default=str))
    if a.restart or a.all:
        r = bench_restart(2 if q else 4, 40 if q else 300, 2 if q else 6)
        save(f"restart{'-quick' if q else ''}", r)
        print(json.dumps(r, indent=1, default=str))
    if a.fuzz or a.all:
        r = bench_fuzz(a.fuzz or (40 if q else 300))
        save(f"fuzz{'-quick' if q else ''}", r)
        print(json.dumps(r, indent=1, default=str))
    if a.searches or a.all:
        r = bench_searches(6 if q else 12, 3 if q else 6)
        save(f"searches{'-quick' if q else ''}", r)
        print(json.dumps(r, indent=1, default=str))


if __name__ == "__main__":
    main()
