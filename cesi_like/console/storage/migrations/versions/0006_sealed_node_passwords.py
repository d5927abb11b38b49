"""node passwords sealed with the node key: a column wide enough for the ciphertext

The values themselves are sealed by the console at its next start (`seal_plaintext`), since
the key lives outside the database and only the console knows where.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.alter_column('password', existing_type=sa.String(length=256),
                              type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    # sealed values are longer than 256 characters: open them before downgrading
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.alter_column('password', existing_type=sa.Text(),
                              type_=sa.String(length=256), existing_nullable=True)
