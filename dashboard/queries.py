"""Every read the app makes, cached.

Design choices:
- One `Store` per URL per server process (`st.cache_resource`); it opens with `create=False`
  for SQLite files so that a mistyped path is a message on the page, not a new empty database.
- The study's `revision` (`Store.last_modified`, one integer) is read on every run and is part
  of the key of every cached query, so a new trial invalidates exactly the study it belongs to
  and an unchanged study is served from memory: a 10,000-trial study re-renders without
  touching the database.
- The trials frame has no architecture YAML (it would be megabytes); the primitives each trial
  contains are read here by a small read-only query over `storage.models` for the fingerprints
  not seen before, and remembered per fingerprint (architectures never change).
"""
from __future__ import annotations

import streamlit as st
from sqlalchemy import select

from storage import IncrementalTrials, Store
from storage.models import architectures

from .data import Objective, prepare, primitives_in


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    sqlite_file = url.startswith("sqlite") and ":memory:" not in url
    return Store(url, create=not sqlite_file)


def list_studies(url: str):
    return store(url).list_studies()


def revision(url: str, study: str) -> int:
    return store(url).last_modified(study)


@st.cache_data(show_spinner=False, max_entries=16, ttl=3600)
def study_info(url: str, study: str, rev: int):
    return store(url).get_study(study)


@st.cache_resource(show_spinner=False)
def _primitive_memo(url: str) -> dict[str, frozenset]:
    return {}


def primitives_by_fingerprint(url: str, fingerprints) -> dict[str, frozenset]:
    memo = _primitive_memo(url)
    missing = sorted({f for f in fingerprints if isinstance(f, str)} - memo.keys())
    s = store(url)
    for i in range(0, len(missing), 500):
        chunk = missing[i:i + 500]

        def fn(conn, chunk=chunk):
            q = select(architectures.c.fingerprint, architectures.c.yaml).where(architectures.c.fingerprint.in_(chunk))
            return conn.execute(q).all()
        for fp, y in s._read(fn, "read architectures"):
            memo[fp] = primitives_in(y)
    return memo


@st.cache_resource(show_spinner=False, max_entries=16)
def _incremental(url: str, study: str, created: str) -> IncrementalTrials:
    # keyed by the study's creation time too: a study deleted and created again starts over
    return IncrementalTrials(store(url), study)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def frame(url: str, study: str, rev: int):
    """The prepared trials frame (categories on the study's objectives, primitives per trial).

    `cache_resource`, not `cache_data`: a 10,000-row frame is shared, not unpickled on every
    run; the views only read it (filters make new frames). A new revision reads only the trials
    written since the last one (`storage.IncrementalTrials`), not the whole study again."""
    info = study_info(url, study, rev)
    raw = _incremental(url, study, str(info.created_at)).refresh()
    if "fingerprint" in raw and len(raw):
        memo = primitives_by_fingerprint(url, raw["fingerprint"].dropna().unique())
        raw = raw.assign(primitives=[memo.get(f, frozenset()) for f in raw["fingerprint"]])
    return prepare(raw, objectives(info))


def objectives(info) -> list[Objective]:
    return [Objective(n, d) for n, d in info.objectives]


@st.cache_data(show_spinner=False, max_entries=8, ttl=3600)
def hypervolume(url: str, study: str, rev: int, objs: tuple[tuple[str, str], ...]):
    return store(url).hypervolume_history(study, list(objs))


@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def trial(url: str, study: str, number: int, rev: int) -> dict:
    return store(url).trial(study, number)


@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def curves(url: str, study: str, number: int, rev: int) -> dict:
    return store(url).curves(study, number)


@st.cache_data(show_spinner=False, max_entries=16, ttl=3600)
def config_problem(url: str, study: str, rev: int) -> str | None:
    """Why the study's stored config does not validate under today's schema (None if it does).

    `orchestrator.config` is torch- and ray-free (pydantic and search_space only); if a later
    version stopped being importable here, the check is skipped rather than breaking the page."""
    text = study_info(url, study, rev).config_yaml or ""
    if not text.strip():
        return None
    try:
        from orchestrator.config import load_config
    except ImportError:  # pragma: no cover
        return None
    from search_space.errors import UserError
    try:
        load_config(text)
    except UserError as e:
        return " / ".join(e.lines())
    return None
