"""when the condition an alert fired for ended (the process runs again, the node answers
again): a firing without it is an open problem
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'


def upgrade() -> None:
    op.add_column('alert_firings', sa.Column('resolved_at', sa.DateTime(), nullable=True))
    # what fired before this release is not an open problem to announce the end of
    op.execute(sa.text("UPDATE alert_firings SET resolved_at = time"))


def downgrade() -> None:
    with op.batch_alter_table('alert_firings') as batch:
        batch.drop_column('resolved_at')
