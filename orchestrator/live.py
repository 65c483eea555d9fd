"""The live terminal view of a search: a progress bar of trials, running/failed counts and the
current Pareto front, redrawn by rich while Tune runs.

It is a Ray Tune `Callback` (driver side), so it sees trials start and end without polling. The
Pareto front comes from the store (the same query the dashboard uses), re-read only when a trial
finishes. Without a terminal (CI logs, `ray job submit`) it prints one line per finished trial
instead of redrawing."""
from __future__ import annotations

import math
import threading

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .driver_store import DriverStoreHandle


def _fmt(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.4g}"


def pareto_table(frame, objectives: list[tuple[str, str]], title: str = "Pareto front", limit: int = 12) -> Table:
    t = Table(title=title, title_justify="left", expand=False)
    t.add_column("trial", justify="right")
    for m, d in objectives:
        t.add_column(f"{m} {'↑' if d == 'maximize' else '↓'}", justify="right")
    t.add_column("pattern", overflow="ellipsis", max_width=48)
    if frame is None or len(frame) == 0:
        t.add_row("-", *["-"] * len(objectives), "(no complete feasible trial yet)")
        return t
    for _, r in frame.head(limit).iterrows():
        t.add_row(str(int(r["number"])), *[_fmt(r.get(m)) for m, _ in objectives], str(r.get("pattern", "")))
    if len(frame) > limit:
        t.caption = f"{len(frame) - limit} more on the front"
    return t


class LiveView(DriverStoreHandle, Callback):
    def __init__(self, cfg, store, console: Console | None = None, live: bool | None = None, already: int = 0):
        self.study = cfg.study
        self.objectives = list(zip(cfg.metric_names, cfg.directions))
        self.total = cfg.trials
        self.store = store
        self.console = console or Console()
        self.live = self.console.is_terminal if live is None else live
        self.done = already
        self.counts = {"complete": 0, "failed": 0, "pruned": 0}
        self.running: set[str] = set()
        self.title = f"study {cfg.study}"
        self._front = None
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._depth = 0
        if already:
            for st in self.counts:
                try:
                    self.counts[st] = store.count_trials(cfg.study, st)
                except Exception:  # a new study: nothing to count
                    pass
            self._refresh_front()

    # Tune pickles its callbacks with the experiment state; the live parts (and the store, see
    # DriverStoreHandle) stay in this process.
    def __getstate__(self):
        d = dict(self.__dict__)
        d.update(_lock=None, _live=None, console=None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._lock = threading.Lock()
        self.console = Console()

    # -- context: start/stop the redraw thread
    def __enter__(self):
        self._depth += 1
        if self.live and self._live is None:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._live is not None and self._depth == 0:
            self._live.stop()
            self._live = None
        return False

    def phase(self, title: str, total: int):
        with self._lock:
            self.title, self.total, self.done = title, total, 0
            self.running.clear()

    # -- what rich draws
    def __rich__(self):
        with self._lock:
            bar = ProgressBar(total=max(1, self.total), completed=min(self.done, self.total), width=40)
            line = Text.assemble((f"{self.title}  ", "bold"), f"{self.done}/{self.total} trials  ",
                                 (f"{len(self.running)} running  ", "cyan"),
                                 (f"{self.counts['complete']} complete  ", "green"),
                                 (f"{self.counts['failed']} failed  ", "red"),
                                 (f"{self.counts['pruned']} stopped early", "yellow"))
            return Group(bar, line, pareto_table(self._front, self.objectives))

    def _refresh_front(self):
        try:
            self._front = self.store.pareto_front(self.study, self.objectives)
        except Exception:  # a busy database must not break the view
            pass

    # -- Tune callbacks (driver thread)
    def on_trial_start(self, iteration, trials, trial, **info):
        with self._lock:
            self.running.add(trial.trial_id)

    def _finish(self, trial, status: str, detail: str):
        with self._lock:
            if trial.trial_id not in self.running:
                return
            self.running.discard(trial.trial_id)
            self.done += 1
            self.counts[status] = self.counts.get(status, 0) + 1
        if status == "complete":
            self._refresh_front()
        num = (trial.config or {}).get("hn_number", (trial.config or {}).get("job", {}).get("hn_number", "?"))
        msg = f"trial {num}: {status}{detail}"
        if self._live is not None:
            self._live.console.print(msg, highlight=False)
        else:
            self.console.print(f"[{self.done}/{self.total}] {msg}", highlight=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        if r.get("hn_final"):
            st = r.get("hn_status", "failed")
            if st == "complete":
                detail = "  " + "  ".join(f"{m}={_fmt(r.get(m))}" for m, _ in self.objectives)
            else:
                detail = f"  ({r.get('hn_error', '')[:120]})"
            self._finish(trial, st, detail)
        else:
            self._finish(trial, "pruned", "  (stopped early)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "failed", "  (worker error)")
