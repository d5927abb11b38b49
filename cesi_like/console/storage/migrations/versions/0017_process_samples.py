"""CPU and memory of agent nodes' processes over time: raw samples for an hour, minute means
for a day, ten-minute means for history_days; each process a series, named once
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0017'
down_revision = '0016'


def upgrade() -> None:
    op.create_table(
        'process_series',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.Column('group', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_process_series')),
        sa.UniqueConstraint('node', 'group', 'name', name='uq_process_series_process'))
    op.create_table(
        'process_samples',
        sa.Column('series_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('time', sa.DateTime(), nullable=False),
        sa.Column('cpu', sa.Float(), nullable=True),
        sa.Column('rss_kb', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['series_id'], ['process_series.id'],
                                name=op.f('fk_process_samples_series_id_process_series'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('series_id', 'step', 'time', name=op.f('pk_process_samples')))
    op.create_index('ix_process_samples_step_time', 'process_samples', ['step', 'time'])


def downgrade() -> None:
    op.drop_index('ix_process_samples_step_time', table_name='process_samples')
    op.drop_table('process_samples')
    op.drop_table('process_series')
