"""Initial control-plane schema: users, API keys, sites, templates, campaigns, segments, rules,
the send ledger and the daily visitor salts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than importing ``tracker.control.models``: a migration is a snapshot,
and must create the same tables after the models have moved on. Timestamps are
``TIMESTAMP WITH TIME ZONE`` (read back as aware UTC by ``models.UtcDateTime``); choices are
VARCHARs with a CHECK. Constraint names follow ``models.NAMING_CONVENTION``; CHECK names are
wrapped in ``op.f`` because alembic applies that convention (``ck_<table>_<name>``) to them again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _choice(table: str, column: str, values: tuple[str, ...]) -> tuple[sa.Column, sa.CheckConstraint]:
    listed = ", ".join(f"'{value}'" for value in values)
    return (
        sa.Column(column, sa.String(16), nullable=False),
        sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}")),
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        *_choice("users", "role", ("admin", "marketer", "viewer")),
        _timestamp("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_keys_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "sites",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _timestamp("created_at"),
        sa.Column("identify_secret", sa.String(64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
    )
    op.create_table(
        "site_domains",
        sa.Column("site_id", sa.String(16), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_site_domains_site_id_sites", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "domain", name="pk_site_domains"),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
        sa.UniqueConstraint("name", name="uq_templates_name"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(16), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        *_choice("campaigns", "status", ("draft", "sending", "sent")),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_campaigns_site_id_sites", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name="fk_campaigns_template_id_templates", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sa.UniqueConstraint("name", name="uq_segments_name"),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        *_choice("rules", "trigger", ("enter", "schedule")),
        sa.Column("schedule", sa.String(100), nullable=True),
        *_choice("rules", "frequency", ("once", "per_period")),
        sa.Column("period_seconds", sa.Integer(), nullable=True),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("hourly_cap", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "trigger <> 'schedule' OR schedule IS NOT NULL", name=op.f("ck_rules_schedule_has_cron")
        ),
        sa.CheckConstraint(
            "frequency <> 'per_period' OR (period_seconds IS NOT NULL AND period_seconds > 0)",
            name=op.f("ck_rules_per_period_has_period"),
        ),
        sa.CheckConstraint(
            "(quiet_start IS NULL AND quiet_end IS NULL) OR "
            "(quiet_start IS NOT NULL AND quiet_end IS NOT NULL"
            " AND quiet_start BETWEEN 0 AND 23 AND quiet_end BETWEEN 0 AND 23)",
            name=op.f("ck_rules_quiet_hours"),
        ),
        sa.CheckConstraint("delay_seconds >= 0", name=op.f("ck_rules_delay_not_negative")),
        sa.CheckConstraint("hourly_cap IS NULL OR hourly_cap > 0", name=op.f("ck_rules_hourly_cap_positive")),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name="fk_rules_segment_id_segments", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name="fk_rules_template_id_templates", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.UniqueConstraint("name", name="uq_rules_name"),
    )
    op.create_index("ix_rules_segment_id", "rules", ["segment_id"])
    op.create_table(
        "send_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("trigger_key", sa.String(200), nullable=False),
        *_choice("send_ledger", "status", ("pending", "sent", "failed", "skipped")),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        sa.Column("smtp_message_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(rule_id IS NULL) <> (campaign_id IS NULL)", name=op.f("ck_send_ledger_one_owner")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name="fk_send_ledger_rule_id_rules", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_send_ledger_campaign_id_campaigns",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_send_ledger"),
        sa.UniqueConstraint(
            "rule_id", "contact_id", "trigger_key", name="uq_send_ledger_rule_id_contact_id_trigger_key"
        ),
        sa.UniqueConstraint(
            "campaign_id",
            "contact_id",
            "trigger_key",
            name="uq_send_ledger_campaign_id_contact_id_trigger_key",
        ),
    )
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("day", name="pk_visitor_salts"),
    )


def downgrade() -> None:
    # Children before parents, so foreign keys never point at a dropped table.
    for table in (
        "visitor_salts",
        "send_ledger",
        "rules",
        "segments",
        "campaigns",
        "templates",
        "site_domains",
        "sites",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
