"""API key scopes: what each key may do.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- ``api_keys.scopes``: a comma-separated set of scope names (``events:write,contacts:read``).
  Keys from before get ``''`` (no scope): they authenticate but may do nothing until reissued,
  which is safer than guessing what an old key was meant for.

Per-key rate limits need no column: they are counted in memory by each worker.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
