"""Time to first full render of a 10,000-trial study in the dashboard, after the cache is warm.

    python benchmarks/dashboard.py                 # 10,000 trials, AppTest + headless Chromium
    python benchmarks/dashboard.py --quick         # 1,000 trials (CI-sized)
    python benchmarks/dashboard.py --db /tmp/d.db  # keep (and reuse) the seeded SQLite file

What is measured:
- seeding: the study written through `Store.finish_trials` (dashboard.synthetic: real
  Architectures and TrialResults), once; a `--db` that already holds the study is reused;
- server side (`streamlit.testing.v1.AppTest`, the real script): the first run of a fresh app
  (cold: imports, the database read, the frame, the figures) and then, with the cache warm, a
  new session's first run of every page (Pareto front, progress, trials, a trial, compare two):
  the time the script takes to produce every element and figure of the page (measured by the
  app itself, `page built in ...`), median of 5; AppTest's own wall time is recorded beside it
  (it adds a per-instance scan of installed components, seconds on a busy machine);
- browser (headless Chromium via Playwright, if /usr/bin/chromium exists; `--no-browser` skips
  it): the app served by `hybrid-nas dashboard`, one page load to warm the server's cache, then
  fresh page loads of `?study=NAME` timed until every Plotly chart has drawn its data and the
  app is idle (median of 3), split into the shell (Streamlit's frontend loaded and connected,
  the sidebar drawn: the same for any app) and what the study's charts add after it. On a
  machine whose cores are shared with other work, the shell dominates and says little;
- the same for the page with its any-two chart drawn (`&x=&y=`: above 5,000 trials the page
  draws it on request), so the JSON also says what that third chart costs;
- the browser floor: the same loads of a Streamlit app with nothing but a sidebar title and one
  3-point Plotly chart (`FLOOR_APP`, served with the dashboard's own Streamlit flags), so the
  JSON says how much of the page's time is the study's and how much any Streamlit page with a
  Plotly chart takes in this browser;
- `--rounds R` repeats the three, one after the other in each round, so that a machine's slow and
  fast moments fall on each alike (a GPU machine's speed changes from minute to minute).
Target (issue 7): under 2 s for the Pareto page after the cache is warm. Results: JSON in
benchmarks/results/dashboard-<device>.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the project first, also when PYTHONPATH names it: its `dashboard` package, not this script
sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:  # cdp.py, when imported from elsewhere
    sys.path.append(str(ROOT / "benchmarks"))

from dashboard.synthetic import seed_study  # noqa: E402
from storage import Store  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
STUDY = "bench"
TARGET_S = 2.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def seed(url: str, n: int) -> float | None:
    s = Store(url)
    try:
        if STUDY in [x.name for x in s.list_studies()] and s.count_trials(STUDY) == n:
            return None
        t = time.perf_counter()
        seed_study(s, STUDY, n, seed=0, running=5, curve_points=20)
        return time.perf_counter() - t
    finally:
        s.close()


def apptest_timings(url: str, reps: int) -> dict:
    from streamlit.testing.v1 import AppTest
    os.environ["HYBRID_NAS_STORAGE"] = url

    def fresh():
        at = AppTest.from_file(APP, default_timeout=600)
        at.query_params["study"] = STUDY
        at.query_params["live"] = "0"
        return at

    out = {}
    at = fresh()
    t = time.perf_counter()
    at.run()
    out["cold_first_run_s"] = round(time.perf_counter() - t, 3)
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    pages = {"pareto": {}, "progress": {"view": "progress"}, "trials": {"view": "trials"},
             "trial": {"view": "trial", "trial": "7"}, "compare": {"view": "compare"}}
    for page, params in pages.items():
        times, script = [], []
        for _ in range(reps):
            at = fresh()
            for k, v in params.items():
                at.query_params[k] = v
            if page == "compare":
                at.session_state["selected"] = [3, 7]
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
            assert not at.exception and not at.error, (page, at.exception, [e.value for e in at.error])
            script.append(at.session_state["_render_s"])
        out[page] = {"warm_median_s": round(statistics.median(script), 3),
                     "script_runs_s": [round(x, 3) for x in script],
                     "apptest_wall_median_s": round(statistics.median(times), 3),
                     "plotly_charts": len(at.get("plotly_chart"))}
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


READY_JS = """(n) => {
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (plots.length < n) return false;
  for (const p of plots) {
    if (!p._fullData || !p._fullData.length) return false;
    if (!p.querySelector('.main-svg')) return false;
  }
  return !document.querySelector('[data-testid="stStatusWidget"]');
}"""


# The floor: the same browser, the same way of timing, on a Streamlit app that has nothing but a
# sidebar title and ONE Plotly chart of 3 points. What the study's page takes beyond this is ours;
# the floor itself is Streamlit's frontend plus Plotly's JavaScript on this machine.
FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st
st.sidebar.title("floor")
st.plotly_chart(go.Figure(data=[go.Scatter(x=[1, 2, 3], y=[3, 1, 2], mode="markers")]), key="c",
                on_select="rerun", width="stretch")
"""


