"""What people are shown about a rule: its one-line description, a dry run, its send history.

The CLI prints these; the dashboard and the HTTP API will return them. Nothing here writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from tracker.control.models import Rule, RuleFrequency, RuleTrigger, SendLedger, utcnow
from tracker.crm.rules import ledger
from tracker.crm.rules.define import get_rule
from tracker.crm.rules.due import Decision, Plan
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.runtime import Runtime


def describe(rule: Rule) -> str:
    """``enter, once, delay 30 min, quiet 21-8 Europe/Paris, cap 100/h``: the rule's settings in words."""
    if rule.trigger == RuleTrigger.event:
        parts = [f"event {rule.event_name}"]
    elif rule.trigger == RuleTrigger.schedule:
        parts = [f"cron '{rule.schedule}'"]
    else:
        parts = ["enter" + (" (existing members too)" if rule.mail_existing else "")]
    if rule.frequency == RuleFrequency.once:
        parts.append("once per contact")
    elif rule.frequency == RuleFrequency.per_period:
        parts.append(f"at most every {(rule.period_seconds or 0) / 86400:g} days")
    else:
        parts.append("each " + ("event" if rule.trigger == RuleTrigger.event else "fire time"))
    if rule.delay_seconds:
        parts.append(f"delay {rule.delay_seconds / 60:g} min")
    if rule.quiet_start is not None:
        parts.append(f"quiet {rule.quiet_start}-{rule.quiet_end}")
    if rule.hourly_cap:
        parts.append(f"cap {rule.hourly_cap}/h")
    parts.append(f"tz {rule.timezone}")
    return ", ".join(parts)


@dataclass
class DryRun:
    rule: Rule
    now: datetime
    decisions: list[Decision]
    note: str

    @property
    def due(self) -> list[Decision]:
        return [d for d in self.decisions if d.due]

    @property
    def not_mailed(self) -> list[Decision]:
        return [d for d in self.decisions if not d.due]

    def reasons(self) -> Counter[str]:
        return Counter(d.why for d in self.not_mailed)


def dry_run(runtime: Runtime, name_or_id: str, *, now: datetime | None = None) -> DryRun:
    """Who the rule would mail if it ran now, and why each other candidate would not be mailed."""
    now = now or utcnow()
    rule = get_rule(runtime.control, name_or_id)
    plan = Plan(runtime, rule, now, explain=True)
    decisions = [d for page in plan.pages() for d in page]
    note = ""
    if not rule.enabled:
        note = "the rule is disabled: this is what it would do if enabled now"
    if rule.trigger == RuleTrigger.event:
        since = rule.watermark or now
        note = "; ".join(filter(None, [note, f"events {rule.event_name!r} received since "
                                              f"{since:%Y-%m-%d %H:%M} UTC; other members did none"]))
    elif plan.next_fire is not None:
        note = "; ".join(filter(None, [note, f"next fire time {plan.next_fire:%Y-%m-%d %H:%M %Z}"]))
    return DryRun(rule, now, decisions, note)


@dataclass(frozen=True)
class HistoryRow:
    row: SendLedger
    email: str  # '' when the contact was erased


def history(runtime: Runtime, name_or_id: str, *, limit: int = 200) -> tuple[Rule, list[HistoryRow]]:
    """The rule's newest ledger rows with each contact's address, newest first."""
    rule = get_rule(runtime.control, name_or_id)
    with runtime.control.sessions() as session:
        rows = ledger.history(session, rule.id, limit=limit)
    contacts = current_contacts(runtime.store, {row.contact_id for row in rows})
    return rule, [HistoryRow(row, contacts[row.contact_id].email if row.contact_id in contacts else "")
                  for row in rows]
