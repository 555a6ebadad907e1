"""Define mailing rules: parse what a person typed (``--trigger cron:0 9 * * 1``, ``--quiet 21-8``)
into a ``Rule``, add it, enable or disable it, find and list rules.

Every mistake is an ``OdnosError`` saying what was wrong and what would be right, raised before
anything is stored; the CLI prints it as one line, the API will answer 400 with it. New rules are
disabled. Enabling starts the rule's clock: an event rule answers events received from then on, a
schedule rule serves fire times from then on, and an enter rule, unless it was added with
``--existing mail``, consumes the trigger of every contact already in the segment (a ``skipped``
ledger row saying so), so that turning on a welcome rule does not greet the whole list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.control.db import ControlPlane
from tracker.control.fields import clean_name
from tracker.control.models import Rule, RuleFrequency, RuleTrigger, Segment, Template, utcnow
from tracker.crm.rules.clock import check_zone
from tracker.crm.rules.cron import parse_cron
from tracker.crm.rules.due import EXISTING, enter_key
from tracker.crm.rules.ledger import rows_by_contact, skip_existing
from tracker.crm.segments import get_segment, segment_members
from tracker.crm.templates import get_template
from tracker.errors import NotFound, OdnosError
from tracker.store.base import EventStore

MAX_NAME = 200
MAX_DELAY_MINUTES = 366 * 24 * 60
MAX_EVERY_DAYS = 3660
BASELINE_PAGE = 5000


@dataclass(frozen=True)
class RuleSpec:
    """A rule as a person states it (the CLI's flags, the API's fields), before it is checked."""

    name: str
    segment: str
    template: str
    trigger: str  # enter | event:NAME | cron:EXPR
    once: bool = False
    every_days: float | None = None
    delay_minutes: float = 0
    quiet: str | None = None  # "21-8"
    cap: int | None = None
    timezone: str = "UTC"
    existing: str | None = None  # mail | skip (enter rules)


def _bad(message: str, code: str = "bad_rule") -> OdnosError:
    return OdnosError(message, code=code)


def parse_trigger(text: str, timezone: str) -> tuple[RuleTrigger, str | None, str | None]:
    """``enter``, ``event:NAME`` or ``cron:EXPR`` -> (trigger, cron expression, event name)."""
    kind, colon, rest = text.strip().partition(":")
    rest = rest.strip()
    if kind == "enter" and not colon:
        return RuleTrigger.enter, None, None
    if kind == "event" and rest:
        if len(rest) > 200 or any(ch.isspace() for ch in rest):
            raise _bad(f"event name {rest[:40]!r} must be 1 to 200 characters without spaces, e.g. "
                       "--trigger event:signup", "bad_trigger")
        return RuleTrigger.event, None, rest
    if kind == "cron" and rest:
        parse_cron(rest, timezone)
        return RuleTrigger.schedule, " ".join(rest.split()), None
    raise _bad(f"--trigger {text!r} must be enter, event:NAME (e.g. event:signup) or cron:EXPR "
               "(e.g. 'cron:0 9 * * 1', Mondays at 9)", "bad_trigger")


def parse_quiet(text: str) -> tuple[int, int]:
    """``21-8`` -> (21, 8): quiet from 21:00 until 08:00, local time."""
    start, dash, end = text.strip().partition("-")
    if not (dash and start.strip().isdigit() and end.strip().isdigit()):
        raise _bad(f"--quiet {text!r} must be two hours START-END, e.g. --quiet 21-8 (no mail from 21:00 "
                   "to 08:00 local time)", "bad_quiet_hours")
    first, last = int(start), int(end)
    if not (0 <= first <= 23 and 0 <= last <= 23):
        raise _bad(f"--quiet {text!r}: hours are 0 to 23, e.g. --quiet 21-8", "bad_quiet_hours")
    if first == last:
        raise _bad(f"--quiet {text!r} starts and ends at the same hour; e.g. --quiet 21-8", "bad_quiet_hours")
    return first, last


def _frequency(spec: RuleSpec, trigger: RuleTrigger) -> tuple[RuleFrequency, int | None]:
    if spec.once and spec.every_days is not None:
        raise _bad("give --once or --every DAYS, not both")
    if spec.every_days is not None:
        days = spec.every_days
        if not (math.isfinite(days) and 0 < days <= MAX_EVERY_DAYS) or days * 86400 < 60:
            raise _bad(f"--every {days:g}: give a number of days from 0.001 (a few minutes) to "
                       f"{MAX_EVERY_DAYS}, e.g. --every 7")
        return RuleFrequency.per_period, round(days * 86400)
    if spec.once or trigger == RuleTrigger.enter:
        return RuleFrequency.once, None
    return RuleFrequency.each, None


def build_rule(session: Session, control: ControlPlane, spec: RuleSpec) -> Rule:
    """The checked, unsaved ``Rule`` of ``spec`` (disabled); ``OdnosError`` for the first mistake."""
    name = clean_name(spec.name, what="rule name", max_length=MAX_NAME)
    timezone = check_zone(spec.timezone.strip())
    trigger, schedule, event_name = parse_trigger(spec.trigger, timezone)
    frequency, period = _frequency(spec, trigger)
    if not (math.isfinite(spec.delay_minutes) and 0 <= spec.delay_minutes <= MAX_DELAY_MINUTES):
        raise _bad(f"--delay {spec.delay_minutes:g}: give minutes from 0 to {MAX_DELAY_MINUTES}, "
                   "e.g. --delay 30")
    if spec.cap is not None and spec.cap < 1:
        raise _bad(f"--cap {spec.cap}: give at least 1 message an hour, or leave --cap out for no cap")
    if spec.existing not in (None, "mail", "skip"):
        raise _bad(f"--existing {spec.existing!r} must be mail or skip")
    if spec.existing is not None and trigger != RuleTrigger.enter:
        raise _bad("--existing applies to enter rules only (event and schedule rules start from "
                   "when they are enabled)")
    quiet = parse_quiet(spec.quiet) if spec.quiet else (None, None)
    segment = get_segment(session, spec.segment)
    template = get_template(control, spec.template)
    if session.scalar(select(Rule.id).where(Rule.name == name)) is not None:
        raise _bad(f"a rule named {name!r} exists already; choose another name", "rule_exists")
    return Rule(name=name, segment_id=segment.id, template_id=template.id, trigger=trigger,
                schedule=schedule, event_name=event_name, timezone=timezone, frequency=frequency,
                period_seconds=period, delay_seconds=round(spec.delay_minutes * 60),
                quiet_start=quiet[0], quiet_end=quiet[1], hourly_cap=spec.cap, enabled=False,
                mail_existing=spec.existing == "mail")


def add_rule(control: ControlPlane, spec: RuleSpec) -> Rule:
    """Check ``spec`` and store it as a new, disabled rule."""
    with control.session() as session:
        rule = build_rule(session, control, spec)
        session.add(rule)
        try:
            session.flush()
        except IntegrityError:
            raise _bad(f"a rule named {rule.name!r} was just added by someone else; choose another name",
                       "rule_exists") from None
        return rule


def find_rule(session: Session, name_or_id: str) -> Rule:
    """The rule of that name, or of that id when no name matches; NotFound otherwise."""
    rule = session.scalar(select(Rule).where(Rule.name == name_or_id))
    if rule is None and name_or_id.isdigit():
        rule = session.get(Rule, int(name_or_id))
    if rule is None:
        raise NotFound(f"no rule {name_or_id!r}; `odnos rules list` shows them, `odnos rules add` adds one")
    return rule


def get_rule(control: ControlPlane, name_or_id: str) -> Rule:
    with control.sessions() as session:
        return find_rule(session, name_or_id)


def list_rules(control: ControlPlane) -> list[tuple[Rule, str, str]]:
    """Every rule, by name, with the names of its segment and template."""
    with control.sessions() as session:
        rows = session.execute(select(Rule, Segment.name, Template.name)
                               .join(Segment, Segment.id == Rule.segment_id)
                               .join(Template, Template.id == Rule.template_id).order_by(Rule.name))
        return [tuple(row) for row in rows]


def needs_store_to_enable(rule: Rule) -> bool:
    """Whether enabling ``rule`` reads the segment (an enter rule leaving its present members out)."""
    return rule.trigger == RuleTrigger.enter and not rule.mail_existing


def _skip_current_members(control: ControlPlane, store: EventStore, rule: Rule, now: datetime) -> int:
    """Consume the trigger of every member now in the segment who has no ledger row; how many."""
    with control.sessions() as session:
        definition = session.get(Segment, rule.segment_id).definition
    skipped, after = 0, ""
    while page := segment_members(store, definition, after_contact_id=after, limit=BASELINE_PAGE, now=now):
        with control.sessions() as session:
            rows = rows_by_contact(session, rule.id, [c.contact_id for c in page])
        fresh = [c.contact_id for c in page if not rows.get(c.contact_id)]
        skip_existing(control, rule.id, fresh, enter_key(rule, []), EXISTING)
        skipped += len(fresh)
        after = page[-1].contact_id
    return skipped


def enable_rule(control: ControlPlane, name_or_id: str, *, store: EventStore | None = None,
                now: datetime | None = None) -> tuple[Rule, int]:
    """Switch a rule on; with the number of present members an enter rule will not mail.

    The rule's clock starts now (``watermark``). An enter rule without ``--existing mail`` needs
    the event store (``needs_store_to_enable``) to leave the present members out, which happens
    before the rule is switched on, so no run can mail them in between. Enabling an enabled rule
    changes nothing.
    """
    now = now or utcnow()
    rule = get_rule(control, name_or_id)
    if rule.enabled:
        return rule, 0
    skipped = 0
    if needs_store_to_enable(rule):
        if store is None:
            raise ValueError("enabling this rule reads its segment: pass the event store")
        skipped = _skip_current_members(control, store, rule, now)
    with control.session() as session:
        stored = session.get(Rule, rule.id)
        stored.enabled = True
        stored.watermark = None if stored.trigger == RuleTrigger.enter else now
        stored.last_error = None
        session.flush()
        return stored, skipped


def disable_rule(control: ControlPlane, name_or_id: str) -> Rule:
    """Switch a rule off: no run evaluates it until it is enabled again (its history stays)."""
    with control.session() as session:
        rule = find_rule(session, name_or_id)
        rule.enabled = False
        session.flush()
        return rule


# What an edit may change: everything a ``RuleSpec`` states. The clock (watermark), the last run
# and the history stay with the rule.
_EDITABLE = ("name", "segment_id", "template_id", "trigger", "schedule", "event_name", "timezone",
             "frequency", "period_seconds", "delay_seconds", "quiet_start", "quiet_end", "hourly_cap",
             "mail_existing")


def edit_rule(control: ControlPlane, name_or_id: str, spec: RuleSpec) -> Rule:
    """Give a disabled rule the settings of ``spec``, checked as ``add_rule`` checks them.

    Only a disabled rule changes: enabling it again starts its clock anew and, for an enter rule,
    leaves the segment's present members out, exactly as for a new rule, so a new segment or
    trigger never mails a crowd at once. Its ledger stays, so nobody it mailed is mailed again
    for the same trigger.
    """
    with control.session() as session:
        stored = find_rule(session, name_or_id)
        if stored.enabled:
            raise _bad(f"rule {stored.name!r} is enabled; disable it before changing it", "rule_enabled")
        # build_rule refuses a name another rule holds; for the length of this transaction (never
        # committed so) the rule's own name is moved aside, so keeping it is not a clash.
        stored.name = f"~editing rule {stored.id}~"
        session.flush()
        built = build_rule(session, control, spec)
        for column in _EDITABLE:
            setattr(stored, column, getattr(built, column))
        try:
            session.flush()
        except IntegrityError:
            raise _bad(f"a rule named {built.name!r} was just added by someone else; choose another name",
                       "rule_exists") from None
        return stored
