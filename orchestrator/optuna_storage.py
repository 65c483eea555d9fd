"""The Optuna storage the driver uses: Optuna's RDBStorage, safe to serialize and patient with
a database that restarts.

1. No password in pickles. Ray Tune pickles the searcher (and through it the Optuna study and its
   storage) into the experiment directory every few seconds (searcher-state-*.pkl, tuner.pkl).
   Optuna's RDBStorage keeps its URL, password included, in its pickled state; here the password
   is replaced by '***'. Unpickling in the same process (Tune does it only for its own restore,
   which `--resume` does not use: the database is the source of truth) gets the real URL back from
   a process-local table; in any other process the storage has no password and connecting fails
   on authentication rather than reading a secret from a file.

2. Retries. The workers write through `storage.Store`, which retries transient errors; the
   driver's Optuna calls (ask, tell, constraint values) go through this storage, and a PostgreSQL
   restart of a second would otherwise end the whole search with StorageInternalError. Every
   storage call is retried on a transient error (the test is `storage.engine.is_transient`: a
   dropped connection, a refused connect while the server restarts, a lock) with jittered backoff
   for up to `RETRY_S`, then the error is raised. A retried write is idempotent for what the driver
   calls (params, attributes and intermediate values are upserts; a state update that had
   committed before its response was lost is recognised as done). `create_new_trial` after a lost
   response could leave one extra RUNNING trial, which `reconcile` settles on resume.
"""
from __future__ import annotations

import functools
import logging
import random
import time

import optuna
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from sqlalchemy.exc import DBAPIError, PendingRollbackError

log = logging.getLogger(__name__)
RETRY_S = 120.0
RETRIES = {"calls": 0, "attempts": 0}   # this process's retried calls (tests and logs read it)
_REAL_URLS: dict[str, str] = {}
_READS = ("get_all_studies", "get_all_trials", "get_best_trial", "get_n_trials", "get_study_directions",
          "get_study_id_from_name", "get_study_name_from_id", "get_study_system_attrs", "get_study_user_attrs",
          "get_trial", "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id", "get_trial_param",
          "get_trial_params", "get_trial_system_attrs", "get_trial_user_attrs", "check_trial_is_updatable")
_WRITES = ("create_new_study", "create_new_trial", "set_study_system_attr", "set_study_user_attr",
           "set_trial_intermediate_value", "set_trial_param", "set_trial_state_values", "set_trial_system_attr",
           "set_trial_user_attr")
# what Optuna's _CachedStorage (which wraps every RDBStorage a study uses) calls besides the above
_PRIVATE = ("_create_new_trial", "_get_best_trial_id", "_get_trials", "_set_trial_param")


def _transient(exc: BaseException) -> bool:
    from storage.engine import is_transient
    cause = exc.__cause__ if isinstance(exc, StorageInternalError) else exc
    # PendingRollbackError: the thread's session still holds a connection the restart broke;
    # dropping the session (below) clears it
    return isinstance(cause, PendingRollbackError) or (isinstance(cause, DBAPIError) and is_transient(cause))


def _retrying(name: str, fn):
    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        deadline = time.monotonic() + RETRY_S
        attempt = 0
        while True:
            try:
                return fn(self, *args, **kwargs)
            except UpdateFinishedTrialError:
                # a state update whose first attempt committed but whose answer was lost
                if attempt and name == "set_trial_state_values":
                    trial = self.get_trial(args[0])
                    if trial.state == (args[1] if len(args) > 1 else kwargs.get("state")):
                        return True
                raise
            except Exception as e:  # noqa: BLE001 - only transient database errors are retried
                if not _transient(e) or time.monotonic() > deadline:
                    raise
                try:
                    self.remove_session()  # a fresh session (and pooled connection) next attempt
                except Exception:  # noqa: BLE001 - closing a broken session may fail; the retry decides
                    pass
                attempt += 1
                RETRIES["attempts"] += 1
                if attempt == 1:
                    RETRIES["calls"] += 1
                    log.warning("Optuna storage: %s failed (%s); retrying for up to %.0f s",
                                name, str(e.__cause__ or e).splitlines()[0][:200], RETRY_S)
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    return call


class PasswordFreeRDBStorage(optuna.storages.RDBStorage):
    """See the module docstring (the name says the first promise; it keeps the second too)."""

    def __getstate__(self):
        state = super().__getstate__()
        from storage.engine import hide
        masked = hide(self.url)
        if masked != self.url:
            _REAL_URLS[masked] = self.url
            state["url"] = masked
        return state

    def __setstate__(self, state):
        url = _REAL_URLS.get(state.get("url"))
        super().__setstate__({**state, "url": url} if url else state)


for _name in _READS + _WRITES + _PRIVATE:
    setattr(PasswordFreeRDBStorage, _name, _retrying(_name, getattr(optuna.storages.RDBStorage, _name)))
