"""`odnos rules add|enable|disable|list|dry-run|run|history`: mailing rules from the command line.

Each action is a thin wrapper over tracker.crm.rules (the scheduler and the HTTP API call the same
functions). ``add``, ``enable`` (but for an enter rule leaving present members out), ``disable``
and ``list`` need only the control database, so they work beside a running `odnos serve`. ``add``
prints the new rule's id alone on the last line; new rules are disabled. A mistake (unknown
segment or template, a bad cron expression, bad quiet hours, a number that is not one) is one line
``odnos: error: ...`` and exit code 2. ``run`` exits 1 when a rule stopped on an error (SMTP
unreachable, a template that no longer renders), 0 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tracker import audit
from tracker.cli.common import open_control, open_runtime
from tracker.control.db import ControlPlane
from tracker.control.models import Rule
from tracker.crm.rules.define import (
    RuleSpec,
    add_rule,
    disable_rule,
    enable_rule,
    get_rule,
    list_rules,
    needs_store_to_enable,
)
from tracker.crm.rules.runner import run_rules
from tracker.crm.rules.views import describe, dry_run, history
from tracker.errors import OdnosError
from tracker.runtime import Runtime

TRIGGER_HELP = ("enter (a contact newly in the segment), event:NAME (each human event NAME of a member, "
                "e.g. event:signup) or 'cron:EXPR' (every fire time, e.g. 'cron:0 9 * * 1' = Mondays 9:00)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rules", help="mailing rules: add, enable, dry-run, run, history",
                            description="Mailing rules mail a template to members of a segment when they "
                                        "enter it, when they do an event, or on a cron schedule; never twice "
                                        "for the same trigger, never to anyone unsubscribed. The scheduler "
                                        "runs the enabled rules every ODNOS_RULES_INTERVAL seconds.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a rule, disabled (prints its id)")
    add.add_argument("name")
    add.add_argument("--segment", required=True, help="segment name or id")
    add.add_argument("--template", required=True, help="template name or id")
    add.add_argument("--trigger", required=True, help=TRIGGER_HELP)
    add.add_argument("--once", action="store_true",
                     help="at most one message per contact, ever (the default for enter rules)")
    add.add_argument("--every", metavar="DAYS",
                     help="at most one message per contact every DAYS days (default for event and cron "
                          "rules: one per event or fire time)")
    add.add_argument("--delay", metavar="MIN", default="0",
                     help="minutes to wait after the trigger (enter: after the first run that saw the "
                          "contact in the segment)")
    add.add_argument("--quiet", metavar="START-END",
                     help="no mail in these local hours, e.g. 21-8; held back until they end")
    add.add_argument("--cap", metavar="N", help="at most N messages an hour; the rest wait")
    add.add_argument("--tz", default="UTC",
                     help="the rule's time zone (cron and quiet hours) when a contact has no timezone "
                          "attribute; an IANA name, default UTC")
    add.add_argument("--existing", choices=("mail", "skip"),
                     help="enter rules: mail the members already in the segment when the rule is enabled, "
                          "or not (default: skip)")
    add.set_defaults(run=run_add)

    for action, helptext, handler in (("enable", "turn a rule on", run_enable),
                                      ("disable", "turn a rule off", run_disable)):
        toggle = actions.add_parser(action, help=helptext)
        toggle.add_argument("name", help="rule name or id")
        toggle.set_defaults(run=handler)

    actions.add_parser("list", help="list rules and how their last run went").set_defaults(run=run_list)

    check = actions.add_parser("dry-run", help="who the rule would mail now, and why each other is not")
    check.add_argument("name", help="rule name or id")
    check.add_argument("--limit", type=int, default=100,
                       help="contacts listed (0: all); the counts always cover everyone")
    check.set_defaults(run=run_dry_run)

    run = actions.add_parser("run", help="evaluate the enabled rules once, now, and send")
    run.add_argument("names", nargs="*", metavar="NAME",
                     help="only these rules (default: every enabled rule)")
    run.set_defaults(run=run_run)

    past = actions.add_parser("history", help="a rule's sends: time, contact, status, trigger, error")
    past.add_argument("name", help="rule name or id")
    past.add_argument("--limit", type=int, default=200, help="newest rows shown (0: all)")
    past.set_defaults(run=run_history)


def _number(text: str | None, flag: str, convert: Callable[[str], Any], example: str) -> Any:
    if text is None:
        return None
    try:
        return convert(text)
    except ValueError:
        raise OdnosError(f"{flag} {text!r} is not a number; e.g. {flag} {example}",
                         code="bad_argument") from None


def _with_runtime(action: Callable[[Runtime], int]) -> int:
    with open_runtime() as runtime:
        return action(runtime)


def run_add(args: argparse.Namespace) -> int:
    spec = RuleSpec(name=args.name, segment=args.segment, template=args.template, trigger=args.trigger,
                    once=args.once, every_days=_number(args.every, "--every", float, "7"),
                    delay_minutes=_number(args.delay, "--delay", float, "30"), quiet=args.quiet,
                    cap=_number(args.cap, "--cap", int, "100"), timezone=args.tz, existing=args.existing)
    control = open_control()
    try:
        rule = add_rule(control, spec)
        audit.record_command(control, "rule_added", rule.name, {"id": rule.id, "rule": describe(rule)})
    finally:
        control.dispose()
    print(f"added rule {rule.name!r}: {describe(rule)}; disabled until `odnos rules enable {rule.name}`")
    print(rule.id)
    return 0


def run_enable(args: argparse.Namespace) -> int:
    def report(control: ControlPlane, rule: Rule, skipped: int) -> int:
        audit.record_command(control, "rule_enabled", rule.name, {"id": rule.id, "skipped": skipped})
        print(f"rule {rule.name!r} is enabled: {describe(rule)}")
        if skipped:
            print(f"{skipped} contact(s) already in the segment will not be mailed (add the rule with "
                  "--existing mail to include them)")
        return 0

    control = open_control()
    try:
        if not needs_store_to_enable(get_rule(control, args.name)):
            return report(control, *enable_rule(control, args.name))
    finally:
        control.dispose()
    # An enter rule leaving today's members out reads its segment: that needs the event store.
    return _with_runtime(lambda rt: report(rt.control, *enable_rule(rt.control, args.name, store=rt.store)))


def run_disable(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        rule = disable_rule(control, args.name)
        audit.record_command(control, "rule_disabled", rule.name, {"id": rule.id})
    finally:
        control.dispose()
    print(f"rule {rule.name!r} is disabled")
    return 0


def run_list(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        rules = list_rules(control)
    finally:
        control.dispose()
    for rule, segment, template in rules:
        last = f"last run {rule.last_run_at:%Y-%m-%d %H:%M} UTC" if rule.last_run_at else "never run"
        if rule.last_error:
            last += f", error: {rule.last_error}"
        state = "enabled" if rule.enabled else "disabled"
        print(f"{rule.id}\t{rule.name}\t{state}\tsegment {segment}\ttemplate {template}\t"
              f"{describe(rule)}\t{last}")
    return 0


def run_dry_run(args: argparse.Namespace) -> int:
    def action(runtime: Runtime) -> int:
        result = dry_run(runtime, args.name)
        print(f"rule {result.rule.name!r} ({describe(result.rule)}) at {result.now:%Y-%m-%d %H:%M} UTC: "
              f"would mail {len(result.due)}, not {len(result.not_mailed)}")
        if result.note:
            print(result.note)
        shown = result.decisions if args.limit <= 0 else result.decisions[:args.limit]
        for decision in shown:
            who = decision.contact.email or decision.contact.contact_id
            print(f"mail\t{who}" if decision.due else f"not\t{who}\t{decision.detail}")
        if len(shown) < len(result.decisions):
            print(f"... and {len(result.decisions) - len(shown)} more (--limit 0 lists all)")
        reasons = result.reasons()
        if reasons:
            print("not mailed: " + ", ".join(f"{why} {n}" for why, n in reasons.most_common()))
        return 0

    return _with_runtime(action)


def run_run(args: argparse.Namespace) -> int:
    def action(runtime: Runtime) -> int:
        reports = run_rules(runtime, args.names)
        if not reports:
            print("no enabled rules")
        for report in reports:
            print(report.summary())
        return 1 if any(report.error for report in reports) else 0

    return _with_runtime(action)


def run_history(args: argparse.Namespace) -> int:
    def action(runtime: Runtime) -> int:
        rule, rows = history(runtime, args.name, limit=args.limit)
        if not rows:
            print(f"rule {rule.name!r} has sent nothing yet")
        for item in rows:
            row = item.row
            when = row.sent_at or row.created_at
            print(f"{when:%Y-%m-%d %H:%M:%S}\t{item.email or row.contact_id}\t{row.status}\t{row.trigger_key}"
                  f"\t{row.error or ''}")
        return 0

    return _with_runtime(action)
