"""The app's pages. Each module has `render(ctx)`; `Ctx` is everything a page may read.

Pages never open the store themselves: they get the prepared frame and ask `dashboard.queries`
(cached, keyed on the study's revision) for anything per trial."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from ..data import Objective


@dataclass(frozen=True)
class Ctx:
    url: str
    study: str
    rev: int
    info: object            # storage.Study
    df: pd.DataFrame        # dashboard.data.prepare(...) of the study's trials frame
    objectives: list[Objective]
    columns: list[str]      # numeric columns with data (axis choices)


def chart(fig, key: str, **kw):
    """A figure of dashboard.plots, full width. `theme=None`: the figure carries Streamlit's look
    itself (plots.LOOK), because Streamlit's theme is applied in the browser by rewriting the
    figure's JSON text, and adds a template that makes Plotly calculate every chart twice."""
    return st.plotly_chart(fig, key=key, width="stretch", theme=None, **kw)
