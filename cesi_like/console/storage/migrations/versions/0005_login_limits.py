"""login budgets per (user, address) and per address

Replaces counting failed logins in the activity log, which raced: parallel attempts all read
the count before any of them wrote one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'


def upgrade() -> None:
    op.create_table('login_limits',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_limits'))
    )


def downgrade() -> None:
    op.drop_table('login_limits')
