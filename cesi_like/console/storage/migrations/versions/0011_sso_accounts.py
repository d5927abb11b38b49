"""where an account signs in (local password, LDAP, OpenID Connect) and when a directory or
provider last confirmed it, and who disabled it (an admin's disable sticks; a directory's
ends with the directory's next yes)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=False,
                                   server_default='local'))
        batch.add_column(sa.Column('sso_checked_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('disabled_by', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled_by')
        batch.drop_column('sso_checked_at')
        batch.drop_column('source')
