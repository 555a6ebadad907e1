"""Tables of the control plane, declared once as SQLAlchemy models.

``migrations/versions`` creates exactly these tables; a test compares the migrated database with
this module, so a model changed without a migration fails the suite.
"""

from __future__ import annotations

import enum
import secrets
import string
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Every constraint and index gets a predictable name, so later migrations can drop or alter it by
# name on PostgreSQL and through batch mode on SQLite (which cannot alter unnamed constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SITE_ID_PREFIX = "s_"
_SITE_ID_ALPHABET = string.ascii_lowercase + string.digits
_SITE_ID_LENGTH = 10  # 36**10 ~ 3.7e15 ids: no retry loop needed for collisions

# What a new site does until its owner says otherwise: no cookies (no consent banner needed),
# Do Not Track ignored unless asked for, and hits from localhost dropped so development traffic
# stays out of the reports.
DEFAULT_SITE_OPTIONS: dict[str, bool] = {"cookieless": True, "respect_dnt": False, "allow_local": False}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC: the only kind of timestamp the control plane stores."""
    return datetime.now(UTC)


def new_site_id() -> str:
    """A short random site id (``s_`` + 10 of ``[a-z0-9]``): safe in URLs and snippet attributes."""
    return SITE_ID_PREFIX + "".join(secrets.choice(_SITE_ID_ALPHABET) for _ in range(_SITE_ID_LENGTH))


def new_identify_secret() -> str:
    """A site's secret for the snippet's ``identify`` HMAC, computed by the site's own server."""
    return secrets.token_hex(32)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone, so a plain ``DateTime(timezone=True)`` reads naive values there and
    aware ones on PostgreSQL; code comparing them would pass on one backend and crash on the other.
    Naive values are refused on the way in, as their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one, e.g. datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A JSON object whose in-place changes (``site.options["x"] = True``) are saved, not silently lost.
JsonDict = MutableDict.as_mutable(JSON())


# Member names equal their values, so the database holds the same words the code uses.
class Role(enum.StrEnum):
    admin = "admin"
    marketer = "marketer"
    viewer = "viewer"


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    sending = "sending"
    sent = "sent"


class RuleTrigger(enum.StrEnum):
    enter = "enter"
    event = "event"
    schedule = "schedule"


class RuleFrequency(enum.StrEnum):
    once = "once"  # at most once per contact, ever
    per_period = "per_period"  # at most once per contact every period_seconds
    each = "each"  # once per occasion: each event, each fire time of the schedule


class SendStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


def _choice(values: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint, not a native enum: adding a value stays a small migration."""
    return Enum(values, name=name, native_enum=False, create_constraint=True, length=16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


class User(Base):
    """Someone who signs in to the dashboard. ``email`` is stored normalised (lower-case)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_choice(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)
    # In every session cookie; raised by sign-out and a new password to end all the user's sessions.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # sealed (two_factor.seal); None: off
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code is accepted once


class RecoveryCode(Base):
    """A single-use code that stands in for a TOTP code once; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One line of the audit log: who (``actor``) did what (``action``) to what, when. Insert only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text)  # JSON object


class ApiKey(Base):
    """A key for the HTTP API, acting as its user. Only a SHA-256 of the secret is kept.

    The plaintext ``odn_<prefix>_<secret>`` is shown once at creation; ``prefix`` finds the row
    (and is what the dashboard shows to tell keys apart), the hash proves the secret.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    # Comma-separated scope names (tracker/control/api_keys.py SCOPES); '' for keys from before 0005.
    scopes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    # Joined: every verification needs the user (a disabled user's keys stop working).
    user: Mapped[User] = relationship(lazy="joined")


class Site(Base):
    """A website that sends hits. ``options`` keys are those of ``DEFAULT_SITE_OPTIONS``."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_site_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    identify_secret: Mapped[str] = mapped_column(String(64), default=new_identify_secret)
    options: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=lambda: dict(DEFAULT_SITE_OPTIONS))

    # Loaded with the site: the collector caches sites and checks hosts after the session is gone.
    domains: Mapped[list[SiteDomain]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="SiteDomain.domain"
    )


class SiteDomain(Base):
    """A host a site's hits may come from: lower-case, no scheme, port, path or leading ``www.``."""

    __tablename__ = "site_domains"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)