@contextlib.contextmanager
def _served(command: Callable[[int], list[str]], cwd: Path = ROOT):
    """Start a Streamlit server (`command(port)` is its command line, run in `cwd`: the checkout
    whose modules it serves), wait until healthy, yield its port."""
    port = _free_port()
    proc = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


WEBGL_RENDERER_JS = """(() => {
  const gl = document.createElement('canvas').getContext('webgl');
  if (!gl) return 'no WebGL';
  const e = gl.getExtension('WEBGL_debug_renderer_info');
  return e ? gl.getParameter(e.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
})()"""
SHELL_JS = "!!document.querySelector(\"[data-testid='stSidebar'] h1\")"


class _Driver:
    """One browser, one context (a returning user's), pages opened, timed and closed."""

    def load(self, link: str, n_charts: int) -> tuple[float, float]:
        """Seconds from navigation until the app's shell is drawn, and until every chart is."""
        page = self._new_page()
        t = time.perf_counter()
        self._goto(page, link)
        self._wait(page, SHELL_JS)  # Streamlit's frontend loaded, connected, the sidebar drawn
        shell = time.perf_counter() - t
        self._wait(page, f"({READY_JS})({n_charts})")
        dt = time.perf_counter() - t
        page.close()
        return shell, dt

    def webgl_renderer(self) -> str:
        page = self._new_page()
        try:
            return page.evaluate(WEBGL_RENDERER_JS)
        finally:
            page.close()


class _PlaywrightDriver(_Driver):
    """Playwright's Chromium: the tests' driver."""

    def __init__(self, exe: str, args: list[str]):
        from playwright.sync_api import sync_playwright
        self._pw = sync_playwright().start()
        self._b = self._pw.chromium.launch(executable_path=exe, headless=True, args=args)
        self._ctx = self._b.new_context(viewport={"width": 1500, "height": 1000})

    def _new_page(self):
        return self._ctx.new_page()

    def _goto(self, page, link: str) -> None:
        page.goto(link, timeout=600_000)

    def _wait(self, page, expression: str) -> None:
        page.wait_for_function(expression, timeout=600_000, polling=50)

    def close(self) -> None:
        self._ctx.close()
        self._b.close()
        self._pw.stop()


class _CdpDriver(_Driver):
    """The same loads over the DevTools protocol (benchmarks/cdp.py), where Playwright is absent."""

    def __init__(self, exe: str, args: list[str]):
        from cdp import Browser
        self._b = Browser(exe, args)

    def _new_page(self):
        return self._b.new_page(1500, 1000)

    def _goto(self, page, link: str) -> None:
        page.goto(link)

    def _wait(self, page, expression: str) -> None:
        page.wait_for(expression)

    def close(self) -> None:
        self._b.close()


DRIVERS = {"playwright": _PlaywrightDriver, "cdp": _CdpDriver}


