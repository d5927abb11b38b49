"""the change-feed token of each stored snapshot

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('node_status', sa.Column('feed_token', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('node_status') as batch:
        batch.drop_column('feed_token')
