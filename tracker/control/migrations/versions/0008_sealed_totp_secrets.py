"""Two-factor secrets are stored sealed: ``users.totp_secret`` widens to hold a Fernet token.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The migration cannot seal the secrets already stored (it has no signing keys); each is sealed at
its next use (``tracker/two_factor.py``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(200), existing_type=sa.String(64),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64), existing_type=sa.String(200),
                           existing_nullable=True)
