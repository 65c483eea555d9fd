"""The Pareto page's figures in the browser, one form against another in one run: what the
browser spends on three 10,000-point scatters built as an earlier `dashboard/plots.py` built them
(one trace with per-point styles and hover strings, drawn with Streamlit's theme) and as the
current one does (a trace per category, numeric customdata, float32, theme=None).

    python benchmarks/dashboard_figures.py --db /tmp/d10k.db          # seeds it if missing
    python benchmarks/dashboard_figures.py --old-rev 5b8eca4 --reps 5

The app (`dashboard_figures_app.py`) draws only those charts (and, for `new-tables`, the page's
two Pareto-set tables). Loads alternate between the forms in one browser (the same driver as
`benchmarks/dashboard.py --driver cdp`); each is timed from navigation until every chart has drawn
its data, and the renderer's main-thread time (all tasks, and JavaScript alone) is read from the
DevTools Performance metrics. Medians; results in
benchmarks/results/dashboard_figures-<device>.json."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's `dashboard` package, not benchmarks/dashboard.py

from cdp import Browser  # noqa: E402

# benchmarks/dashboard.py under another name (its server, page-ready JavaScript and seeding)
from dashboard_bench import bench as _bench  # noqa: E402

APP = ROOT / "benchmarks" / "dashboard_figures_app.py"
VARIANTS = ["old", "new", "new-tables", "svg"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/dashboard-bench-10k.db", help="SQLite file (seeded if it lacks the study)")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--old-rev", default="5b8eca4", help="the git revision whose dashboard/plots.py is 'old'")
    ap.add_argument("--old-plots", help="or that file itself (where the checkout has no git history)")
    ap.add_argument("--old-theme", choices=["streamlit", "none"], default="streamlit",
                    help="how the app draws the old figures: Streamlit's theme (as before 700a0cb) or none")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"which forms to load, comma-separated ({VARIANTS})")
    ap.add_argument("--chromium", default=_bench.CHROMIUM)
    ap.add_argument("--browser-args", default=" ".join(_bench.CHROMIUM_ARGS))
    ap.add_argument("--device", default=f"cpu_{os.cpu_count()}_cores")
    ap.add_argument("--out")
    args = ap.parse_args()
    variants = args.variants.split(",")
    if not set(variants) <= set(VARIANTS) or not {"old", "new"} <= set(variants):
        ap.error(f"--variants: old and new, and any of {VARIANTS}")
    url = f"sqlite:///{Path(args.db).resolve()}"
    _bench.seed(url, args.trials)
    with tempfile.TemporaryDirectory() as d:
        old = args.old_plots
        if not old:
            old = os.path.join(d, "old_plots.py")
            src = subprocess.run(["git", "show", f"{args.old_rev}:dashboard/plots.py"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
            Path(old).write_text(src)
        os.environ.update(HYBRID_NAS_STORAGE=url, HNAS_OLD_PLOTS=old, HNAS_STUDY=_bench.STUDY, HNAS_OLD_THEME=args.old_theme)
        walls = {v: [] for v in variants}
        main_thread = {v: [] for v in variants}
        script = {v: [] for v in variants}
        with _bench._served(_bench.served_app(APP)) as port:
            b = Browser(args.chromium, args.browser_args.split())
            try:
                probe = b.new_page()
                renderer = probe.evaluate(_bench.WEBGL_RENDERER_JS)
                probe.close()
                for r in range(args.reps + 1):  # the first round warms the server's cache and the browser's
                    for v in variants:
                        p = b.new_page(1500, 1000)
                        p.send("Performance.enable")
                        t = time.perf_counter()
                        p.goto(f"http://127.0.0.1:{port}/?v={v}")
                        p.wait_for(f"({_bench.READY_JS})(3)")
                        dt = time.perf_counter() - t
                        m = {x["name"]: x["value"] for x in p.send("Performance.getMetrics")["metrics"]}
                        p.close()
                        if r:
                            walls[v].append(dt)
                            main_thread[v].append(m["TaskDuration"])
                            script[v].append(m["ScriptDuration"])
            finally:
                b.close()
    med = {v: round(statistics.median(walls[v]), 3) for v in variants}
    res = {"device": args.device, "cpu_cores": os.cpu_count(), "webgl_renderer": renderer, "trials": args.trials,
           "old": args.old_plots or f"{args.old_rev}:dashboard/plots.py", "old_theme": args.old_theme, "reps": args.reps,
           "load_median_s": med,
           "main_thread_median_s": {v: round(statistics.median(main_thread[v]), 3) for v in variants},
           "script_median_s": {v: round(statistics.median(script[v]), 3) for v in variants},
           "loads_s": {v: [round(x, 3) for x in walls[v]] for v in variants},
           "new_over_old": round(med["new"] / med["old"], 3)}
    print(json.dumps(res, indent=1))
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"dashboard_figures-{args.device}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"new/old {res['new_over_old']} -> {out}")


if __name__ == "__main__":
    main()
