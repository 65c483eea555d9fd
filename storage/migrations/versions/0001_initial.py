"""initial schema: studies, architectures, trials, curves

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 08:17:42.897868
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hnas_architectures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('yaml', sa.Text(), nullable=False),
    sa.Column('pattern', sa.Text(), nullable=False),
    sa.Column('d_model', sa.Integer(), nullable=False),
    sa.Column('n_layers', sa.Integer(), nullable=False),
    sa.Column('params_total', sa.Float(), nullable=False),
    sa.Column('params_active', sa.Float(), nullable=False),
    sa.Column('flops_per_token', sa.Float(), nullable=False),
    sa.Column('cache_mib_2k', sa.Float(), nullable=False),
    sa.Column('cache_mib_8k', sa.Float(), nullable=False),
    sa.Column('cache_mib_32k', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hnas_architectures')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_hnas_architectures_fingerprint'))
    )
    op.create_table('hnas_studies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('config_yaml', sa.Text(), nullable=False),
    sa.Column('objectives', sa.Text(), nullable=False),
    sa.Column('constraints', sa.Text(), nullable=False),
    sa.Column('attrs', sa.Text(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hnas_studies')),
    sa.UniqueConstraint('name', name=op.f('uq_hnas_studies_name'))
    )
    op.create_table('hnas_trials',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('architecture_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('fidelity', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('node', sa.String(length=200), nullable=True),
    sa.Column('device', sa.String(length=200), nullable=True),
    sa.Column('backend', sa.Text(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('metrics', sa.Text(), nullable=False),
    sa.Column('task_scores', sa.Text(), nullable=False),
    sa.Column('measured', sa.Text(), nullable=False),
    sa.Column('analytic', sa.Text(), nullable=False),
    sa.Column('constraints', sa.Text(), nullable=False),
    sa.Column('extra', sa.Text(), nullable=False),
    sa.Column('feasible', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('wall_time_s', sa.Float(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['architecture_id'], ['hnas_architectures.id'], name=op.f('fk_hnas_trials_architecture_id_hnas_architectures'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['hnas_studies.id'], name=op.f('fk_hnas_trials_study_id_hnas_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hnas_trials')),
    sa.UniqueConstraint('study_id', 'number', name=op.f('uq_hnas_trials_study_id_number'))
    )
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hnas_trials_architecture_id'), ['architecture_id'], unique=False)
        batch_op.create_index('ix_hnas_trials_study_status', ['study_id', 'status'], unique=False)

    op.create_table('hnas_curves',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_kind', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['trial_id'], ['hnas_trials.id'], name=op.f('fk_hnas_curves_trial_id_hnas_trials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('trial_id', 'name', 'step', name=op.f('pk_hnas_curves'))
    )


def downgrade() -> None:
    op.drop_table('hnas_curves')
    with op.batch_alter_table('hnas_trials', schema=None) as batch_op:
        batch_op.drop_index('ix_hnas_trials_study_status')
        batch_op.drop_index(batch_op.f('ix_hnas_trials_architecture_id'))

    op.drop_table('hnas_trials')
    op.drop_table('hnas_studies')
    op.drop_table('hnas_architectures')
