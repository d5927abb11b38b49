"""alert rules deliver to Apprise URLs too (Slack, Teams, PagerDuty, ntfy, email...), kept
sealed like node passwords
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'


def upgrade() -> None:
    op.add_column('alert_rules', sa.Column('notify', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alert_rules') as batch:
        batch.drop_column('notify')
