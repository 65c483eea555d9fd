"""`hybrid-nas studies` and `hybrid-nas trials`: tables from a real store; user mistakes give one
line on stderr and exit code 2."""
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from search_space.result import TrialResult
from storage import Store

from store_helpers import make_arch

OBJ = [("quality", "maximize"), ("peak_memory_mib", "minimize")]


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, terminal_width=200)


@pytest.fixture
def filled(db_url):
    with Store(db_url) as s:
        s.create_study("demo", "space: x\n", OBJ)
        s.create_study("other", "", [("val_bpb", "minimize")])
        for n, (q, m) in enumerate([(0.5, 10.0), (0.9, 40.0), (0.7, math.inf)]):
            s.start_trial("demo", n, make_arch(n), fidelity="low")
            s.finish_trial("demo", n, TrialResult(status="complete", metrics={"quality": q, "peak_memory_mib": m},
                                                  device="cpu (2 cores)", wall_time_s=3.0))
        s.record_trial_failure("demo", 3, "CUDA out of memory")
        s.start_trial("demo", 4, make_arch(4))
    return db_url


def test_studies_table(filled):
    r = run("studies", "--storage", filled)
    assert r.exit_code == 0, r.output
    demo = next(line for line in r.output.splitlines() if "demo" in line)
    assert "max quality, min peak_memory_mib" in demo and "running" in demo
    cells = [c.strip() for c in demo.split("│")]
    assert cells[4:9] == ["1", "3", "1", "0", "5"]  # running, complete, failed, pruned, total
    assert "other" in r.output


def test_trials_table_sorted_filtered_limited(filled):
    r = run("trials", "demo", "--storage", filled, "--sort", "quality")
    assert r.exit_code == 0, r.output
    body = [line for line in r.output.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["1", "2", "0", "3", "4"]  # best quality first
    assert "inf" in r.output and "CUDA out of memory" in r.output and "RN A M2" in r.output
    r = run("trials", "demo", "--storage", filled, "--status", "complete", "--sort", "peak_memory_mib", "--limit", "2")
    body = [line for line in r.output.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["0", "1"] and "2 of 3 trials" in r.output


def test_storage_from_environment(filled):
    r = run("studies", env={"HNAS_STORAGE": filled})
    assert r.exit_code == 0 and "demo" in r.output


def _one_line_error(r, *needles):
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in r.output


def test_user_errors_exit_2_with_one_line(tmp_path, sqlite_url):
    notdb = tmp_path / "results.csv"
    notdb.write_text("number,quality\n" * 50)
    _one_line_error(run("studies", "--storage", str(notdb)), "file is not a database")
    _one_line_error(run("studies", "--storage", str(tmp_path / "typo.db")), "no database file")
    assert not (tmp_path / "typo.db").exists()
    _one_line_error(run("studies", "--storage", "mysql://root:hunter2@db/x"), "unsupported storage URL scheme")
    _one_line_error(run("studies", "--storage", "postgresql://bob:hunter2@127.0.0.1:1/x"), "cannot open storage",
                    "bob:***@127.0.0.1:1")
    assert "hunter2" not in run("studies", "--storage", "postgresql://bob:hunter2@127.0.0.1:1/x").output
    Store(sqlite_url).create_study("s", "", OBJ)
    _one_line_error(run("trials", "nope", "--storage", sqlite_url), "no study named 'nope'")
    _one_line_error(run("trials", "s", "--storage", sqlite_url, "--sort", "bogus"), "--sort: unknown column 'bogus'")


@pytest.mark.postgres
def test_missing_postgres_database(postgres_url):
    from sqlalchemy.engine import make_url
    url = make_url(postgres_url).set(database="hnas_no_such_db").render_as_string(hide_password=False)
    _one_line_error(run("studies", "--storage", url), "does not exist")


def test_installed_command_exit_code(tmp_path):
    """The real console entry point, not just click's runner."""
    notdb = tmp_path / "x.db"
    notdb.write_bytes(b"\x00garbage" * 100)
    p = subprocess.run([sys.executable, "-m", "orchestrator.cli", "studies", "--storage", str(notdb)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "not a database" in p.stderr


def test_read_only_commands_never_create_tables_in_a_foreign_database(tmp_path):
    import sqlite3
    other = tmp_path / "someone-elses.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    for args in (("studies",), ("trials", "demo")):
        r = run(*args, "--storage", str(other))
        assert r.exit_code == 2 and "no hybrid-nas store" in r.output, r.output
    with sqlite3.connect(other) as c:
        tables = {row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"notes"}


def test_a_store_from_a_newer_version_is_one_line(db_url):
    from sqlalchemy import text
    with Store(db_url) as s:
        s.create_study("demo", "", OBJ)
        with s.engine().begin() as conn:
            old = conn.execute(text("SELECT version_num FROM hnas_alembic_version")).scalar_one()
            conn.execute(text("UPDATE hnas_alembic_version SET version_num = 'f0f0f0f0newer'"))
    try:
        r = run("studies", "--storage", db_url)
        assert r.exit_code == 2, r.output
        assert "schema revision 'f0f0f0f0newer', newer than this hybrid-nas knows" in r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    finally:
        with _raw(db_url) as conn:
            conn.execute(text("UPDATE hnas_alembic_version SET version_num = :v"), {"v": old})


def _raw(url):
    from sqlalchemy import create_engine
    from storage.engine import normalize_url
    return create_engine(normalize_url(url)).begin()


def test_an_invalid_port_is_reported_at_once():
    r = run("studies", "--storage", "postgresql+psycopg://postgres@127.0.0.1:99999/test")
    assert r.exit_code == 2 and "invalid port" in r.output and "attempts" not in r.output, r.output
