"""The Pareto page of several git revisions of the dashboard, loaded alternately in one run.

    python benchmarks/dashboard_revisions.py --revs e6dda8d,fd80a8c,HEAD --db /tmp/d10k.db
    python benchmarks/dashboard_revisions.py --revs HEAD~1,HEAD --rounds 5 --driver cdp --chromium ...

A browser's time for a page moves by more from one minute to the next than most single changes
save, so a change is measured against the code before it in the same run: each revision is
checked out in its own worktree (`git worktree add --detach`, removed afterwards) and served from
it (its own `hybrid-nas dashboard`, its own modules: the server's working directory and PYTHONPATH
are the worktree), and every round loads each revision's page (`?study=bench&live=0`, 3 warm loads
after one cold, the same timing as benchmarks/dashboard.py) one after the other. The number of
Plotly charts a revision's page draws is read from that revision's own script with AppTest.
Results: JSON in benchmarks/results/dashboard_revisions-<device>.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))

from dashboard_bench import bench as _bench  # noqa: E402

COUNT_CHARTS = """
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("dashboard/app.py", default_timeout=600)
at.query_params["study"], at.query_params["live"] = {study!r}, "0"
at.run()
assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
print(len(at.get("plotly_chart")))
"""


def charts_of(root: Path, url: str) -> int:
    out = subprocess.run([sys.executable, "-c", COUNT_CHARTS.format(study=_bench.STUDY)], cwd=root,
                         env=dict(os.environ, PYTHONPATH=str(root), HYBRID_NAS_STORAGE=url),
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(f"AppTest of {root} failed: {out.stderr[-1500:]}")
    return int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--revs", required=True, help="comma-separated git revisions, in the order loaded")
    ap.add_argument("--db", default="/tmp/dashboard-bench-10k.db", help="SQLite file (seeded if it lacks the study)")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="warm loads per revision and round")
    ap.add_argument("--driver", choices=sorted(_bench.DRIVERS), default="playwright")
    ap.add_argument("--chromium", default=_bench.CHROMIUM)
    ap.add_argument("--browser-args", default=" ".join(_bench.CHROMIUM_ARGS))
    ap.add_argument("--device", default=f"cpu_{os.cpu_count()}_cores")
    ap.add_argument("--out")
    args = ap.parse_args()
    url = f"sqlite:///{Path(args.db).resolve()}"
    _bench.seed(url, args.trials)
    browser = {"driver": args.driver, "executable": args.chromium, "args": shlex.split(args.browser_args)}
    revs = [r.strip() for r in args.revs.split(",") if r.strip()]
    res = {"benchmark": "dashboard_revisions", "device": args.device, "date": time.strftime("%Y-%m-%d"),
           "python": platform.python_version(), "trials": args.trials, "driver": args.driver,
           "load_average_1m_at_start": round(os.getloadavg()[0], 1), "revisions": {}, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        try:
            for rev in revs:
                sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True,
                                     text=True, check=True).stdout.strip()
                root = Path(tmp) / sha
                subprocess.run(["git", "worktree", "add", "--detach", "-q", str(root), sha], cwd=ROOT, check=True)
                roots[rev] = root
                subject = subprocess.run(["git", "log", "-1", "--format=%s", sha], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()
                res["revisions"][rev] = {"commit": sha, "subject": subject[:160], "plotly_charts": charts_of(root, url)}
                print(f"{rev} ({sha}): {res['revisions'][rev]['plotly_charts']} charts", flush=True)
            for r in range(args.rounds):
                row = {}
                for rev, root in roots.items():
                    os.environ["PYTHONPATH"] = str(root)  # the server and Streamlit's child: its modules
                    with _bench._served(_bench._dashboard_command(url), cwd=root) as port:
                        out = _bench._page_loads(f"http://127.0.0.1:{port}/?study={_bench.STUDY}&live=0",
                                                 res["revisions"][rev]["plotly_charts"], args.reps, browser)
                    row[rev] = out["warm_loads_s"]
                    print(f"round {r + 1} {rev}: {out['warm_loads_s']}", flush=True)
                res["rounds"].append(row)
        finally:
            for root in roots.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=ROOT)
    first = revs[0]
    for rev in revs:
        loads = [x for row in res["rounds"] for x in row[rev]]
        res["revisions"][rev].update(median_s=round(statistics.median(loads), 3), loads_s=loads)
    for rev in revs:
        res["revisions"][rev]["ratio_to_first"] = round(res["revisions"][rev]["median_s"]
                                                        / res["revisions"][first]["median_s"], 3)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"dashboard_revisions-{args.device}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    for rev in revs:
        v = res["revisions"][rev]
        print(f"{rev:>12} {v['commit']}: median {v['median_s']:.3f} s ({v['ratio_to_first']:.2f} of {first}), "
              f"{v['plotly_charts']} charts")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
