"""Alembic, run by code: `upgrade head` whenever a Store opens a database.

The migration scripts ship inside the package (`script_location = "storage:migrations"`, found
through importlib.resources, no alembic.ini needed) and record their revision in
`hnas_alembic_version`, so Optuna's own `alembic_version` in the same database is never touched.
Autogenerate only looks at `hnas_*` tables (env.py), so it never proposes dropping Optuna's.

Several processes may open a fresh database at once: the upgrade runs inside one write
transaction holding a lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory
lock), and Alembic re-reads the version inside it, so exactly one of them creates the tables."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .models import PREFIX

VERSION_TABLE = "hnas_alembic_version"
_ADVISORY_KEY = 0x686E6173  # "hnas"


def include_name(name, type_, parent_names) -> bool:
    """Autogenerate filter: Optuna's tables share the database; never see nor drop them."""
    if type_ == "table":
        return name.startswith(PREFIX)
    return True


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "storage:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _locked(engine: Engine, fn):
    with engine.connect() as conn:
        conn = conn.execution_options(hnas_write=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            fn(conn)


def known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return False


class NewerSchema(Exception):
    """The database's schema revision is one this version of the code does not know."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    cur = current(engine)
    if revision == "head" and cur == head():
        return  # the common case: no lock, no write
    if cur is not None and not known(cur):
        # written by a newer hybrid-nas: alembic would fail with "Can't locate revision"
        raise NewerSchema(cur)
    _locked(engine, lambda conn: command.upgrade(config(conn), revision))


def downgrade(engine: Engine, revision: str) -> None:
    _locked(engine, lambda conn: command.downgrade(config(conn), revision))

