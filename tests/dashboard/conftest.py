"""Seeded stores for the dashboard tests: real SQLite files written through `storage.Store`
with real `Architecture`s and `TrialResult`s (`dashboard.synthetic`)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from dashboard.synthetic import seed_study
from storage import Store
from storage.models import architectures, studies, trials

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")

# what an architecture looked like under an older genome schema: `n_heads`, not `heads`
OLD_ARCH_YAML = """\
name: old
d_model: 64
blocks:
- mixer: {type: attention, n_heads: 4}
  channel: {type: swiglu}
"""
OLD_CONFIG_YAML = "version: 0\nstudy: oldschema\nsearch_space: {layers: [attn, ssm]}\n"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> str:
    """A store with `demo` (40 trials of every kind), `other` (12), `pending` (only running
    trials) and `oldschema` (a config and two architectures from an older schema)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'store.db'}"
    s = Store(url)
    seed_study(s, "other", 12, seed=5, running=0)
    seed_study(s, "pending", 3, seed=7, running=3)
    seed_study(s, "oldschema", 6, seed=9, running=0, fail_every=0, prune_every=0)
    s.close()
    engine = create_engine(url)  # the test edits rows the way an older version would have written them
    with engine.begin() as conn:
        sid = conn.execute(select(studies.c.id).where(studies.c.name == "oldschema")).scalar_one()
        conn.execute(update(studies).where(studies.c.id == sid).values(config_yaml=OLD_CONFIG_YAML))
        aids = conn.execute(select(trials.c.architecture_id).where(trials.c.study_id == sid,
                                                                   trials.c.number.in_([0, 1]))).scalars().all()
        conn.execute(update(architectures).where(architectures.c.id.in_(aids)).values(yaml=OLD_ARCH_YAML))
    engine.dispose()
    s = Store(url)
    seed_study(s, "demo", 40, seed=0, running=2)  # last: the newest study is the one shown first
    s.close()
    return url


@pytest.fixture
def app(seeded, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("HYBRID_NAS_STORAGE", seeded)
    return AppTest.from_file(APP, default_timeout=120)
