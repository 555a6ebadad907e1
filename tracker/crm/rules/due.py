"""Who a rule mails now, and why each other candidate is not: one ``Decision`` per contact or event.

The same plan serves ``odnos rules run`` (the runner sends what is due, page by page) and ``odnos
rules dry-run`` (``explain=True``: nothing is written, and the consent check is made here so the
answer names it). Each trigger has its candidates and its trigger key (the ledger's occasion):

- **enter**: every member of the segment, read in pages of contact ids (resumable). Key ``once``,
  or with ``--every N`` days ``repeat:K`` (the contact's K-th mailing by this rule). A member
  with no ledger row for the key is new to the rule. When an enter rule is enabled, the members
  already in the segment are not mailed unless it was added with ``--existing mail``
  (tracker/crm/rules/define.py writes their ``skipped`` rows then). The delay counts from the
  first run that saw the contact as a member (a ``rule_waits`` row).
- **event**: every human event of the rule's name received since the rule's watermark (set when
  the rule is enabled: earlier events never trigger it), of a contact who is a member of the
  segment when the event is judged; events are read again for ``LATE`` after they were received,
  for those that land late in the store. Key ``event:<event id>`` (``once`` with ``--once``),
  so each event triggers at most once; the delay counts from the event's time.
- **schedule**: the latest fire time of the cron expression since the watermark (missed fire
  times coalesce into it); every member is mailed once for it, key = the fire time in UTC
  (``2026-12-07T09:00Z``), until the next fire time replaces it. The delay counts from the fire.

Then, in order: already handled for this key; mailed within the last N days (``--every``); not
mailable (dry run only: the runner lets tracker.crm.sending skip such contacts with a ``skipped``
row); delay not over, quiet hours in the contact's zone, hourly cap reached (these three are held:
no ledger row, a later run mails them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tracker.control.models import Rule, RuleFrequency, RuleTrigger, Segment, SendStatus
from tracker.crm.consent import why_not_mailable
from tracker.crm.model import ConsentStatus, Contact
from tracker.crm.rules import cron
from tracker.crm.rules.clock import quiet_reason
from tracker.crm.rules.ledger import LedgerRow, rows_by_contact, sends_since, waits
from tracker.crm.segments import segment_members, validate_definition
from tracker.crm.segments.compile import compile_definition
from tracker.queries.rules.rule_events import RuleEvent, rule_events
from tracker.queries.segments.segment_members import members as members_where
from tracker.runtime import Runtime

PAGE = 500  # members (or events) judged, then sent, at a time
EVENTS_PER_RUN = 20_000  # events read per run; more wait for the next run (the watermark stops there)
LATE = timedelta(minutes=15)  # events may land this long after the collector received them

ALREADY = "already mailed"
FAILED = "failed before"
RECENT = "mailed recently"
EXISTING = "member when the rule was enabled"
DELAY = "delay not over"
QUIET = "quiet hours"
CAPPED = "hourly cap reached"
NOT_MEMBER = "not in the segment"
NO_FIRE = "waiting for the next fire time"
HELD = frozenset({DELAY, QUIET, CAPPED, NO_FIRE})


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rule does with one candidate now; ``why`` is '' when the contact is due."""

    contact: Contact
    trigger_key: str
    why: str = ""
    detail: str = ""
    received_at: datetime | None = None  # event rules: when the triggering event arrived

    @property
    def due(self) -> bool:
        return not self.why

    @property
    def held(self) -> bool:
        """Not mailed now, but judged again by the next run."""
        return self.why in HELD


class Budget:
    """What the hourly cap leaves this run: the rule's sent and pending rows of the last hour count."""

    def __init__(self, cap: int | None, used: int) -> None:
        self.cap, self.used = cap, used
        self.left = None if cap is None else max(0, cap - used)

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left == 0:
            return False
        self.left -= 1
        return True