def _page_loads(link: str, n_charts: int, reps: int, browser: dict) -> dict:
    # One browser context for every load, as a returning user's browser: its HTTP cache (and V8's
    # code cache) keep Streamlit's and Plotly's JavaScript between page loads. (A new context per
    # load measured the JavaScript download and compile every time.)
    drv = DRIVERS[browser["driver"]](browser["executable"], browser["args"])
    out = {"webgl_renderer": drv.webgl_renderer()}
    times, shells = [], []
    try:
        for i in range(reps + 1):
            # shell: Streamlit's frontend loaded, connected, first elements drawn; dt: every chart
            shell, dt = drv.load(link, n_charts)
            if i == 0:
                out["first_load_s"] = round(dt, 3)  # cold server cache
            else:
                times.append(dt)
                shells.append(shell)
    finally:
        drv.close()
    out["warm_load_median_s"] = round(statistics.median(times), 3)
    out["warm_loads_s"] = [round(x, 3) for x in times]
    # what the page adds after the frontend is up: the figures drawn
    out["shell_median_s"] = round(statistics.median(shells), 3)
    out["charts_after_shell_median_s"] = round(statistics.median(t - s for t, s in zip(times, shells)), 3)
    return out


def _dashboard_command(url: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, "-m", "orchestrator.cli", "dashboard", "--storage", url, "--port", str(port)]


def served_app(app: str | Path) -> Callable[[int], list[str]]:
    """The command line of another Streamlit app served as `hybrid-nas dashboard` serves the
    dashboard (same flags), for `_served`."""
    from orchestrator.commands.dashboard import streamlit_command
    return lambda port: streamlit_command(port, "127.0.0.1", app=str(app))


def _summary(loads: list[float]) -> dict:
    return {"warm_load_median_s": round(statistics.median(loads), 3), "warm_loads_s": loads,
            "loads": len(loads), "under_target": sum(x < TARGET_S for x in loads),
            "min_s": min(loads), "max_s": max(loads)}


def browser_rounds(url: str, pages: dict[str, tuple[str, int]], rounds: int, reps: int, browser: dict) -> dict:
    """`rounds` rounds; in each, every page of `pages` (name -> (query after `?study=`, charts it
    draws)) and the floor app are loaded `reps` times warm, one after the other, so that a
    machine's slow and fast moments fall on all of them alike. Both servers run throughout."""
    out: dict = {"rounds": []}
    with tempfile.TemporaryDirectory() as d, _served(_dashboard_command(url)) as port:
        floor_app = Path(d) / "floor.py"
        floor_app.write_text(FLOOR_APP)
        with _served(served_app(floor_app)) as floor_port:
            for r in range(rounds):
                row = {}
                for name, (query, n_charts) in pages.items():
                    row[name] = _page_loads(f"http://127.0.0.1:{port}/?study={STUDY}&live=0{query}", n_charts,
                                            reps, browser)
                row["floor"] = _page_loads(f"http://127.0.0.1:{floor_port}/", 1, reps, browser)
                print(f"round {r + 1}: " + ", ".join(f"{k} {v['warm_load_median_s']:.3f} s" for k, v in row.items()),
                      flush=True)
                out["rounds"].append(row)
    for name in [*pages, "floor"]:
        rows = [row[name] for row in out["rounds"]]
        out[name] = {**_summary([x for row in rows for x in row["warm_loads_s"]]),
                     "round_medians_s": [row["warm_load_median_s"] for row in rows],
                     "charts_after_shell_median_s": round(statistics.median(
                         row["charts_after_shell_median_s"] for row in rows), 3),
                     "first_loads_s": [row["first_load_s"] for row in rows]}
    out["webgl_renderer"] = out["rounds"][0]["floor"]["webgl_renderer"]
    return out


