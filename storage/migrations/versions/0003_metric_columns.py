"""one REAL column per catalogue metric on hnas_trials (m_<name>), backfilled from the metrics JSON

Pareto fronts and hypervolume histories select these columns instead of parsing every trial's
metrics JSON. NaN and missing values are NULL here; the JSON keeps the exact value.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:05:00
"""
import json
import math

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Frozen here (not imported from the models): a migration must not change when the code does.
NAMES = ('quality', 'val_bpb', 'val_loss', 'train_tokens_per_s', 'prefill_tokens_per_s', 'decode_tokens_per_s',
         'peak_memory_mib', 'decode_memory_mib', 'params_total', 'params_active', 'flops_per_token',
         'cache_mib_2k', 'cache_mib_8k', 'cache_mib_32k', 'wall_time_s')


def upgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        for n in NAMES:
            batch_op.add_column(sa.Column(f'm_{n}', sa.Float(), nullable=True))
    trials = sa.table('hnas_trials', sa.column('id', sa.Integer), sa.column('metrics', sa.Text),
                      *[sa.column(f'm_{n}', sa.Float) for n in NAMES])
    conn = op.get_bind()
    rows = conn.execute(sa.select(trials.c.id, trials.c.metrics)).all()
    updates = []
    for tid, text in rows:
        m = json.loads(text or "{}")
        vals = {}
        for n in NAMES:
            v = m.get(n)
            vals[f'v_{n}'] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
        updates.append(dict(b_id=tid, **vals))
    if updates:
        stmt = (sa.update(trials).where(trials.c.id == sa.bindparam('b_id'))
                .values(**{f'm_{n}': sa.bindparam(f'v_{n}') for n in NAMES}))
        for i in range(0, len(updates), 1000):
            conn.execute(stmt, updates[i:i + 1000])


def downgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        for n in reversed(NAMES):
            batch_op.drop_column(f'm_{n}')
