"""Engines, transactions and retries: the one place that knows the two dialects.

Design choices
- A URL picks the database. `None` means the SQLite file `hybrid-nas.db` in the working directory;
  a bare path (no `://`) is a SQLite file too; `postgresql://` and `postgres://` are normalized to
  psycopg 3 (`postgresql+psycopg://`). Other schemes and drivers are refused with one line.
- Engines are made lazily in the process that uses them (`Store` pickles only its URL), and a
  forked child never reuses its parent's pool (checked by pid).
- SQLite: WAL (readers never block the writer), `busy_timeout`, foreign keys on, synchronous
  NORMAL, and SQLAlchemy's pysqlite recipe: the driver's own transaction handling is switched off
  and a `begin` listener emits `BEGIN IMMEDIATE` for writers (plain deferred `BEGIN` for readers),
  so a writer takes the write lock up front instead of failing mid-transaction on an upgrade.
- PostgreSQL: psycopg 3, `pool_pre_ping`, a connect timeout, `application_name=hybrid-nas`.
- `write()` runs a function in one write transaction and retries transient failures (locked
  database, dropped connection, serialization failure, deadlock, server shutdown) with jittered
  exponential backoff. Every write of the store is an upsert on a natural key, so re-running a
  transaction whose commit did happen (lost response) changes nothing.
- Messages show URLs only through `hide_password`."""
from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from .errors import StoreError

DEFAULT_URL = "sqlite:///hybrid-nas.db"
T = TypeVar("T")

# PostgreSQL SQLSTATEs worth retrying: connection exceptions (08), transaction rollbacks such as
# serialization failure and deadlock (40), operator intervention: terminated backend, shutdown (57P).
_PG_TRANSIENT_PREFIXES = ("08", "40", "57P", "53300")


def _mask(text: str) -> str:
    """Hide a password in a URL we could not even parse."""
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)


def hide(url: URL | str) -> str:
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _mask(url)


def normalize_url(url: str | URL | None) -> URL:
    """Parse and check a storage URL; raise StoreError (one line) if we cannot use it."""
    if isinstance(url, URL):
        u = url
    else:
        text = (url or "").strip() or DEFAULT_URL
        if "://" not in text:
            if text == ":memory:":
                raise StoreError("in-memory SQLite cannot be shared between processes: give a file path")
            return URL.create("sqlite", database=text)
        try:
            u = make_url(text)
        except (ArgumentError, ValueError) as e:
            raise StoreError(f"bad storage URL {_mask(text)!r}: {e}; expected sqlite:///path/file.db "
                             "or postgresql+psycopg://user@host:5432/db") from None
    backend, _, driver = u.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if u.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise StoreError(f"unsupported PostgreSQL driver {driver!r} in {hide(u)}: use postgresql+psycopg://")
        u = u.set(drivername="postgresql+psycopg")
        if not u.database:
            raise StoreError(f"storage URL {hide(u)} names no database (postgresql+psycopg://user@host/DB)")
    elif backend == "sqlite":
        if driver not in ("pysqlite", ""):
            raise StoreError(f"unsupported SQLite driver {driver!r} in {hide(u)}: use sqlite:///path")
        if not u.database or u.database == ":memory:":
            raise StoreError(f"storage URL {hide(u)} names no file: in-memory SQLite cannot be shared "
                             "between processes (use sqlite:///path/file.db)")
    else:
        raise StoreError(f"unsupported storage URL scheme {u.drivername!r} in {hide(u)}: "
                         "use sqlite:///path/file.db or postgresql+psycopg://user@host:5432/db")
    return u


def make_engine(url: URL, *, busy_timeout_ms: int = 30_000, connect_timeout_s: int = 10) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite recipe)
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                cur.execute("PRAGMA foreign_keys = ON")
                # journal_mode reads the file header: a non-database file fails here, at open.
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            write = conn.get_execution_options().get("hnas_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=2, max_overflow=8, pool_recycle=1800,
        connect_args={"connect_timeout": connect_timeout_s, "application_name": "hybrid-nas"})


# psycopg's words for "could not connect at all": wrong host/port, no such database, bad
# password, timeout. Not retried when opening, so an unreachable server is reported at once.
_CONNECT_FAILURES = ("connection failed", "connection refused", "could not connect", "timeout expired",
                     "does not exist", "authentication failed", "no such host", "name or service not known",
                     "invalid port", "connection is bad", "invalid connection option", "invalid dsn")


def is_transient(exc: BaseException, connecting: bool = False) -> bool:
    """Would running the same transaction again plausibly succeed?"""
    orig = getattr(exc, "orig", None)
    if connecting and any(s in str(orig or exc).lower() for s in _CONNECT_FAILURES):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith(_PG_TRANSIENT_PREFIXES)
    msg = str(orig or exc).lower()
    if "database is locked" in msg or "database table is locked" in msg or "busy" in msg:
        return True
    # psycopg without a SQLSTATE: the connection broke client-side. "another command is already
    # in progress": a connection left mid-command by a server restart (seen in the restart test);
    # a new connection from the pool runs the transaction again.
    return any(s in msg for s in ("connection", "server closed", "terminat", "consuming input failed",
                                  "sending query failed", "another command is already in progress"))


def one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class Retrying:
    """Counts retries; `retries` is read by tests and the benchmark to show retries happened."""

    def __init__(self, attempts: int = 12, base_s: float = 0.02, cap_s: float = 2.0):
        self.attempts, self.base_s, self.cap_s = attempts, base_s, cap_s
        self.retries = 0

    def call(self, fn: Callable[[], T], what: str, url: URL, connecting: bool = False) -> T:
        """Call `fn`, again after a transient failure (jittered exponential backoff)."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except DBAPIError as e:
                if not is_transient(e, connecting):
                    raise
                if attempt == self.attempts - 1:
                    raise StoreError(f"{what} failed after {self.attempts} attempts on {hide(url)}: "
                                     f"{one_line(e)}") from e
                self.retries += 1
                time.sleep(min(self.cap_s, self.base_s * 2 ** attempt) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self, engine_fn: Callable[[], Engine], fn: Callable[[Connection], T], what: str, url: URL) -> T:
        """Run `fn(conn)` in one write transaction, retried as a whole."""
        def once():
            with engine_fn().connect() as conn:
                conn = conn.execution_options(hnas_write=True)
                with conn.begin():
                    return fn(conn)
        return self.call(once, what, url)


@contextmanager
def translate_errors(url: URL, doing: str = "open storage"):
    """Turn driver errors met while opening a database into one-line StoreErrors."""
    try:
        yield
    except StoreError:
        raise
    except DBAPIError as e:
        raise StoreError(f"cannot {doing} {hide(url)}: {one_line(e)}") from None
    except (ImportError, ModuleNotFoundError) as e:
        raise StoreError(f"cannot {doing} {hide(url)}: database driver missing ({e})") from None


class EngineHolder:
    """One engine per (process, store): created on first use, recreated after a fork."""

    def __init__(self, url: URL, **engine_kw):
        self.url, self.engine_kw = url, engine_kw
        self._engine: Engine | None = None
        self._pid = None

    def get(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                # Forked child: drop the parent's pooled connections without closing them.
                self._engine.dispose(close=False)
            self._engine = make_engine(self.url, **self.engine_kw)
            self._pid = os.getpid()
        return self._engine

    def dispose(self):
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None
