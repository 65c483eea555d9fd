"""The set of selected trials, shared by every view (charts, table, trial page, downloads).

Design choices:
- The selection lives in `st.session_state["selected"]`, the key of the sidebar's multiselect,
  which is drawn *after* the views so that a chart selection made in this run can still set it
  (Streamlit forbids writing a widget's key after the widget exists in the run).
- A chart or table reports its selection on every run; only a *change* of what that widget
  reports replaces the shared selection, so picking trials in the table is not undone by a
  chart that still shows an old lasso.
- A chart point maps to its trial through its `customdata` (the trial number) when the browser
  sends points, else through `point_indices` into the rows that were plotted (how AppTest and
  session state describe a selection).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

KEY = "selected"


def get() -> list[int]:
    return [int(n) for n in st.session_state.get(KEY, [])]


def put(numbers) -> None:
    st.session_state[KEY] = sorted({int(n) for n in numbers})


def _get(obj: Any, name: str, default=None):
    if obj is None:
        return default
    try:
        return obj[name]
    except (KeyError, TypeError, IndexError):
        return getattr(obj, name, default)


def chart_numbers(event: Any, rows: pd.DataFrame) -> list[int]:
    """Trial numbers selected in a Pareto scatter whose data trace (curve 0) drew `rows`."""
    sel = _get(event, "selection")
    if not sel:
        return []
    out = []
    points = _get(sel, "points") or []
    for p in points:
        if (_get(p, "curve_number", 0) or 0) != 0:
            continue  # the front line and legend entries are not trials
        cd = _get(p, "customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            out.append(int(float(cd)))
        else:
            i = _get(p, "point_index", _get(p, "point_number"))
            if i is not None and 0 <= int(i) < len(rows):
                out.append(int(rows["number"].iloc[int(i)]))
    if not points:
        for i in _get(sel, "point_indices") or []:
            if 0 <= int(i) < len(rows):
                out.append(int(rows["number"].iloc[int(i)]))
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
