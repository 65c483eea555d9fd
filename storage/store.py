"""`Store`: the public face of storage. Everything the orchestrator writes and the dashboard and
export read goes through it.

Design choices
- A Store is a URL plus lazily made per-process engines (`storage.engine`); pickling it (to a Ray
  worker) carries only the URL and options, and the worker opens its own connection pool.
- Opening runs Alembic `upgrade head` (`storage.migrate`), so a new database needs no set-up and an
  old one is brought up to date. Read-only commands may pass `create=False` so that a mistyped
  SQLite path is an error instead of a new empty file.
- Every write is one transaction of upserts on natural keys (study name, architecture
  fingerprint, (study, trial number), (trial, curve, step)) through the dialect's
  `INSERT ... ON CONFLICT`, retried on transient errors. Re-running any write, or all of them, leaves
  the same rows: a retried write never duplicates and a lost response never loses a row.
- Writes to a study's trials bump `hnas_studies.revision` in the same transaction, first (so the
  writers of one study are serialized on that row, always in the same order: no deadlocks) and
  stamp the rows they write with it (`rev`: incremental reads); `last_modified()` reads just that
  integer for the dashboard's live refresh.
- Reads return plain Python / pandas. Metric dicts are parsed from TEXT JSON with NaN/Infinity
  tokens (see `storage.models`), so non-finite values come back as float nan/inf.
- Pareto fronts and hypervolumes use Optuna's own code (`optuna.study._multi_objective.
  _is_pareto_front`, `optuna._hypervolume.compute_hypervolume`); see `storage.pareto`.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError

from . import migrate
from .engine import (DEFAULT_URL, EngineHolder, Retrying, hide, normalize_url,
                     translate_errors)
from .errors import StoreError
from .models import METRIC_COLUMNS, architectures, curves, studies, trials

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from search_space.genome import Architecture
    from search_space.result import TrialResult

STUDY_STATUSES = ("created", "running", "paused", "interrupted", "complete", "failed")
TRIAL_STATUSES = ("running", "complete", "failed", "pruned")
DIRECTIONS = ("minimize", "maximize")

__all__ = ["Store", "Study", "StudySummary", "DEFAULT_URL", "STUDY_STATUSES", "TRIAL_STATUSES",
           "normalize_url"]


# ----------------------------------------------------------------------------- value types
@dataclass(frozen=True)
class Study:
    name: str
    status: str
    objectives: list[tuple[str, str]]          # [(metric, "minimize" | "maximize"), ...]
    constraints: list[str]                     # metric names whose constraint value must be <= 0
    config_yaml: str
    attrs: dict
    created_at: datetime
    updated_at: datetime
    revision: int


@dataclass(frozen=True)
class StudySummary:
    name: str
    status: str
    objectives: list[tuple[str, str]]
    n_trials: dict[str, int] = field(default_factory=dict)  # status -> count (all TRIAL_STATUSES)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0

    @property
    def total(self) -> int:
        return sum(self.n_trials.values())


# ----------------------------------------------------------------------------- helpers
def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; we only ever write UTC.
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def dumps(obj: Any) -> str:
    """JSON with NaN/Infinity/-Infinity tokens for non-finite floats (Python's json default)."""
    return json.dumps(obj, allow_nan=True, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _floats(d: dict | None, where: str) -> dict[str, float]:
    out = {}
    for k, v in (d or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise StoreError(f"{where}.{k}: not a number ({v!r})") from None
    return out


def _check_objectives(objectives: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for i, item in enumerate(objectives):
        try:
            name, direction = item
        except (TypeError, ValueError):
            raise StoreError(f"objectives[{i}]: expected (metric, direction), got {item!r}") from None
        if direction not in DIRECTIONS:
            raise StoreError(f"objectives[{i}].direction: {direction!r} is not one of {list(DIRECTIONS)}")
        out.append((str(name), str(direction)))
    if not out:
        raise StoreError("objectives: at least one objective is needed")
    return out


def _encode_point(value: float) -> tuple[float | None, int]:
    value = float(value)
    if math.isfinite(value):
        return value, 0
    if math.isnan(value):
        return None, 3
    return None, 1 if value > 0 else 2


_KIND_VALUE = {1: math.inf, 2: -math.inf, 3: math.nan}


# ----------------------------------------------------------------------------- the store
class _StaleStudyId(Exception):
    """A cached study id matched no row: the study was deleted (and perhaps re-created)."""


class Store:
    """One SQL store. `url`: None (SQLite file `hybrid-nas.db` here), a path, `sqlite:///path`,
    `postgresql+psycopg://user:pw@host:5432/db` (`postgresql://` is normalized to psycopg 3).

    Raises StoreError (a UserError: one line, CLI exit 2) for a bad URL, an unreachable server, a
    file that is not a database, or (with `create=False`) a SQLite file that does not exist."""

    def __init__(self, url: str | URL | None = None, *, create: bool = True, busy_timeout_ms: int = 30_000,
                 retry_attempts: int = 12, connect: bool = True):
        self.url: URL = normalize_url(url)
        self._opts = dict(create=create, busy_timeout_ms=busy_timeout_ms, retry_attempts=retry_attempts)
        self._holder = EngineHolder(self.url, busy_timeout_ms=busy_timeout_ms)
        self._retry = Retrying(attempts=retry_attempts)
        self._study_ids: dict[str, int] = {}
        self._arch_cache: dict[str, dict] = {}
        self._opened_pid: int | None = None
        if connect:
            self._open()

    # -- process-local plumbing ---------------------------------------------------------
    def __getstate__(self):
        # Only the URL (with its password: the worker must connect) and options travel.
        return {"url": self.url.render_as_string(hide_password=False), "opts": self._opts}

    def __setstate__(self, state):
        self.__init__(state["url"], connect=False, **state["opts"])

    def __repr__(self) -> str:
        return f"Store({hide(self.url)!r})"

    @property
    def retries(self) -> int:
        """How many transient failures (reads and writes) this Store object retried in this process."""
        return self._retry.retries

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def _open(self):
        if self._opened_pid == os.getpid():
            return
        if self.dialect == "sqlite" and not self._opts["create"]:
            path = self.url.database
            if not os.path.exists(path):
                raise StoreError(f"no database file at {path!r} ({hide(self.url)})")
        with translate_errors(self.url, "open storage"):
            # Connect once: an unreachable server is reported at once (not retried), while a
            # lock held by another process switching SQLite to WAL, or a connection dropped
            # right after it was made, is retried.
            probe = lambda: self._holder.get().connect().close()  # noqa: E731
            self._retry.call(probe, "open storage", self.url, connecting=True)
            if not self._opts["create"]:
                # read-only use: never put our tables into a database that has none of them
                rev = self._retry.call(lambda: migrate.current(self._holder.get()), "read the schema", self.url)
                if rev is None:
                    raise StoreError(f"no hybrid-nas store in {hide(self.url)} (no hnas_* tables; a search creates them)")
            # ...while the upgrade, racing other processes, retries like any write.
            try:
                self._retry.call(lambda: migrate.upgrade(self._holder.get()), "upgrade the schema", self.url)
            except migrate.NewerSchema as e:
                raise StoreError(f"the store in {hide(self.url)} has schema revision {e.args[0]!r}, newer than this "
                                 f"hybrid-nas knows (up to {migrate.head()!r}): upgrade hybrid-nas") from None
        self._opened_pid = os.getpid()

    def engine(self):
        """This process's SQLAlchemy engine, schema at head (for tests and one-off maintenance;
        writes through it bypass the retries and the change counter)."""
        self._open()
        return self._holder.get()

    _engine = engine  # older name, used by tests of other areas

    def _write(self, fn, what: str):
        self._open()
        with translate_errors(self.url, what):
            try:
                return self._retry.run(self._holder.get, fn, what, self.url)
            except (IntegrityError, _StaleStudyId):
                if not self._study_ids:
                    raise
                # A cached study id went stale (the study was deleted, perhaps re-created, by
                # another process): look the names up again and run the write once more.
                self._study_ids.clear()
                return self._retry.run(self._holder.get, fn, what, self.url)

    def _read(self, fn, what: str = "read storage"):
        self._open()

        def once():
            with self._holder.get().connect() as conn:
                return fn(conn)
        # Reads retry too: a dashboard must not die because a connection dropped.
        with translate_errors(self.url, what):
            return self._retry.call(once, what, self.url)

    def _insert(self, table):
        return (pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)(table)

    def close(self) -> None:
        """Dispose of this process's connection pool (the Store can be used again later)."""
        self._holder.dispose()
        self._opened_pid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def schema_revision(self) -> str | None:
        """The Alembic revision of the `hnas_*` tables (None before the first upgrade)."""
        with translate_errors(self.url):
            return migrate.current(self._holder.get())

    # -- studies -----------------------------------------------------------------------
    def _study_id(self, conn: Connection, name: str) -> int:
        sid = self._study_ids.get(name)
        if sid is None:
            sid = conn.execute(select(studies.c.id).where(studies.c.name == name)).scalar()
            if sid is None:
                raise StoreError(f"no study named {name!r} in {hide(self.url)}")
            self._study_ids[name] = sid
        return sid

    def create_study(self, name: str, config_yaml: str = "", objectives: Sequence[tuple[str, str]] = (),
                     constraints: Sequence[str] | None = None, *, resume: bool = False,
                     attrs: dict | None = None, status: str = "running") -> Study:
        """Create a study, or return the existing one.

        An existing study with the same name: its objectives (names and directions) must match,
        always (StoreError otherwise). If `resume` is False and its config differs, StoreError
        (the name is taken); if `resume` is True the stored config, constraints and attrs are
        replaced by the new ones and the status set to `status`. Creating the same study twice
        with identical arguments is a no-op, so a retried create is safe."""
        if not name or len(name) > 200:
            raise StoreError(f"study name must be 1-200 characters (got {name!r})")
        objs = _check_objectives(objectives)
        if status not in STUDY_STATUSES:
            raise StoreError(f"study status {status!r} is not one of {list(STUDY_STATUSES)}")
        cons = [str(c) for c in (constraints or [])]
        now = _now()
        row = dict(name=name, status=status, config_yaml=config_yaml or "", objectives=dumps(objs),
                   constraints=dumps(cons), attrs=dumps(attrs or {}), revision=0, created_at=now, updated_at=now)

        def fn(conn):
            conn.execute(self._insert(studies).values(**row).on_conflict_do_nothing(index_elements=["name"]))
            cur = conn.execute(select(studies).where(studies.c.name == name)).mappings().one()
            if [tuple(o) for o in json.loads(cur["objectives"])] != objs:
                raise StoreError(f"study {name!r} exists with objectives {json.loads(cur['objectives'])}, "
                                 f"not {[list(o) for o in objs]}: pick another name")
            same = (cur["config_yaml"] == row["config_yaml"] and cur["constraints"] == row["constraints"])
            if not same:
                if not resume:
                    raise StoreError(f"study {name!r} already exists with a different config: resume it "
                                     "or pick another name")
                conn.execute(update(studies).where(studies.c.id == cur["id"]).values(
                    config_yaml=row["config_yaml"], constraints=row["constraints"], attrs=row["attrs"],
                    status=status, updated_at=now))
            elif resume and cur["status"] != status:
                conn.execute(update(studies).where(studies.c.id == cur["id"]).values(status=status, updated_at=now))
            return cur["id"]

        self._study_ids[name] = self._write(fn, "create study")
        return self.get_study(name)

    def get_study(self, name: str) -> Study:
        """The study `name`; StoreError if there is none."""
        def fn(conn):
            r = conn.execute(select(studies).where(studies.c.name == name)).mappings().one_or_none()
            if r is None:
                raise StoreError(f"no study named {name!r} in {hide(self.url)}")
            return Study(name=r["name"], status=r["status"],
                         objectives=[tuple(o) for o in json.loads(r["objectives"])],
                         constraints=list(json.loads(r["constraints"])), config_yaml=r["config_yaml"],
                         attrs=loads(r["attrs"]), created_at=_utc(r["created_at"]),
                         updated_at=_utc(r["updated_at"]), revision=int(r["revision"]))
        return self._read(fn)

    def list_studies(self) -> list[StudySummary]:
        """All studies, newest first, with their trial counts per status."""
        def fn(conn):
            counts: dict[int, dict[str, int]] = {}
            q = select(trials.c.study_id, trials.c.status, func.count()).group_by(trials.c.study_id, trials.c.status)
            for sid, st, n in conn.execute(q):
                counts.setdefault(sid, {})[st] = int(n)
            out = []
            for r in conn.execute(select(studies).order_by(studies.c.created_at.desc(), studies.c.id.desc())).mappings():
                n = {s: 0 for s in TRIAL_STATUSES}
                n.update(counts.get(r["id"], {}))
                out.append(StudySummary(name=r["name"], status=r["status"],
                                        objectives=[tuple(o) for o in json.loads(r["objectives"])], n_trials=n,
                                        created_at=_utc(r["created_at"]), updated_at=_utc(r["updated_at"]),
                                        revision=int(r["revision"])))
            return out
        return self._read(fn)

    def set_study_status(self, name: str, status: str) -> None:
        """Set a study's status (one of STUDY_STATUSES)."""
        if status not in STUDY_STATUSES:
            raise StoreError(f"study status {status!r} is not one of {list(STUDY_STATUSES)}")

        def fn(conn):
            sid = self._study_id(conn, name)
            conn.execute(update(studies).where(studies.c.id == sid).values(
                status=status, updated_at=_now(), revision=studies.c.revision + 1))
        self._write(fn, "set study status")

    def delete_study(self, name: str) -> None:
        """Delete a study with its trials and curves (architectures stay: they are shared)."""
        def fn(conn):
            sid = self._study_id(conn, name)
            conn.execute(studies.delete().where(studies.c.id == sid))
        self._write(fn, "delete study")
        self._study_ids.pop(name, None)

    def last_modified(self, name: str) -> int:
        """A counter that grows with every write to the study (trials, curves, status): one
        indexed integer read, cheap enough to poll every second."""
        def fn(conn):
            rev = conn.execute(select(studies.c.revision).where(studies.c.name == name)).scalar()
            if rev is None:
                raise StoreError(f"no study named {name!r} in {hide(self.url)}")
            return int(rev)
        return self._read(fn)

    # -- architectures -------------------------------------------------------------------
    def _arch_row(self, arch: "Architecture") -> dict:
        # YAML and analytic costs cost milliseconds; a search writes the same few architectures
        # many times (every start, every retry), so rows are cached by fingerprint per Store.
        fp = arch.fingerprint()
        row = self._arch_cache.get(fp)
        if row is None:
            from search_space.metrics import analytic_metrics
            if len(self._arch_cache) >= 4096:
                self._arch_cache.clear()
            row = self._arch_cache[fp] = dict(
                fingerprint=fp, name=arch.name, yaml=arch.to_yaml(), pattern=arch.pattern(), d_model=arch.d_model,
                n_layers=len(arch.flat_blocks()), **analytic_metrics(arch))
        return dict(row, created_at=_now())

    def _upsert_arch(self, conn: Connection, row: dict) -> int:
        # do_update (to the same value) rather than do_nothing, so RETURNING always yields the id.
        stmt = self._insert(architectures).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["fingerprint"],
                                          set_={"fingerprint": stmt.excluded.fingerprint})
        return conn.execute(stmt.returning(architectures.c.id)).scalar_one()

    def upsert_architecture(self, arch: "Architecture") -> str:
        """Store an architecture (YAML, pattern, analytic costs) once per fingerprint; returns it."""
        row = self._arch_row(arch)
        self._write(lambda conn: self._upsert_arch(conn, row), "store architecture")
        return row["fingerprint"]

    # -- trials ---------------------------------------------------------------------------
    def _bump(self, conn: Connection, sid: int) -> int:
        """Bump the study's revision and return it. Every write to a study's trials does this
        FIRST: writers to one study then hold its revision row for their whole transaction, so
        they never wait on each other in opposite orders (no deadlocks), and the rows they write
        carry the new revision (`rev`), whose order is their commit order."""
        rev = conn.execute(update(studies).where(studies.c.id == sid).values(
            revision=studies.c.revision + 1, updated_at=_now()).returning(studies.c.revision)).scalar()
        if rev is None:  # the cached id names a study deleted since (maybe re-created): `_write` retries
            raise _StaleStudyId(sid)
        return rev

    def _upsert_trial(self, conn: Connection, row: dict, *, keep_complete: bool) -> int:
        stmt = self._insert(trials).values(**row)
        set_ = {k: getattr(stmt.excluded, k) for k in row if k not in ("study_id", "number")}
        where = (trials.c.status != "complete") if keep_complete else None
        stmt = stmt.on_conflict_do_update(index_elements=["study_id", "number"], set_=set_, where=where)
        tid = conn.execute(stmt.returning(trials.c.id)).scalar()
        if tid is None:  # the conflict update was skipped by `where`: the row exists
            tid = conn.execute(select(trials.c.id).where(trials.c.study_id == row["study_id"],
                                                         trials.c.number == row["number"])).scalar_one()
        return tid

    def start_trial(self, study: str, number: int, arch: "Architecture | None" = None, fidelity: str = "",
                    seed: int | None = None, node: str | None = None, device: str | None = None,
                    params: dict | None = None) -> None:
        """Record that trial `number` of `study` is running (upsert by (study, number)).

        Starting a trial again (a restart after a worker died) resets it to running, except a
        trial already `complete`: a late or duplicated start never wipes a finished result."""
        arow = self._arch_row(arch) if arch is not None else None
        now = _now()

        def fn(conn):
            sid = self._study_id(conn, study)
            rev = self._bump(conn, sid)
            row = dict(study_id=sid, number=int(number), status="running", fidelity=fidelity or "",
                       seed=seed, node=node, device=device, params=dumps(params or {}), error=None,
                       started_at=now, finished_at=None, updated_at=now, rev=rev)
            if arow is not None:
                row["architecture_id"] = self._upsert_arch(conn, arow)
            self._upsert_trial(conn, row, keep_complete=True)
        self._write(fn, "start trial")

    def finish_trial(self, study: str, number: int, result: "TrialResult",
                     constraints: dict[str, float] | None = None, *, arch: "Architecture | None" = None,
                     node: str | None = None, params: dict | None = None) -> None:
        """Record a trial's result (upsert; idempotent) together with its curves.

        Status comes from `result.status` (complete / failed / pruned). Stored metrics are
        `result.analytic`, `result.measured`, `result.metrics` merged in that order, plus
        `wall_time_s`, plus the architecture's analytic costs where missing. `feasible` is True
        when every constraint value is <= 0 (Optuna's convention), None when there are none; a NaN
        constraint value is infeasible. `arch`, `node` and `params` are only needed when
        `start_trial` was never recorded (they are kept from it otherwise)."""
        self.finish_trials(study, [(number, result, constraints, arch)], node=node, params=params)

    def finish_trials(self, study: str, items: Iterable[tuple], *, node: str | None = None,
                      params: dict | None = None, chunk: int = 1000) -> int:
        """`finish_trial` for many trials: items are `(number, result[, constraints[, arch]])`.
        One transaction per `chunk` trials with multi-row upserts (imports, seeding a study, the
        benchmark). Returns the number of trials written."""
        batch, n = [], 0
        for item in items:
            batch.append(self._finish_row(*item))
            if len(batch) >= chunk:
                n += self._write_finished(study, batch, node, params)
                batch = []
        if batch:
            n += self._write_finished(study, batch, node, params)
        return n

    def _finish_row(self, number: int, result: "TrialResult", constraints: dict | None = None,
                    arch: "Architecture | None" = None) -> tuple[dict, dict, dict | None, list]:
        if result.status not in ("complete", "failed", "pruned"):
            raise StoreError(f"trial {number}: status {result.status!r} is not complete, failed or pruned")
        cons = _floats(constraints, f"trial {number} constraints")
        analytic, measured = _floats(result.analytic, "analytic"), _floats(result.measured, "measured")
        metrics = {**analytic, **measured, **_floats(result.metrics, f"trial {number} metrics")}
        metrics.setdefault("wall_time_s", float(result.wall_time_s))
        row = dict(number=int(number), status=result.status, fidelity=result.fidelity or "", seed=int(result.seed),
                   device=result.device or None, backend=dumps(result.backend or {}),
                   task_scores=dumps(_floats(result.task_scores, "task_scores")), measured=dumps(measured),
                   analytic=dumps(analytic), constraints=dumps(cons), extra=dumps(result.extra or {}),
                   feasible=None if not cons else all(v <= 0 for v in cons.values()),  # NaN <= 0 is False
                   error=result.error, wall_time_s=float(result.wall_time_s))
        # a result that does not say its fidelity or device keeps what start_trial recorded
        for k in ("fidelity", "device"):
            if not row[k]:
                del row[k]
        points = [(name, int(s), *_encode_point(v)) for name, pts in (result.curves or {}).items() for s, v in pts]
        return row, metrics, self._arch_row(arch) if arch is not None else None, points

    def _write_finished(self, study: str, batch: list, node: str | None, params: dict | None) -> int:
        numbers = [row["number"] for row, *_ in batch]

        def fn(conn):
            sid = self._study_id(conn, study)
            rev = self._bump(conn, sid)
            now = _now()
            arch_ids = {a["fingerprint"]: self._upsert_arch(conn, a)
                        for a in {a["fingerprint"]: a for _, _, a, _ in batch if a is not None}.values()}
            # analytic costs of trials whose architecture came with start_trial
            known = {}
            if any(a is None for _, _, a, _ in batch):
                q = (select(trials.c.number, *[architectures.c[k] for k in ANALYTIC_COLUMNS])
                     .join(architectures, trials.c.architecture_id == architectures.c.id)
                     .where(trials.c.study_id == sid, trials.c.number.in_(numbers)))
                known = {r[0]: dict(zip(ANALYTIC_COLUMNS, r[1:])) for r in conn.execute(q)}
            groups: dict[tuple, list[dict]] = {}
            for row, metrics, arow, _ in batch:
                row = dict(row, study_id=sid, finished_at=now, updated_at=now, rev=rev)
                costs = arow if arow is not None else known.get(row["number"])
                m = dict(metrics)
                for k in ANALYTIC_COLUMNS if costs else ():
                    m.setdefault(k, float(costs[k]))
                row["metrics"] = dumps(m)
                for k in METRIC_COLUMNS:  # the query copy: NaN and missing are NULL, +-inf kept
                    v = m.get(k)
                    row[f"m_{k}"] = None if v is None or math.isnan(v) else v
                if arow is not None:
                    row["architecture_id"] = arch_ids[arow["fingerprint"]]
                if node is not None:
                    row["node"] = node
                if params is not None:
                    row["params"] = dumps(params)
                groups.setdefault(tuple(row), []).append(row)  # executemany needs one key set
            for keys, rows in groups.items():
                stmt = self._insert(trials)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["study_id", "number"],
                    set_={k: getattr(stmt.excluded, k) for k in keys if k not in ("study_id", "number")})
                conn.execute(stmt, rows)
            with_points = [(row["number"], pts) for row, _, _, pts in batch if pts]
            if with_points:
                ids = dict(conn.execute(select(trials.c.number, trials.c.id).where(
                    trials.c.study_id == sid, trials.c.number.in_([n for n, _ in with_points]))).all())
                self._upsert_points(conn, None, [(ids[n], *p) for n, pts in with_points for p in pts])
            return len(batch)
        return self._write(fn, "finish trial" if len(batch) == 1 else "finish trials")

    def record_trial_failure(self, study: str, number: int, error: str) -> None:
        """Mark a trial failed with `error` (upsert: creates the row if the start was never stored)."""
        now = _now()

        def fn(conn):
            sid = self._study_id(conn, study)
            rev = self._bump(conn, sid)
            row = dict(study_id=sid, number=int(number), status="failed", error=str(error),
                       finished_at=now, updated_at=now, rev=rev)
            self._upsert_trial(conn, row, keep_complete=False)
        self._write(fn, "record trial failure")

    def _upsert_points(self, conn: Connection, tid: int | None, points: list[tuple]):
        """points: (name, step, value, kind) for trial `tid`, or (trial_id, name, ...) if tid is None."""
        if tid is not None:
            points = [(tid, *p) for p in points]
        rows = [dict(trial_id=t, name=n, step=s, value=v, value_kind=k) for t, n, s, v, k in points]
        stmt = self._insert(curves)
        stmt = stmt.on_conflict_do_update(index_elements=["trial_id", "name", "step"],
                                          set_={"value": stmt.excluded.value, "value_kind": stmt.excluded.value_kind})
        conn.execute(stmt, rows)

    def add_curve_points(self, study: str, number: int, name: str, points: Iterable[tuple[int, float]]) -> None:
        """Add (step, value) points to curve `name` of a trial (upsert by (trial, name, step)).
        The trial must exist (start_trial first)."""
        pts = [(str(name), int(s), *_encode_point(v)) for s, v in points]
        if not pts:
            return

        def fn(conn):
            sid = self._study_id(conn, study)
            self._bump(conn, sid)
            tid = conn.execute(select(trials.c.id).where(trials.c.study_id == sid,
                                                         trials.c.number == int(number))).scalar()
            if tid is None:
                raise StoreError(f"study {study!r} has no trial {number}: start it before adding curve points")
            self._upsert_points(conn, tid, pts)
        self._write(fn, "add curve points")

    # -- reads ----------------------------------------------------------------------------
    def count_trials(self, study: str, status: str | Sequence[str] | None = None) -> int:
        """Number of trials of `study`, optionally only those with `status` (one or several)."""
        def fn(conn):
            q = select(func.count()).select_from(trials).where(trials.c.study_id == self._study_id(conn, study))
            if status is not None:
                q = q.where(trials.c.status.in_([status] if isinstance(status, str) else list(status)))
            return int(conn.execute(q).scalar_one())
        return self._read(fn)

    def trial(self, study: str, number: int) -> dict:
        """Everything stored about one trial, as a dict (metric dicts parsed, datetimes in UTC)."""
        def fn(conn):
            sid = self._study_id(conn, study)
            q = (select(trials, architectures.c.fingerprint, architectures.c.pattern, architectures.c.yaml)
                 .select_from(trials.outerjoin(architectures, trials.c.architecture_id == architectures.c.id))
                 .where(trials.c.study_id == sid, trials.c.number == int(number)))
            r = conn.execute(q).mappings().one_or_none()
            if r is None:
                raise StoreError(f"study {study!r} has no trial {number}")
            d = dict(r)
            for k in JSON_COLUMNS:
                d[k] = loads(d[k])
            for k in ("started_at", "finished_at", "updated_at"):
                d[k] = _utc(d[k])
            d["architecture_yaml"] = d.pop("yaml")
            d.pop("id"), d.pop("study_id"), d.pop("architecture_id")
            d["study"] = study
            return d
        return self._read(fn)

    def trial_yaml(self, study: str, number: int) -> str:
        """The architecture YAML of a trial (StoreError if the trial or its architecture is missing)."""
        y = self.trial(study, number)["architecture_yaml"]
        if y is None:
            raise StoreError(f"trial {number} of study {study!r} has no architecture stored")
        return y

    def curves(self, study: str, number: int) -> dict[str, list[tuple[int, float]]]:
        """Curves of a trial: name -> [(step, value), ...] by step (nan/inf restored)."""
        def fn(conn):
            sid = self._study_id(conn, study)
            tid = conn.execute(select(trials.c.id).where(trials.c.study_id == sid,
                                                         trials.c.number == int(number))).scalar()
            if tid is None:
                raise StoreError(f"study {study!r} has no trial {number}")
            out: dict[str, list[tuple[int, float]]] = {}
            q = (select(curves.c.name, curves.c.step, curves.c.value, curves.c.value_kind)
                 .where(curves.c.trial_id == tid).order_by(curves.c.name, curves.c.step))
            for name, step, value, kind in conn.execute(q):
                out.setdefault(name, []).append((int(step), float(value) if kind == 0 else _KIND_VALUE[kind]))
            return out
        return self._read(fn)

    def trials_frame(self, study: str, status: str | Sequence[str] | None = None,
                     since_revision: int | None = None) -> "pd.DataFrame":
        """One row per trial, ordered by number. Columns: number, status, fingerprint, pattern,
        fidelity, seed, device, backend (dict), node, feasible, error, started_at, finished_at,
        updated_at, rev, wall_time_s, every metric of `search_space.metrics.METRICS` (nan where
        missing), then any other stored metric, then `task:<name>` per task score.
        `since_revision`: only trials written after that study revision (see `IncrementalTrials`)."""
        from .frames import trials_frame
        return self._read(lambda conn: trials_frame(conn, self._study_id(conn, study), status, since_revision))

    def pareto_front(self, study: str, objectives: Sequence[tuple[str, str]]) -> "pd.DataFrame":
        """Trials on the Pareto front for 2 or 3 (or more) objectives with mixed directions:
        complete and feasible trials only, NaN values excluded. Columns: number, fingerprint,
        pattern, then one per objective; sorted by the first objective (best first)."""
        from .pareto import pareto_front
        objs = _check_objectives(objectives)
        return self._read(lambda conn: pareto_front(conn, self._study_id(conn, study), objs))

    def hypervolume_history(self, study: str, objectives: Sequence[tuple[str, str]] | None = None,
                            reference_point: Sequence[float] | None = None) -> "pd.DataFrame":
        """Hypervolume of the feasible front after each completed trial (by trial number), in
        the objectives' own units (a maximized objective's reference is a lower bound). Columns:
        number, hypervolume. `objectives` defaults to the study's. `reference_point` defaults to
        the nadir of all complete feasible finite points pushed out by 10% of each range."""
        from .pareto import hypervolume_history
        objs = _check_objectives(objectives or self.get_study(study).objectives)
        if reference_point is not None and len(reference_point) != len(objs):
            raise StoreError(f"reference_point has {len(reference_point)} values for {len(objs)} objectives")
        return self._read(lambda conn: hypervolume_history(conn, self._study_id(conn, study), objs, reference_point))


ANALYTIC_COLUMNS = ("params_total", "params_active", "flops_per_token", "cache_mib_2k", "cache_mib_8k", "cache_mib_32k")
JSON_COLUMNS = ("backend", "params", "metrics", "task_scores", "measured", "analytic", "constraints", "extra")
