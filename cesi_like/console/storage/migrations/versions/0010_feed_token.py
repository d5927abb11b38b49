"""the change-feed token of each stored snapshot
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'


def upgrade() -> None:
    op.add_column('node_status', sa.Column('feed_token', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('node_status') as batch:
        batch.drop_column('feed_token')
