"""Which database errors the Store retries (`storage.engine.is_transient`): the driver's own
exception objects as SQLAlchemy wraps them, with and without a SQLSTATE."""
from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from storage.engine import is_transient


def _op(orig: Exception) -> OperationalError:
    return OperationalError("INSERT ...", {}, orig)


@pytest.mark.parametrize("orig", [
    psycopg.OperationalError("server closed the connection unexpectedly"),
    psycopg.OperationalError("consuming input failed: EOF detected"),
    # a connection left mid-command by a server restart (tests/reliability/test_db_restart.py)
    psycopg.OperationalError("sending query failed: another command is already in progress"),
    pg.SerializationFailure("could not serialize access"),   # 40001
    pg.AdminShutdown("terminating connection due to administrator command"),  # 57P01
    sqlite3.OperationalError("database is locked"),
])
def test_transient(orig):
    assert is_transient(_op(orig))


def test_not_transient():
    assert not is_transient(_op(pg.UndefinedTable("relation does not exist")))  # 42P01
    assert not is_transient(IntegrityError("INSERT ...", {}, pg.UniqueViolation("duplicate key")))
    assert not is_transient(ProgrammingError("SELECT ...", {}, pg.SyntaxError("syntax error")))
    # an unreachable server is reported at once when opening, not retried
    refused = _op(psycopg.OperationalError("connection failed: Connection refused"))
    assert not is_transient(refused, connecting=True) and is_transient(refused)
