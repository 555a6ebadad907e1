"""Mailing rules: event triggers, per-occasion frequency, the rule's time zone and run state, waits, lock.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

- ``rules.trigger`` may be ``event`` (with ``event_name``); ``rules.frequency`` may be ``each``
  (once per event or fire time); both CHECKs are recreated with the new values.
- ``rules.timezone`` (IANA name, ``UTC`` for rules from before), ``mail_existing`` (false: enabling
  an enter rule does not mail the members already there), ``watermark``, ``last_run_at``,
  ``last_error``.
- ``rule_waits``: when an enter rule with a delay first saw a contact in its segment.
- ``scheduler_locks``: the one row per lock name saying which process acts as the scheduler.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TRIGGERS = {"old": "trigger IN ('enter', 'schedule')", "new": "trigger IN ('enter', 'event', 'schedule')"}
_FREQUENCIES = {"old": "frequency IN ('once', 'per_period')",
                "new": "frequency IN ('once', 'per_period', 'each')"}


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _choices(batch, which: str) -> None:
    for column, checks in (("trigger", _TRIGGERS), ("frequency", _FREQUENCIES)):
        batch.drop_constraint(op.f(f"ck_rules_{column}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_rules_{column}"), checks[which])


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("event_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("mail_existing", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(_timestamp("watermark"))
        batch.add_column(_timestamp("last_run_at"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        _choices(batch, "new")
        batch.create_check_constraint(op.f("ck_rules_event_has_name"),
                                      "trigger <> 'event' OR event_name IS NOT NULL")
    op.create_table(
        "rule_waits",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        _timestamp("since", nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["rules.id"], name="fk_rule_waits_rule_id_rules",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", "contact_id", name="pk_rule_waits"),
    )
    op.create_table(
        "scheduler_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        _timestamp("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_scheduler_locks"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_locks")
    op.drop_table("rule_waits")
    # Rules only this revision can express would break the old CHECKs; their sends are history
    # that must not be deleted quietly, so the downgrade stops and says so.
    found = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM rules WHERE trigger = 'event' OR frequency = 'each'")).scalar()
    if found:
        raise RuntimeError(f"{found} rule(s) use an event trigger or the 'each' frequency, which revision "
                           "0003 cannot hold; change or remove them before downgrading")
    with op.batch_alter_table("rules") as batch:
        batch.drop_constraint(op.f("ck_rules_event_has_name"), type_="check")
        _choices(batch, "old")
        for column in ("last_error", "last_run_at", "watermark", "mail_existing", "timezone", "event_name"):
            batch.drop_column(column)
