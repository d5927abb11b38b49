"""alert rules and when they fired
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'


def upgrade() -> None:
    op.create_table('alert_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=True),
    sa.Column('group', sa.String(length=255), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('window_minutes', sa.Integer(), nullable=False),
    sa.Column('unreachable_seconds', sa.Integer(), nullable=False),
    sa.Column('webhook_url', sa.String(length=512), nullable=True),
    sa.Column('webhook_secret', sa.Text(), nullable=True),
    sa.Column('email_to', sa.String(length=512), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_alert_rules_name'))
    )
    op.create_table('alert_firings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=600), nullable=False),
    sa.Column('time', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'],
                            name=op.f('fk_alert_firings_rule_id_alert_rules'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_firings'))
    )
    op.create_index('ix_alert_firings_rule_subject', 'alert_firings',
                    ['rule_id', 'subject', 'time'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_firings_rule_subject', table_name='alert_firings')
    op.drop_table('alert_firings')
    op.drop_table('alert_rules')
