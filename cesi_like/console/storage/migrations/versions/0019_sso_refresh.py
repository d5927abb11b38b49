"""An OpenID account's refresh token, sealed: the provider is asked about the user at every
re-check, so a user it no longer knows loses their sessions and API tokens without signing in
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('sso_refresh', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('sso_refresh')
