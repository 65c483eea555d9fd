"""SQLAlchemy models: four tables, all prefixed `hnas_` so they never collide with Optuna's
(`studies`, `trials`, `trial_values`, ..., `alembic_version`) when both live in one database.

Design choices
- Natural keys carry unique constraints (study name, architecture fingerprint, (study, trial
  number), (trial, curve name, step)); every write is an upsert on one of them, so a retried write
  never duplicates a row.
- Metric dicts (objective-ready metrics, task scores, measured and analytic efficiency,
  constraint values) are TEXT holding Python's JSON, which writes non-finite floats as the tokens
  `NaN`, `Infinity` and `-Infinity` and reads them back as floats. TEXT, not JSON/JSONB: PostgreSQL's
  JSON types reject those tokens, and SQLite would turn a NaN REAL into NULL. The readers (trials
  frame, Pareto front, hypervolume) parse the text once per query, so the catalogue of metrics can
  grow without a migration. The catalogue metrics are also copied into one REAL column each
  (`m_quality`, ...; NaN as NULL) for the Pareto and hypervolume queries.
- A curve point's value is a REAL plus `value_kind` (0 finite, 1 +inf, 2 -inf, 3 nan) and NULL value
  for the non-finite ones, the way Optuna's `trial_values` does: SQLite cannot store NaN in a REAL.
- Timestamps are written in UTC by us (not server defaults) so both dialects agree.
- `hnas_studies.revision` is bumped by every write to a study's trials or curves: the dashboard's
  cheap "did anything change" probe."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, SmallInteger, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PREFIX = "hnas_"

# Deterministic constraint names: Alembic batch mode on SQLite needs them to alter tables later.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StudyRow(Base):
    __tablename__ = "hnas_studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    config_yaml: Mapped[str] = mapped_column(Text, nullable=False, default="")
    objectives: Mapped[str] = mapped_column(Text, nullable=False)      # JSON [[name, direction], ...]
    constraints: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON [name, ...]
    attrs: Mapped[str] = mapped_column(Text, nullable=False, default="{}")        # JSON, free-form
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ArchitectureRow(Base):
    __tablename__ = "hnas_architectures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    yaml: Mapped[str] = mapped_column(Text, nullable=False)
    pattern: Mapped[str] = mapped_column(Text, nullable=False, default="")
    d_model: Mapped[int] = mapped_column(Integer, nullable=False)
    n_layers: Mapped[int] = mapped_column(Integer, nullable=False)
    # analytic costs at vocab 0 (non-embedding), batch 1, bf16 cache: search_space.metrics.analytic_metrics
    params_total: Mapped[float] = mapped_column(Float, nullable=False)
    params_active: Mapped[float] = mapped_column(Float, nullable=False)
    flops_per_token: Mapped[float] = mapped_column(Float, nullable=False)
    cache_mib_2k: Mapped[float] = mapped_column(Float, nullable=False)
    cache_mib_8k: Mapped[float] = mapped_column(Float, nullable=False)
    cache_mib_32k: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TrialRow(Base):
    __tablename__ = "hnas_trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        Index("ix_hnas_trials_study_status", "study_id", "status"),
        # "latest results first" for the dashboard's live view (migration 0002)
        Index("ix_hnas_trials_study_finished", "study_id", "finished_at"),
        # incremental reads: rows written after a revision (migration 0004)
        Index("ix_hnas_trials_study_rev", "study_id", "rev"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("hnas_studies.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    architecture_id: Mapped[int | None] = mapped_column(
        ForeignKey("hnas_architectures.id", ondelete="SET NULL"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    fidelity: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    node: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    backend: Mapped[str] = mapped_column(Text, nullable=False, default="{}")      # JSON layer -> kernel
    params: Mapped[str] = mapped_column(Text, nullable=False, default="{}")       # JSON sampler params
    metrics: Mapped[str] = mapped_column(Text, nullable=False, default="{}")      # JSON, NaN/Infinity tokens
    task_scores: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    measured: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    analytic: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    constraints: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # name -> value (<= 0 ok)
    extra: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    feasible: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    wall_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The study revision of this row's last write (migration 0004): writes to one study are
    # serialized on its revision row, so revision order is commit order and "rev > seen" is
    # exactly what a reader has not seen yet.
    rev: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    # One REAL per catalogue metric (migration 0003), copied from `metrics` on write: Pareto fronts
    # and hypervolumes select these instead of parsing JSON (10x faster at 10k trials). +-inf are
    # kept; NaN and missing are both NULL here (both keep a trial off a front); `metrics` keeps
    # the exact value.
    m_quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_train_tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_prefill_tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_decode_tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_peak_memory_mib: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_decode_memory_mib: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_params_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_params_active: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_flops_per_token: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_cache_mib_2k: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_cache_mib_8k: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_cache_mib_32k: Mapped[float | None] = mapped_column(Float, nullable=True)
    m_wall_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class CurveRow(Base):
    __tablename__ = "hnas_curves"
    trial_id: Mapped[int] = mapped_column(ForeignKey("hnas_trials.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_kind: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)


#: catalogue metrics (search_space.metrics.METRICS at migration 0003) with a column `m_<name>`
METRIC_COLUMNS = tuple(c.name[2:] for c in TrialRow.__table__.columns if c.name.startswith("m_"))

studies = StudyRow.__table__
architectures = ArchitectureRow.__table__
trials = TrialRow.__table__
curves = CurveRow.__table__
