"""index trials by (study, finished_at) for the dashboard's latest-results view

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:30:00
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.create_index('ix_hnas_trials_study_finished', ['study_id', 'finished_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.drop_index('ix_hnas_trials_study_finished')
