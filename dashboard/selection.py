"""The set of selected trials, shared by every view (charts, table, trial page, downloads).

Design choices:
- The selection lives in `st.session_state["selected"]`, the key of the sidebar's multiselect,
  which is drawn *after* the views so that a chart selection made in this run can still set it
  (Streamlit forbids writing a widget's key after the widget exists in the run).
- A chart or table reports its selection on every run; only a *change* of what that widget
  reports replaces the shared selection, so picking trials in the table is not undone by a
  chart that still shows an old lasso.
- A chart point maps to its trial through its `customdata` (the trial number first) when the
  browser sends it, else through its curve and index (`plots.curve_trials`); a bare list of
  `point_indices` (no points) is unambiguous only for a chart with one trace of trials.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

KEY = "selected"
# Up to this many trials the sidebar's box lists every trial; above it, the Pareto set and the
# selection (any other trial is typed: its number, "12, 40" or "40-45"). A browser's multiselect
# of 10,000 options cost about 0.4 s of every page load on the 2-core machine (docs/dashboard.md).
BOX_LISTS_ALL = 1000


def get() -> list[int]:
    return parse_entries(st.session_state.get(KEY, []))[0]


def parse_entries(values) -> tuple[list[int], list[str]]:
    """The sidebar box's value as trial numbers: its options are numbers, and what a user types
    there arrives as text ("12", "12, 40", "40-45"). Returns the numbers (sorted, unique) and the
    entries that are not numbers or ranges of them."""
    nums: set[int] = set()
    bad: list[str] = []
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            nums.add(int(v))
            continue
        for part in str(v).replace(",", " ").split():
            lo, sep, hi = part.partition("-")
            if lo.isdigit() and (not sep or hi.isdigit()):
                a, b = int(lo), int(hi) if sep else int(lo)
                if b - a > 10_000:
                    bad.append(part)  # a typo like 1-100000 would select a whole study
                else:
                    nums.update(range(a, b + 1))
            else:
                bad.append(part)
    return sorted(nums), bad


def put(numbers) -> None:
    st.session_state[KEY] = sorted({int(n) for n in numbers})


def _get(obj: Any, name: str, default=None):
    if obj is None:
        return default
    try:
        return obj[name]
    except (KeyError, TypeError, IndexError):
        return getattr(obj, name, default)


def chart_numbers(event: Any, curves: list[list[int] | None]) -> list[int]:
    """Trial numbers selected in a Pareto scatter; `curves[i]`: the trial of each point of trace
    i (None for a trace that is not trials: the front line, legend entries)."""
    sel = _get(event, "selection")
    if not sel:
        return []
    out = []
    points = _get(sel, "points") or []
    for p in points:
        c = int(_get(p, "curve_number", 0) or 0)
        trials = curves[c] if 0 <= c < len(curves) else None
        if trials is None:
            continue
        cd = _get(p, "customdata")
        if isinstance(cd, dict):  # a row of a binary (typed) array arrives as {"0": number, "1": ...}
            cd = [cd[k] for k in sorted(cd, key=int)] if cd and all(str(k).isdigit() for k in cd) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            out.append(int(float(cd)))
        else:
            i = _get(p, "point_index", _get(p, "point_number"))
            if i is not None and 0 <= int(i) < len(trials):
                out.append(int(trials[int(i)]))
    trial_curves = [t for t in curves if t is not None]
    if not points and len(trial_curves) == 1:
        for i in _get(sel, "point_indices") or []:
            if 0 <= int(i) < len(trial_curves[0]):
                out.append(int(trial_curves[0][int(i)]))
    return sorted(set(out))


def absorb(source_key: str, numbers: list[int]) -> None:
    """Make `numbers` the selection if what `source_key` reports changed since the last run."""
    seen_key = f"_seen_{source_key}"
    now = tuple(numbers)
    if st.session_state.get(seen_key) != now:
        st.session_state[seen_key] = now
        if now or st.session_state.get(f"_nonempty_{source_key}"):
            put(numbers)
        st.session_state[f"_nonempty_{source_key}"] = bool(now)