class Template(Base):
    """An email body (Jinja2, sandboxed at render time) with its subject."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(Base):
    """A one-off mailing to a list of contacts; ``site_id`` ties its clicks to a site's reports."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(500))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    status: Mapped[CampaignStatus] = mapped_column(
        _choice(CampaignStatus, "status"), default=CampaignStatus.draft
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Segment(Base):
    """A set of contacts defined as data (attributes and behaviour), compiled to ClickHouse SQL."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Rule(Base):
    """Mail ``template_id`` to members of ``segment_id``: when they enter it, when they do
    ``event_name``, or on a cron ``schedule`` (evaluated in ``timezone``).

    ``frequency`` once: a contact gets it at most once ever; per_period: at most once every
    ``period_seconds``; each: once per event or fire time. ``delay_seconds`` waits after the
    trigger; quiet hours (local hours ``quiet_start`` to ``quiet_end``, both or neither, in the
    contact's ``timezone`` attribute or else the rule's) hold messages back; ``hourly_cap`` limits
    the rule's sends per rolling hour. New rules are disabled: nothing is mailed until someone turns
    one on. ``mail_existing``: whether an enter rule mails the members already in the segment when
    it is enabled. ``watermark``: where the next evaluation starts (events received since, for
    event rules; the last fire time served, for schedule rules). ``last_run_at`` and ``last_error``
    say how the last evaluation went (tracker/crm/rules/runner.py). The CHECKs keep combinations
    the runner could not honour out of the table; they spell out ``IS NOT NULL`` because a CHECK
    that evaluates to NULL passes.
    """

    __tablename__ = "rules"
    __table_args__ = (
        CheckConstraint("trigger <> 'schedule' OR schedule IS NOT NULL", name="schedule_has_cron"),
        CheckConstraint("trigger <> 'event' OR event_name IS NOT NULL", name="event_has_name"),
        CheckConstraint(
            "frequency <> 'per_period' OR (period_seconds IS NOT NULL AND period_seconds > 0)",
            name="per_period_has_period",
        ),
        CheckConstraint(
            "(quiet_start IS NULL AND quiet_end IS NULL) OR "
            "(quiet_start IS NOT NULL AND quiet_end IS NOT NULL"
            " AND quiet_start BETWEEN 0 AND 23 AND quiet_end BETWEEN 0 AND 23)",
            name="quiet_hours",
        ),
        CheckConstraint("delay_seconds >= 0", name="delay_not_negative"),
        CheckConstraint("hourly_cap IS NULL OR hourly_cap > 0", name="hourly_cap_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # RESTRICT: a segment or template a rule uses cannot vanish under it.
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="RESTRICT"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="RESTRICT"))
    trigger: Mapped[RuleTrigger] = mapped_column(_choice(RuleTrigger, "trigger"))
    schedule: Mapped[str | None] = mapped_column(String(100))
    event_name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    frequency: Mapped[RuleFrequency] = mapped_column(
        _choice(RuleFrequency, "frequency"), default=RuleFrequency.once
    )
    period_seconds: Mapped[int | None]
    delay_seconds: Mapped[int] = mapped_column(default=0)
    quiet_start: Mapped[int | None]
    quiet_end: Mapped[int | None]
    hourly_cap: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=False)
    dry_run: Mapped[bool] = mapped_column(default=False)
    mail_existing: Mapped[bool] = mapped_column(default=False)
    watermark: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleWait(Base):
    """When an enter rule with a delay first saw a contact in its segment: the delay counts from here."""

    __tablename__ = "rule_waits"

    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerLock(Base):
    """Who may act as the scheduler until ``expires_at`` (tracker/crm/rules/lock.py takes and renews it)."""

    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class IngestionReport(Base):
    """What one collector worker's spool said last (tracker/ingest/report.py writes it every few
    seconds): the dashboard, which may run elsewhere, warns from it when events wait to land."""

    __tablename__ = "ingestion_reports"

    reporter: Mapped[str] = mapped_column(String(300), primary_key=True)  # host and spool folder
    reported_at: Mapped[datetime]
    oldest_pending_seconds: Mapped[float | None] = mapped_column(Float)
    pending_bytes: Mapped[int] = mapped_column(BigInteger)
    dead_letter_rows: Mapped[int] = mapped_column(BigInteger)


class SendLedger(Base):
    """One row per (rule or campaign, contact, trigger): the proof a message was, or may have been, sent.

    Protocol, so no contact is mailed twice for one trigger even when a process dies mid-batch:

    1. Before the message leaves, the sender INSERTs a ``pending`` row and COMMITs it (with the
       other rows of its claim: tracker/crm/sending.py claims a few contacts per transaction).
       A unique violation means this contact was already handled for this trigger: skip it.
    2. The message goes to SMTP.
    3. The row becomes ``sent`` (``sent_at``, ``smtp_message_id``) or ``failed`` (``error``, when the
       server refused it; a retry updates this same row rather than adding one).

    A ``pending`` row left by a crash between 1 and 3 means "may have left": it is never retried on
    its own (at most once beats twice) and shows in the rule's history for a person to decide.
    ``skipped`` consumes the trigger without mailing (unsubscribed, suppressed contact).

    ``trigger_key`` names the occasion: a constant such as ``once`` for rules mailing once per
    contact and for campaigns, the period's start for ``per_period`` rules, the run's time for
    scheduled ones. Exactly one of ``rule_id`` and ``campaign_id`` is set; two unique constraints
    (one per owner) are used because NULLs never collide in a single one. Rules and campaigns with
    sends cannot be deleted (RESTRICT): disable them, their history stays.
    """

    __tablename__ = "send_ledger"
    __table_args__ = (
        UniqueConstraint("rule_id", "contact_id", "trigger_key"),
        UniqueConstraint("campaign_id", "contact_id", "trigger_key"),
        CheckConstraint("(rule_id IS NULL) <> (campaign_id IS NULL)", name="one_owner"),
    )

    # BIGINT on PostgreSQL (the ledger grows with every message); SQLite autoincrements only INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="RESTRICT"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    contact_id: Mapped[str] = mapped_column(String(64))
    trigger_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[SendStatus] = mapped_column(_choice(SendStatus, "status"), default=SendStatus.pending)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    smtp_message_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


class VisitorSalt(Base):
    """The salt of one UTC day for cookieless visitor ids; old days are deleted so ids cannot be linked."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """A contact who must not be mailed: an unsubscribe from one list, or from everything (list '').

    Written synchronously by the unsubscribe page and the RFC 8058 one-click POST, so the change is
    effective at once; the mailer checks it before every send. The unsubscribe event in ClickHouse
    is for reports; this row is the authority. ``pending_event`` is that event (its JSON row) until
    it is handed to the ingestion spool, so a full spool delays it but cannot lose it.
    """

    __tablename__ = "suppressions"

    contact_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    how: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pending_event: Mapped[str | None] = mapped_column(Text)
