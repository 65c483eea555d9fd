"""Where a warm page load of the dashboard spends its time in the browser: one load recorded with
Chromium's tracing and its JavaScript sampling profiler, summarised.

    python benchmarks/dashboard_trace.py --db /tmp/d10k.db                 # the Pareto page
    python benchmarks/dashboard_trace.py --app floor                       # the one-chart app
    python benchmarks/dashboard_trace.py --app figures --variant new       # dashboard_figures_app.py

`benchmarks/dashboard.py` says how long the page takes; this says what the time is: the renderer's
main thread (busy or waiting), JavaScript by script file, module evaluation (Streamlit loads each
element's code, Plotly's 4.7 MB among it, when the first such element arrives), layout, paint,
waits on the GPU process, and when the server's messages arrived over the websocket. The same
browser driver and page-ready test as the benchmark (benchmarks/cdp.py, dashboard.READY_JS); three
untraced warm loads first, so the traced one is a returning user's. Summary JSON on stdout and in
--out; --raw keeps the whole trace (tens of MB) for chrome://tracing or Perfetto."""
from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))

from cdp import Browser  # noqa: E402

from dashboard_bench import bench as _bench  # noqa: E402

CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute", "v8", "blink.user_timing",
              "loading", "gpu", "cc"]
# trace events that say what the renderer's main thread did (nested ones overlap: each is a total)
MAIN_EVENTS = {
    "module evaluation": ("v8.evaluateModule",),
    "compile": ("v8.compile", "v8.compileModule", "V8.CompileCode"),
    "garbage collection": ("MinorGC", "MajorGC"),
    "style and layout": ("UpdateLayoutTree", "Layout"),
    "paint and commit": ("Paint", "Commit", "PrePaint", "Layerize"),
    "waiting on the GPU process": ("CommandBufferProxyImpl::WaitForGetOffset", "CommandBufferProxyImpl::WaitSyncToken",
                                   "GLES2::ReadPixels", "CommandBufferHelper::Finish"),
}
TASKS = ("RunTask", "ThreadControllerImpl::RunTask")


def _main_thread(trace: list[dict], name: str = "CrRendererMain") -> tuple[int, int] | None:
    threads = {(e["pid"], e["tid"]) for e in trace if e.get("ph") == "M" and e["name"] == "thread_name"
               and e["args"]["name"] == name}
    counts = collections.Counter((e["pid"], e["tid"]) for e in trace if (e["pid"], e["tid"]) in threads)
    return counts.most_common(1)[0][0] if counts else None


def _busy(events: list[dict], t0: float, t1: float) -> float:
    """Seconds in [t0, t1] covered by tasks (the two task event names nest: their union)."""
    spans = sorted((max(e["ts"], t0), min(e["ts"] + e["dur"], t1)) for e in events
                   if e.get("ph") == "X" and e["name"] in TASKS and e["ts"] < t1 and e["ts"] + e["dur"] > t0)
    total, end = 0.0, t0
    for a, b in spans:
        if b > end:
            total += b - max(a, end)
            end = b
    return total / 1e6


def summarize(trace: list[dict], profile: dict, events: list[dict], ready_s: float) -> dict:
    main = _main_thread(trace)
    ev = [e for e in trace if (e["pid"], e["tid"]) == main]
    navs = [e["ts"] for e in trace if e["name"] == "navigationStart"]
    t0 = min(navs) if navs else min(e["ts"] for e in ev if e.get("ph") == "X")
    t1 = t0 + ready_s * 1e6
    out: dict = {"ready_s": round(ready_s, 3), "main_thread_busy_s": round(_busy(ev, t0, t1), 3)}
    gpu = _main_thread(trace, "CrGpuMain")
    if gpu:
        out["gpu_process_main_busy_s"] = round(_busy([e for e in trace if (e["pid"], e["tid"]) == gpu], t0, t1), 3)
    totals = collections.Counter()
    for e in ev:
        if e.get("ph") == "X" and t0 <= e["ts"] <= t1:
            for what, names in MAIN_EVENTS.items():
                if e["name"] in names:
                    totals[what] += e.get("dur", 0)
    out["main_thread_s"] = {k: round(v / 1e6, 3) for k, v in totals.most_common()}

    # the sampling profile: JavaScript self time by script, and per long task
    nodes = {n["id"]: n for n in profile["nodes"]}
    samples, t = [], profile["startTime"]
    for nid, dt in zip(profile["samples"], profile["timeDeltas"]):
        t += dt
        cf = nodes[nid]["callFrame"]
        samples.append((t, dt, cf["url"].rsplit("/", 1)[-1] or cf["functionName"]))
    by_script = collections.Counter()
    for ts, dt, script in samples:
        if t0 <= ts <= t1:
            by_script[script] += dt
    out["js_self_s_by_script"] = {k: round(v / 1e6, 3) for k, v in by_script.most_common(12)}
    long_tasks = []
    for e in sorted((e for e in ev if e.get("ph") == "X" and e["name"] in TASKS and t0 <= e["ts"] <= t1
                     and e["dur"] >= 50_000), key=lambda e: e["ts"]):
        inside = collections.Counter()
        for ts, dt, script in samples:
            if e["ts"] <= ts <= e["ts"] + e["dur"]:
                inside[script] += dt
        kinds = collections.Counter()
        for c in ev:
            if c.get("ph") == "X" and e["ts"] <= c["ts"] < e["ts"] + e["dur"]:
                for what, names in MAIN_EVENTS.items():
                    if c["name"] in names:
                        kinds[what] += c.get("dur", 0)
        long_tasks.append({"at_s": round((e["ts"] - t0) / 1e6, 3), "dur_s": round(e["dur"] / 1e6, 3),
                           "js": {k: round(v / 1e6, 3) for k, v in inside.most_common(3)},
                           "of_which": {k: round(v / 1e6, 3) for k, v in kinds.most_common(3)}})
    out["long_tasks"] = long_tasks

    # the network: the server's websocket messages, and when each lazily loaded element's code came
    reqs, start = {}, None
    for m in events:
        p = m.get("params", {})
        if m.get("method") == "Network.requestWillBeSent":
            start = p["timestamp"] if start is None else start
            reqs[p["requestId"]] = (p["request"]["url"], p["timestamp"])
    if start is not None:
        chunks = {}
        for url, ts in reqs.values():
            name = url.rsplit("/", 1)[-1].split(".")[0]
            if url.endswith(".js") and name in ("PlotlyChart", "DataFrame", "DownloadButton", "Selectbox"):
                chunks.setdefault(name, round(ts - start, 3))
        out["element_code_requested_at_s"] = chunks
        frames = [(m["params"]["timestamp"] - start, len(m["params"]["response"]["payloadData"]))
                  for m in events if m.get("method") == "Network.webSocketFrameReceived"]
        if frames:
            out["websocket"] = {"first_message_at_s": round(frames[0][0], 3), "last_message_at_s": round(frames[-1][0], 3),
                                "messages": len(frames), "chars": sum(n for _, n in frames),
                                "large_messages_at_s": [[round(t, 3), n] for t, n in frames if n > 20_000]}
    return out


