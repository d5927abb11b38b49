"""alert rules on a process's memory or CPU above a limit for a duration, with an optional
restart (superlance memmon for the whole fleet)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'


def upgrade() -> None:
    with op.batch_alter_table('alert_rules') as batch:
        batch.add_column(sa.Column('limit', sa.Float(), nullable=True))
        batch.add_column(sa.Column('duration_seconds', sa.Integer(), nullable=False,
                                   server_default='60'))
        batch.add_column(sa.Column('action', sa.String(length=16), nullable=False,
                                   server_default='none'))


def downgrade() -> None:
    with op.batch_alter_table('alert_rules') as batch:
        batch.drop_column('action')
        batch.drop_column('duration_seconds')
        batch.drop_column('limit')
