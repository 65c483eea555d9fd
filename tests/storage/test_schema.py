"""Schema creation, upgrade, downgrade/upgrade round trip and coexistence with Optuna's tables,
on SQLite and PostgreSQL."""
import math

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from storage import Store, migrate
from storage.engine import make_engine, normalize_url
from storage.models import Base

from store_helpers import make_arch, result

HNAS_TABLES = {"hnas_studies", "hnas_architectures", "hnas_trials", "hnas_curves", "hnas_alembic_version"}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def tables(url) -> set[str]:
    eng = create_engine(normalize_url(url))
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_open_creates_schema_at_head(db_url):
    assert not tables(db_url) & HNAS_TABLES
    with Store(db_url) as s:
        assert s.schema_revision() == migrate.head() == "0004"
    assert HNAS_TABLES <= tables(db_url)
    assert "alembic_version" not in tables(db_url)  # Optuna's name stays free


def test_models_match_migrations(db_url):
    """Autogenerate against a migrated database proposes nothing: models and scripts agree."""
    with Store(db_url) as s:
        eng = s.engine()
        with eng.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"include_name": migrate.include_name,
                                                         "version_table": migrate.VERSION_TABLE,
                                                         "compare_type": True})
            assert compare_metadata(mc, Base.metadata) == []


def test_upgrade_from_first_revision_keeps_data(db_url):
    eng = make_engine(normalize_url(db_url))
    migrate.upgrade(eng, "0001")
    with eng.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM hnas_alembic_version")).scalar() == "0001"
        idx = {i["name"] for i in inspect(conn).get_indexes("hnas_trials")}
        assert "ix_hnas_trials_study_finished" not in idx
    eng.dispose()
    # An old database: write through the 0001 schema (the Store would upgrade, so write by SQL)
    eng = make_engine(normalize_url(db_url))
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO hnas_studies (name, status, config_yaml, objectives, constraints, attrs, "
                          "revision, created_at, updated_at) VALUES ('old', 'complete', 'x: 1', "
                          "'[[\"quality\",\"maximize\"]]', '[]', '{}', 0, '2026-01-01', '2026-01-01')"))
        sid = conn.execute(text("SELECT id FROM hnas_studies")).scalar()
        for n, metrics in enumerate(['{"quality":0.5,"peak_memory_mib":Infinity,"val_bpb":NaN}', '{"quality":0.4,"peak_memory_mib":5}']):
            conn.execute(text("INSERT INTO hnas_trials (study_id, number, status, fidelity, backend, params, metrics, "
                              "task_scores, measured, analytic, constraints, extra, updated_at) VALUES (:s, :n, "
                              "'complete', '', '{}', '{}', :m, '{}', '{}', '{}', '{}', '{}', '2026-01-01')"),
                         {"s": sid, "n": n, "m": metrics})
    eng.dispose()
    with Store(db_url) as s:  # opening upgrades
        assert s.schema_revision() == "0004"
        assert s.get_study("old").objectives == [("quality", "maximize")]
        # 0003 backfilled the metric columns from the JSON: the front (which reads them) is right
        assert s.pareto_front("old", [("quality", "maximize"), ("peak_memory_mib", "minimize")])["number"].tolist() == [0, 1]
        with s.engine().connect() as conn:
            row = conn.execute(text("SELECT m_quality, m_peak_memory_mib, m_val_bpb FROM hnas_trials "
                                    "WHERE number = 0")).one()
        assert tuple(row) == (0.5, float("inf"), None)
        assert math.isnan(s.trial("old", 0)["metrics"]["val_bpb"])  # the JSON keeps the exact value
        s.finish_trial("old", 2, result(quality=0.9))
        assert s.count_trials("old") == 3
        with s.engine().connect() as conn:
            idx = {i["name"] for i in inspect(conn).get_indexes("hnas_trials")}
        assert {"ix_hnas_trials_study_finished", "ix_hnas_trials_study_rev"} <= idx
        # 0004: rows from before have rev 0 (read in full once); new writes are stamped
        revs = s.trials_frame("old").set_index("number")["rev"]
        assert revs[0] == revs[1] == 0 and revs[2] > 0


def test_downgrade_upgrade_round_trip(db_url):
    with Store(db_url) as s:
        s.create_study("s", "", [("quality", "maximize")])
        eng = s.engine()
        migrate.downgrade(eng, "0001")
        assert migrate.current(eng) == "0001"
        migrate.downgrade(eng, "base")
        assert migrate.current(eng) is None
        assert not (tables(db_url) & (HNAS_TABLES - {"hnas_alembic_version"}))
        migrate.upgrade(eng)
        assert migrate.current(eng) == "0004"
    with Store(db_url) as s:
        assert s.list_studies() == []
        s.create_study("s", "", [("quality", "maximize")])
        assert [x.name for x in s.list_studies()] == ["s"]


def _optuna_study(url):
    st = optuna.create_study(storage=url, study_name="opt", directions=["maximize", "minimize"],
                             load_if_exists=True)
    st.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=3)
    return st


@pytest.mark.parametrize("optuna_first", [True, False], ids=["optuna-first", "store-first"])
def test_coexists_with_optuna(db_url, optuna_first):
    if optuna_first:
        _optuna_study(db_url)
    with Store(db_url) as s:
        s.create_study("opt", "", [("quality", "maximize"), ("peak_memory_mib", "minimize")])
        s.start_trial("opt", 0, make_arch(0))
        s.finish_trial("opt", 0, result(quality=0.9, peak_memory_mib=10))
    if not optuna_first:
        _optuna_study(db_url)
    names = tables(db_url)
    assert {"studies", "trials", "trial_values", "alembic_version"} <= names and HNAS_TABLES <= names
    # each side still reads its own data, opening again (both upgrade paths run) changes nothing
    loaded = optuna.load_study(storage=db_url, study_name="opt")
    assert len(loaded.trials) == 3
    with Store(db_url) as s:
        assert s.count_trials("opt") == 1 and s.schema_revision() == "0004"
    eng = create_engine(normalize_url(db_url))
    with eng.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() not in ("0001", "0002", "0003", "0004")
    eng.dispose()


def test_schema_command(sqlite_url, capsys):
    from storage.__main__ import main as schema_main
    assert schema_main(["upgrade", "--url", sqlite_url, "--to", "0002"]) == 0
    assert schema_main(["current", "--url", sqlite_url]) == 0
    assert "0002 (head 0004)" in capsys.readouterr().out
    assert schema_main(["downgrade", "--url", sqlite_url]) == 2
    assert "downgrade needs --to" in capsys.readouterr().err
    assert schema_main(["downgrade", "--url", sqlite_url, "--to", "base"]) == 0
    assert "(empty)" in capsys.readouterr().out
    assert schema_main(["current", "--url", "mysql://x/y"]) == 2