def traced_load(link: str, ready: str, exe: str, args: list[str], raw: str | None = None, warm: int = 3) -> dict:
    """Load `link` `warm` times, then once more recorded, each until the JavaScript `ready` is
    true; the summary of the recorded load (`summarize`)."""
    b = Browser(exe, args)
    try:
        warm_s = []
        for _ in range(warm):  # a returning user's browser: code and HTTP caches warm, and the server's
            p = b.new_page(1500, 1000)
            t = time.perf_counter()
            p.goto(link)
            p.wait_for(ready)
            warm_s.append(round(time.perf_counter() - t, 3))
            p.close()
        p = b.new_page(1500, 1000)
        b.events = []
        p.send("Network.enable")
        p.send("Profiler.enable")
        p.send("Profiler.setSamplingInterval", {"interval": 250})  # microseconds
        p.send("Tracing.start", {"traceConfig": {"includedCategories": CATEGORIES}, "transferMode": "ReportEvents"})
        p.send("Profiler.start")
        t = time.perf_counter()
        p.goto(link)
        p.wait_for(ready)
        ready_s = time.perf_counter() - t
        profile = p.send("Profiler.stop")["profile"]
        p.send("Tracing.end")
        trace = []
        while True:  # the trace arrives in pieces after Tracing.end
            name, params = b.wait_event("Tracing.dataCollected", "Tracing.tracingComplete")
            if name == "Tracing.tracingComplete":
                break
            trace += params["value"]
        events = b.events
        b.events = None
        p.close()
    finally:
        b.close()
    if raw:
        Path(raw).write_text(json.dumps({"traceEvents": trace, "jsProfile": profile}))
    out = summarize(trace, profile, events, ready_s)
    out["untraced_warm_loads_s"] = warm_s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", choices=["dashboard", "floor", "figures"], default="dashboard")
    ap.add_argument("--variant", default="new", help="for --app figures: ?v=...")
    ap.add_argument("--db", default="/tmp/dashboard-bench-10k.db", help="SQLite file (seeded if it lacks the study)")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--chromium", default=_bench.CHROMIUM)
    ap.add_argument("--browser-args", default=" ".join(_bench.CHROMIUM_ARGS))
    ap.add_argument("--device", default=f"cpu_{os.cpu_count()}_cores")
    ap.add_argument("--every-chart", action="store_true", help="the Pareto page with its any-two chart drawn (&x=&y=)")
    ap.add_argument("--out", help="the summary JSON (default: stdout only)")
    ap.add_argument("--raw", help="also write the whole trace here (Chrome's JSON trace format)")
    args = ap.parse_args()
    browser = (args.chromium, shlex.split(args.browser_args))
    url = f"sqlite:///{Path(args.db).resolve()}"
    with tempfile.TemporaryDirectory() as d:
        if args.app == "floor":
            app = Path(d) / "floor.py"
            app.write_text(_bench.FLOOR_APP)
            cmd, query, n = _bench.served_app(app), "", 1
        else:
            _bench.seed(url, args.trials)
            os.environ["HYBRID_NAS_STORAGE"] = url
            if args.app == "figures":
                os.environ["HNAS_STUDY"] = _bench.STUDY
                os.environ.setdefault("HNAS_OLD_PLOTS", str(ROOT / "dashboard" / "plots.py"))
                cmd = _bench.served_app(ROOT / "benchmarks" / "dashboard_figures_app.py")
                query, n = f"?v={args.variant}", 3
            else:
                def cmd(port: int) -> list[str]:
                    return [sys.executable, "-m", "orchestrator.cli", "dashboard", "--storage", url, "--port", str(port)]
                # the page as a link opens it (above 5,000 trials: two charts), or with every chart
                q, n = _bench.pareto_pages(url)["pareto_every_chart" if args.every_chart else "pareto"]
                query = f"?study={_bench.STUDY}&live=0{q}"
        with _bench._served(cmd) as port:
            res = traced_load(f"http://127.0.0.1:{port}/{query}", f"({_bench.READY_JS})({n})", *browser, raw=args.raw)
    res = {"device": args.device, "app": args.app, **({"variant": args.variant} if args.app == "figures" else {}),
           "browser_args": browser[1], **res}
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
