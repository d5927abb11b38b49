"""node state changes, for reachability over time
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'


def upgrade() -> None:
    op.create_table('node_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('time', sa.DateTime(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=24), nullable=True),
    sa.Column('to_state', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_events'))
    )
    op.create_index('ix_node_events_node_time', 'node_events', ['node', 'time'], unique=False)
    op.create_index(op.f('ix_node_events_time'), 'node_events', ['time'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_node_events_time'), table_name='node_events')
    op.drop_index('ix_node_events_node_time', table_name='node_events')
    op.drop_table('node_events')
