"""open problems are acknowledged (who, when, note); silences for a node, environment, group
or rule until a time; nodes in maintenance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'


def upgrade() -> None:
    with op.batch_alter_table('alert_firings') as batch:
        batch.add_column(sa.Column('ack_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('ack_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('ack_note', sa.Text(), nullable=True))
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('maintenance', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('maintenance_note', sa.Text(), nullable=False,
                                   server_default=''))
    op.create_table(
        'silences',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('target', sa.String(length=255), nullable=False),
        sa.Column('until', sa.DateTime(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('ended', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_silences')))
    op.create_index(op.f('ix_silences_until'), 'silences', ['until'])


def downgrade() -> None:
    op.drop_index(op.f('ix_silences_until'), table_name='silences')
    op.drop_table('silences')
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('maintenance_note')
        batch.drop_column('maintenance')
    with op.batch_alter_table('alert_firings') as batch:
        batch.drop_column('ack_note')
        batch.drop_column('ack_at')
        batch.drop_column('ack_by')
