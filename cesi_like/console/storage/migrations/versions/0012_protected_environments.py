"""environments marked protected: a stop, restart or signal of any of their processes asks
for the environment's or node's name first
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'


def upgrade() -> None:
    with op.batch_alter_table('environments') as batch:
        batch.add_column(sa.Column('protected', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('environments') as batch:
        batch.drop_column('protected')
