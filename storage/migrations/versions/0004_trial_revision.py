"""hnas_trials.rev: the study revision of the trial's last write, for incremental reads

Each write to a study's trials bumps `hnas_studies.revision` (one integer per study) and stamps
the rows it wrote with the new value. The dashboard keeps the frame it has and reads only rows
with `rev` above the largest it has seen. Existing rows get 0 (read once in full, as before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rev', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_index('ix_hnas_trials_study_rev', ['study_id', 'rev'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.drop_index('ix_hnas_trials_study_rev')
        batch_op.drop_column('rev')
