"""Suppressions keep their unsubscribe event until it is queued for the event store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``pending_event`` holds the event row (JSON) while it waits: written with the suppression in one
commit, cleared in the transaction that hands it to the ingestion spool. Rows from before this
revision had their event queued at the time, so they start with NULL (nothing pending).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("suppressions", sa.Column("pending_event", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("pending_event")