def pareto_pages(url: str) -> dict[str, tuple[str, int]]:
    """The Pareto page as a link opens it, and with its any-two chart drawn (`&x=&y=` on the
    default axes; on a study above `BIG` trials the page asks before drawing it), with the
    number of Plotly charts each draws (AppTest, the real script)."""
    from streamlit.testing.v1 import AppTest
    os.environ["HYBRID_NAS_STORAGE"] = url

    def run(extra: dict) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=600)
        at.query_params["study"], at.query_params["live"] = STUDY, "0"
        for k, v in extra.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        return at

    at = run({})
    x, y = at.session_state["x_axis"], at.session_state["y_axis"]
    every = run({"x": x, "y": y})
    return {"pareto": ("", len(at.get("plotly_chart"))),
            "pareto_every_chart": (f"&x={x}&y={y}", len(every.get("plotly_chart")))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="1,000 trials, 2 repetitions")
    ap.add_argument("--db", help="SQLite file to seed (or reuse); default: a temporary file")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--browser-only", action="store_true",
                    help="skip the AppTest timings (nothing is written unless --out is given)")
    ap.add_argument("--driver", choices=sorted(DRIVERS), default="playwright",
                    help="what drives Chromium: Playwright (the tests' driver) or bare DevTools (benchmarks/cdp.py)")
    ap.add_argument("--chromium", default=CHROMIUM, help=f"the browser executable (default {CHROMIUM})")
    ap.add_argument("--browser-args", default=" ".join(CHROMIUM_ARGS),
                    help="Chromium's flags, one string (default: software rendering, --disable-gpu)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of browser loads (each: the page, the page with every chart, the floor)")
    ap.add_argument("--device", help="the name in the results file (default cpu_<cores>_cores)")
    ap.add_argument("--webgl-only", action="store_true", help="print the browser's WebGL renderer and stop")
    ap.add_argument("--out", help="the results file (default benchmarks/results/dashboard-<device>.json)")
    args = ap.parse_args()
    browser = {"driver": args.driver, "executable": args.chromium, "args": shlex.split(args.browser_args)}
    if args.webgl_only:
        drv = DRIVERS[args.driver](args.chromium, browser["args"])
        try:
            print(drv.webgl_renderer())
        finally:
            drv.close()
        return
    n = 1000 if args.quick else args.trials
    reps = 2 if args.quick else 5
    tmp = None
    if args.db:
        db = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory()
        db = Path(tmp.name) / "dashboard-bench.db"
    url = f"sqlite:///{db}"
    device = args.device or f"cpu_{os.cpu_count()}_cores"
    res = {"device": device, "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
           "cpu_cores": os.cpu_count(), "trials": n, "target_s": TARGET_S,
           # timings on a machine shared with other work are inflated: say how busy it was
           "load_average_1m_at_start": round(os.getloadavg()[0], 1)}
    print(f"seeding {n} trials into {db} ...", flush=True)
    res["seed_s"] = seed(url, n)
    print(f"  seeded in {res['seed_s']} s" if res["seed_s"] is not None else "  reused", flush=True)
    print("AppTest runs ...", flush=True)
    if args.browser_only:
        res["apptest"] = {"pareto": {"warm_median_s": float("nan")}}
    else:
        res["apptest"] = apptest_timings(url, reps)
    print(json.dumps(res["apptest"], indent=1), flush=True)
    if not args.no_browser and os.path.exists(args.chromium):
        res["browser_setup"] = {"driver": args.driver, "executable": args.chromium, "args": browser["args"]}
        pages = pareto_pages(url)
        res["browser_pages"] = {k: {"query": q, "plotly_charts": n} for k, (q, n) in pages.items()}
        print(f"browser loads: {args.rounds} round(s) of {pages} and the floor app (one 3-point chart) ...",
              flush=True)
        b = browser_rounds(url, pages, args.rounds, 2 if args.quick else 3, browser)
        res["browser_rounds"] = b.pop("rounds")
        res["webgl_renderer"] = b.pop("webgl_renderer")
        res["browser"], res["browser_every_chart"], res["browser_floor"] = \
            b["pareto"], b["pareto_every_chart"], b["floor"]
        for k in ("browser", "browser_every_chart", "browser_floor"):
            print(k, json.dumps(res[k]), flush=True)
        res["browser_over_floor_s"] = round(res["browser"]["warm_load_median_s"]
                                            - res["browser_floor"]["warm_load_median_s"], 3)
    pareto_s = res["apptest"]["pareto"]["warm_median_s"]
    res["pareto_warm_render_s"] = pareto_s
    res["met"] = pareto_s < TARGET_S and res.get("browser", {}).get("warm_load_median_s", 0) < TARGET_S
    out = Path(args.out).resolve() if args.out else \
        ROOT / "benchmarks" / "results" / f"dashboard-{device}{'-quick' if args.quick else ''}.json"
    if args.browser_only and not args.out:  # no server timings: the canonical file is left alone
        print(json.dumps(res, indent=1))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"Pareto page, warm cache: {pareto_s:.3f} s server-side"
          + (f", {res['browser']['warm_load_median_s']:.3f} s in the browser" if "browser" in res else "")
          + f" (target < {TARGET_S} s) -> {out}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
