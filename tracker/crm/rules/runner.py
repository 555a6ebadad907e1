"""Evaluate mailing rules now and send what is due, through tracker.crm.sending's ledger protocol.

For each enabled rule, in id order: plan it (tracker/crm/rules/due.py), and hand each page's due
contacts, grouped by trigger key, to ``send_batch`` in chunks of ``CHUNK``. Everything that keeps a
contact from being mailed twice is the ledger's: a batch killed half way leaves ``sent`` rows for
those done, at most ``sending.MAX_PENDING`` ``pending`` rows for the messages in flight (which may
or may not have left: they are never retried, at most once), and no row for the rest, whom the
next run mails.

SMTP trouble stops the run: when the server cannot be reached, or a chunk ends with at least
``DEFERRED_STOP`` messages deferred (4xx after the retries) and none accepted, the run stops (the
rules after it are not evaluated), the rule keeps its ``enabled`` state and gets the reason in
``last_error`` (``odnos rules list`` shows it), and the next run (a minute later under the
scheduler) tries again: contacts not reached have no row, deferred ones are retried. A rule that
fails on its own (a template that no longer renders, a segment that no longer compiles) gets
``last_error`` too, and the others still run. ``dry_run`` rules are planned but never sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from tracker.control.models import Rule, Template, utcnow
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.model import Contact
from tracker.crm.rules.define import find_rule
from tracker.crm.rules.due import ALREADY, Decision, Plan
from tracker.crm.sending import DEFERRED_STOP, BatchResult, Owner, mark_bounced, send_batch
from tracker.errors import NotFound, OdnosError
from tracker.runtime import Runtime

log = logging.getLogger(__name__)

CHUNK = 20  # contacts per send_batch call: SMTP trouble is noticed after this many at most


@dataclass
class RuleReport:
    """What one evaluation of one rule did."""

    rule: str
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # not mailable: why -> how many
    already: int = 0  # handled before (a row for the key)
    failed: int = 0
    deferred: int = 0
    unknown: int = 0  # may have left: the connection died before the server answered
    held: Counter[str] = field(default_factory=Counter)  # waiting: why -> how many
    passed: Counter[str] = field(default_factory=Counter)  # not mailed for this trigger: why -> how many
    would_send: int = 0  # dry-run rules
    note: str = ""
    error: str = ""

    def summary(self) -> str:
        parts = [f"would mail {self.would_send} (dry run)"] if self.would_send else [f"sent {self.sent}"]
        if self.skipped:
            parts.append(f"skipped {sum(self.skipped.values())} ({_counts(self.skipped)})")
        parts.append(f"already {self.already}")
        for label, count in (("failed", self.failed), ("deferred", self.deferred), ("unknown", self.unknown)):
            if count:
                parts.append(f"{label} {count}")
        if self.held:
            parts.append(f"held {sum(self.held.values())} ({_counts(self.held)})")
        if self.passed:
            parts.append(f"not mailed {sum(self.passed.values())} ({_counts(self.passed)})")
        line = f"{self.rule}: " + ", ".join(parts)
        if self.note:
            line += f"; {self.note}"
        if self.error:
            line += f"; stopped: {self.error}"
        return line


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{why} {n}" for why, n in counter.most_common())


class _Stop(Exception):
    """SMTP trouble: stop this run; the message goes on the rule and in the report."""


class _Smtp:
    """One SMTP connection for the whole run, opened when the first message is due."""

    def __init__(self, runtime: Runtime, given: SmtpSender | None) -> None:
        self._runtime, self._given, self._own = runtime, given, None

    def sender(self) -> SmtpSender:
        if self._given is not None:
            return self._given
        if self._own is None:
            self._own = SmtpSender(self._runtime.settings.smtp_url)
        return self._own

    def close(self) -> None:
        if self._own is not None:
            self._own.close()


def enabled_rules(runtime: Runtime, names: Sequence[str] = ()) -> list[Rule]:
    """The rules to evaluate: every enabled one, or those named (each must exist and be enabled)."""
    with runtime.control.sessions() as session:
        if not names:
            return list(session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.id)))
        rules = [find_rule(session, name) for name in names]
    for rule in rules:
        if not rule.enabled:
            raise OdnosError(f"rule {rule.name!r} is disabled; enable it with `odnos rules enable "
                             f"{rule.name}`, or see what it would do with `odnos rules dry-run {rule.name}`",
                             code="rule_disabled")
    return rules


def run_rules(runtime: Runtime, names: Sequence[str] = (), *, now: datetime | None = None,
              smtp: SmtpSender | None = None,
              heartbeat: Callable[[], bool] | None = None) -> list[RuleReport]:
    """Evaluate the enabled rules (or the ones named) once, now; one report per rule evaluated.

    ``heartbeat`` is called between chunks (the scheduler renews its lock there); when it returns
    False the run stops where it is, since another process now acts.
    """
    reports = []
    connection = _Smtp(runtime, smtp)
    try:
        for rule in enabled_rules(runtime, names):
            report = RuleReport(rule.name)
            reports.append(report)
            try:
                _run_rule(runtime, rule, report, now or utcnow(), connection, heartbeat)
            except _Stop as stop:
                report.error = str(stop)
                _finish(runtime, rule, None, str(stop))
                log.error("mailing rule %r: %s; the run stops, the next one tries again", rule.name, stop)
                break
            except OdnosError as exc:
                report.error = exc.message
                _finish(runtime, rule, None, exc.message)
                log.error("mailing rule %r failed: %s", rule.name, exc.message)
    finally:
        connection.close()
    return reports


def _run_rule(runtime: Runtime, rule: Rule, report: RuleReport, now: datetime, connection: _Smtp,
              heartbeat: Callable[[], bool] | None) -> None:
    plan = Plan(runtime, rule, now)
    with runtime.control.sessions() as session:
        template = session.get(Template, rule.template_id)
    if template is None:
        raise NotFound(f"the template of rule {rule.name!r} is gone")
    if plan.fire is None and plan.next_fire is not None:
        report.note = f"next fire time {plan.next_fire:%Y-%m-%d %H:%M %Z}"
    elif plan.fire is not None:
        report.note = f"fire time {plan.fire:%Y-%m-%d %H:%M %Z}"
    for page in plan.pages():
        _beat(heartbeat)
        due = _tally(report, page)
        if rule.dry_run:
            report.would_send += len(due)
            continue
        by_key: dict[str, list[Contact]] = {}
        for decision in due:
            by_key.setdefault(decision.trigger_key, []).append(decision.contact)
        for key, contacts in by_key.items():
            for start in range(0, len(contacts), CHUNK):
                _beat(heartbeat)
                result = send_batch(runtime, Owner.rule(rule.id), key, template,
                                    contacts[start:start + CHUNK], smtp=connection.sender(),
                                    on_bounce=mark_bounced(runtime), send_size=len(contacts) - start)
                _add(report, result)
                if result.stopped:
                    raise _Stop(result.stopped)
                if len(result.deferred) >= DEFERRED_STOP and not result.sent:
                    detail = next(iter(result.deferred.values()))
                    raise _Stop(f"{len(result.deferred)} messages in a row deferred by the SMTP server: "
                                f"{detail}")
    _finish(runtime, rule, plan.watermark, None)


def _beat(heartbeat: Callable[[], bool] | None) -> None:
    if heartbeat is not None and not heartbeat():
        raise _Stop("another scheduler took over the lock")


def _tally(report: RuleReport, page: list[Decision]) -> list[Decision]:
    """Count the page's decisions into the report; the due ones."""
    due = []
    for decision in page:
        if decision.due:
            due.append(decision)
        elif decision.held:
            report.held[decision.why] += 1
        elif decision.why == ALREADY:
            report.already += 1
        else:
            report.passed[decision.why] += 1
    return due


def _add(report: RuleReport, result: BatchResult) -> None:
    report.sent += len(result.sent)
    report.skipped.update(result.skipped.values())
    report.already += len(result.already)
    report.failed += len(result.failed)
    report.deferred += len(result.deferred)
    report.unknown += len(result.unknown)


def _finish(runtime: Runtime, rule: Rule, watermark: datetime | None, error: str | None) -> None:
    """Record the run on the rule: when, how it ended, and (if it got that far) the new watermark."""
    with runtime.control.session() as session:
        stored = session.get(Rule, rule.id)
        stored.last_run_at = utcnow()
        stored.last_error = error
        if watermark is not None:
            stored.watermark = watermark
