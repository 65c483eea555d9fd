"""Shared test set-up: one torch thread (CI has 2 cores shared with Ray and the database)."""
import os

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


# ---------------------------------------------------------------- databases (storage fixtures)
# `sqlite_url`: a fresh SQLite file per test. `postgres_url`: a fresh database per test on the
# server of HNAS_POSTGRES_URL (CREATE DATABASE ... TEMPLATE template0, dropped WITH (FORCE) after),
# so tests of several areas can share one server at the same time. `db_url`: both, ids
# "sqlite"/"postgres". Without a reachable server the postgres cases skip (one line), under CI fail.
import uuid  # noqa: E402

import pytest  # noqa: E402

POSTGRES_URL = os.environ.get("HNAS_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def _postgres_admin():
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except Exception as e:  # any failure to connect means "no server here"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        msg = f"PostgreSQL not reachable at {url.render_as_string(hide_password=True)}: {first}"
        if _in_ci():
            pytest.fail(msg + " (CI is set, so this is an error)", pytrace=False)
        pytest.skip(msg)
    yield url, conn
    conn.close()


@pytest.fixture
def postgres_url(_postgres_admin):
    url, conn = _postgres_admin
    name = f"hnas_t_{uuid.uuid4().hex[:12]}"
    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request):
    return request.getfixturevalue(f"{request.param}_url")
