"""Ingestion reports: each collector worker's spool state, for the dashboard's warning banner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

- ``ingestion_reports``: one row per collector worker (its host and spool folder), rewritten every
  few seconds: when it reported, the age of its oldest event not yet in ClickHouse, the bytes
  waiting, and the rows in its dead-letter file. The dashboard reads the recent rows only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingestion_reports",
        sa.Column("reporter", sa.String(300), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("oldest_pending_seconds", sa.Float(), nullable=True),
        sa.Column("pending_bytes", sa.BigInteger(), nullable=False),
        sa.Column("dead_letter_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reporter", name="pk_ingestion_reports"),
    )


def downgrade() -> None:
    op.drop_table("ingestion_reports")