def fire_key(fire: datetime) -> str:
    """The trigger key of a schedule's fire time: minutes in UTC."""
    return fire.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def enter_key(rule: Rule, rows: list[LedgerRow]) -> str:
    """``once``; with ``--every`` the key of the contact's next mailing (a deferred one is retried)."""
    if rule.frequency != RuleFrequency.per_period:
        return "once"
    for row in rows:
        if row.retryable:
            return row.trigger_key
    return f"repeat:{len(rows) + 1}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _handled(rows: list[LedgerRow], key: str) -> tuple[str, str] | None:
    for row in rows:
        if row.trigger_key != key or row.retryable:
            continue
        if row.status == SendStatus.sent:
            return ALREADY, f"{ALREADY} ({_when(row.sent_at or row.created_at)})"
        if row.status == SendStatus.pending:
            return ALREADY, f"{ALREADY} (pending since {_when(row.created_at)}: may have left)"
        if row.status == SendStatus.skipped:
            return row.error or "skipped", f"skipped before: {row.error}"
        return FAILED, f"{FAILED}: {row.error}"
    return None


@dataclass
class Plan:
    """The evaluation of one rule at ``now``; iterate ``pages()``, then read ``watermark``."""

    runtime: Runtime
    rule: Rule
    now: datetime
    explain: bool = False
    segment: dict[str, Any] = field(init=False)
    budget: Budget = field(init=False)
    fire: datetime | None = field(default=None, init=False)
    next_fire: datetime | None = field(default=None, init=False)
    watermark: datetime | None = field(default=None, init=False)  # what to store after the run
    _held_since: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        control = self.runtime.control
        with control.sessions() as session:
            segment = session.get(Segment, self.rule.segment_id)
            used = sends_since(session, self.rule.id, self.now - timedelta(hours=1))
        self.segment = validate_definition(segment.definition)
        self.budget = Budget(self.rule.hourly_cap, used)
        if self.rule.trigger == RuleTrigger.schedule:
            trigger = cron.parse_cron(self.rule.schedule or "", self.rule.timezone)
            since = self.rule.watermark or self.now
            self.fire = cron.latest_fire(trigger, since, self.now)
            self.next_fire = cron.next_fire(trigger, self.now)
            self.watermark = self.fire or self.rule.watermark

    # -- candidates -------------------------------------------------------------------------------

    def pages(self) -> Iterator[list[Decision]]:
        if self.rule.trigger == RuleTrigger.event:
            yield from self._event_pages()
            return
        if self.rule.trigger == RuleTrigger.schedule and self.fire is None and not self.explain:
            return
        after = ""
        while True:
            page = segment_members(self.runtime.store, self.segment, after_contact_id=after, limit=PAGE,
                                   now=self.now)
            if not page:
                return
            yield self._member_page(page)
            after = page[-1].contact_id

    def _member_page(self, contacts: list[Contact]) -> list[Decision]:
        rule = self.rule
        with self.runtime.control.sessions() as session:
            rows = rows_by_contact(session, rule.id, [c.contact_id for c in contacts])
            if rule.trigger == RuleTrigger.schedule:
                if self.fire is None:
                    detail = f"{NO_FIRE} ({_when(self.next_fire)})" if self.next_fire else NO_FIRE
                    return [Decision(c, "", NO_FIRE, detail) for c in contacts]
                start = self.fire
                key = "once" if rule.frequency == RuleFrequency.once else fire_key(self.fire)
                return [self._judge(session, c, key, rows.get(c.contact_id, []), start) for c in contacts]
            decisions: list[Decision] = []
            fresh = [c for c in contacts if not rows.get(c.contact_id)]
            if not rule.enabled and not rule.mail_existing:
                # What enabling the rule now would do: today's members are left out.
                decisions = [Decision(c, enter_key(rule, []), EXISTING, EXISTING) for c in fresh]
                contacts = [c for c in contacts if rows.get(c.contact_id)]
            seen: dict[str, datetime] = {}
            if rule.delay_seconds:
                seen = waits(self.runtime.control, rule.id, [c.contact_id for c in contacts], self.now,
                             record=not self.explain)
            for contact in contacts:
                contact_rows = rows.get(contact.contact_id, [])
                start = seen.get(contact.contact_id, self.now)
                decisions.append(self._judge(session, contact, enter_key(rule, contact_rows), contact_rows,
                                             start))
            return decisions

    def _event_pages(self) -> Iterator[list[Decision]]:
        """Events received since the watermark; the next run starts at the oldest one still held, or
        ``LATE`` before now (so an event that lands late is still read), never before this run did."""
        rule = self.rule
        since = rule.watermark or self.now
        events = rule_events(self.runtime.store, rule.event_name or "", since, self.now, limit=EVENTS_PER_RUN)
        mailed_now: set[str] = set()
        for start in range(0, len(events), PAGE):
            yield self._event_page(events[start:start + PAGE], mailed_now)
        next_since = self.now - LATE
        if len(events) == EVENTS_PER_RUN:
            next_since = min(next_since, events[-1].received_at)
        if self._held_since is not None:
            next_since = min(next_since, self._held_since)
        self.watermark = max(since, next_since)

    def _event_page(self, events: list[RuleEvent], mailed_now: set[str]) -> list[Decision]:
        rule = self.rule
        ids = sorted({e.contact_id for e in events})
        compiled = compile_definition(self.segment, now=self.now)
        inside = {c.contact_id: c for c in members_where(
            self.runtime.store, f"contact_id IN %(rule_contacts)s AND ({compiled.sql})",
            {**compiled.params, "rule_contacts": tuple(ids)}, limit=len(ids))}
        decisions = []
        with self.runtime.control.sessions() as session:
            rows = rows_by_contact(session, rule.id, list(inside))
            for event in events:
                contact = inside.get(event.contact_id)
                key = "once" if rule.frequency == RuleFrequency.once else f"event:{event.event_id}"
                if contact is None:
                    stub = Contact(contact_id=event.contact_id, email="")
                    decisions.append(Decision(stub, key, NOT_MEMBER, NOT_MEMBER, event.received_at))
                    continue
                if event.contact_id in mailed_now and rule.frequency != RuleFrequency.each:
                    why = ALREADY if rule.frequency == RuleFrequency.once else RECENT
                    decisions.append(Decision(contact, key, why, f"{why} (an earlier event in this run)",
                                              event.received_at))
                    continue
                decision = self._judge(session, contact, key, rows.get(contact.contact_id, []), event.ts,
                                       event.received_at)
                if decision.due:
                    mailed_now.add(contact.contact_id)
                elif decision.held and (self._held_since is None or event.received_at < self._held_since):
                    self._held_since = event.received_at
                decisions.append(decision)
        return decisions

    # -- one candidate ----------------------------------------------------------------------------

    def _judge(self, session: Session, contact: Contact, key: str, rows: list[LedgerRow], start: datetime,
               received_at: datetime | None = None) -> Decision:
        rule, now = self.rule, self.now

        def no(why: str, detail: str = "") -> Decision:
            return Decision(contact, key, why, detail or why, received_at)

        handled = _handled(rows, key)
        if handled is not None:
            return no(*handled)
        if rule.frequency == RuleFrequency.per_period and rule.period_seconds:
            last = max((r.created_at for r in rows if r.counts_as_mailing), default=None)
            if last is not None and last > now - timedelta(seconds=rule.period_seconds):
                again = last + timedelta(seconds=rule.period_seconds)
                return no(RECENT, f"{RECENT} ({_when(last)}; again from {_when(again)})")
        mailable = contact.status == ConsentStatus.subscribed
        if self.explain:
            reason = why_not_mailable(session, self.runtime.keys, contact)
            if reason is not None:
                return no(reason)
        ready = start + timedelta(seconds=rule.delay_seconds)
        if ready > now:
            return no(DELAY, f"{DELAY} (due {_when(ready)})")
        quiet = quiet_reason(contact, rule.timezone, rule.quiet_start, rule.quiet_end, now)
        if quiet is not None:
            return no(QUIET, quiet)
        if mailable and not self.budget.take():
            return no(CAPPED, f"{CAPPED} ({rule.hourly_cap} an hour)")
        return Decision(contact, key, received_at=received_at)
