"""Open alert firings found by an index: every stored poll looks for the firings its changes
may end, and firings, kept until pruned, outnumber the open ones many times over
"""

from __future__ import annotations

from alembic import op


revision = '0018'
down_revision = '0017'


def upgrade() -> None:
    op.create_index('ix_alert_firings_open', 'alert_firings', ['resolved_at', 'subject'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_firings_open', table_name='alert_firings')
