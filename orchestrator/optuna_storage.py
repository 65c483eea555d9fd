"""Optuna's RDBStorage, except that pickling it never writes the database password.

Why: Ray Tune pickles the searcher (and through it the Optuna study and its storage) into the
experiment directory every few seconds (searcher-state-*.pkl, tuner.pkl). Optuna's RDBStorage
keeps its URL, password included, in its pickled state. Here the password is replaced by '***'.

Unpickling in the same process (Tune does it only for its own restore, which `--resume` does not
use: the database is the source of truth) gets the real URL back from a process-local table. In
any other process the storage has no password, and connecting fails on authentication rather
than reading a secret from a file.
"""
from __future__ import annotations

import optuna
from sqlalchemy.engine import make_url

_REAL_URLS: dict[str, str] = {}


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password we could find
        return url


class PasswordFreeRDBStorage(optuna.storages.RDBStorage):
    def __getstate__(self):
        state = super().__getstate__()
        masked = _masked(self.url)
        if masked != self.url:
            _REAL_URLS[masked] = self.url
            state["url"] = masked
        return state

    def __setstate__(self, state):
        url = _REAL_URLS.get(state.get("url"))
        super().__setstate__({**state, "url": url} if url else state)
