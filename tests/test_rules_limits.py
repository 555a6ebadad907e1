"""What holds a message back, through the real parts: quiet hours in the contact's time zone, the
hourly cap, a dry run that names the reason for every member not mailed, SMTP trouble that stops
the run without losing anyone, bounces, and dry-run rules that never send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.fixtures.clickhouse import free_port
from tests.test_rules_world import World, smtp_fixture, world_fixture, zone_at  # noqa: F401
from tracker.contacts import contact_id_for
from tracker.control.models import Rule
from tracker.crm.contacts import find_contact
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.rules.define import get_rule
from tracker.crm.rules.runner import run_rules
from tracker.crm.rules.views import dry_run


def test_quiet_hours_follow_the_contact_time_zone_else_the_rule_s(world: World) -> None:
    tokyo, = world.people("ann", attrs={"timezone": "Asia/Tokyo"})  # UTC+9
    york, = world.people("bob", attrs={"timezone": "America/New_York"})  # UTC-5 in December
    plain, = world.people("cy")  # no zone: the rule's (UTC)
    odd, = world.people("dan", attrs={"timezone": "Mars/Olympus"})  # not a zone: the rule's
    world.rule(existing="mail", quiet="21-8")
    afternoon = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo, 09:00 in New York
    first, = run_rules(world.runtime, now=afternoon)
    assert (first.sent, first.held) == (3, {"quiet hours": 1})
    assert world.received() == {york: 1, plain: 1, odd: 1}
    assert run_rules(world.runtime, now=afternoon.replace(hour=22, minute=30))[0].sent == 0  # 07:30 Tokyo
    assert run_rules(world.runtime, now=afternoon.replace(hour=23, minute=30))[0].sent == 1  # 08:30 Tokyo
    assert world.received() == {tokyo: 1, york: 1, plain: 1, odd: 1}


def test_quiet_hours_in_the_rule_zone(world: World) -> None:
    ann, = world.people("ann")
    world.rule(existing="mail", quiet="21-8", timezone="Europe/Paris")
    evening = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # 21:30 in Paris
    assert run_rules(world.runtime, now=evening)[0].held == {"quiet hours": 1}
    assert run_rules(world.runtime, now=evening + timedelta(hours=11))[0].sent == 1  # 08:30 Paris
    assert world.received() == {ann: 1}


def test_hourly_cap_sends_at_most_n_per_rolling_hour_and_the_rest_wait(world: World) -> None:
    people = world.people(*(f"p{n:02d}" for n in range(12)))
    world.rule(existing="mail", cap=5)
    now = datetime.now(UTC)
    first, = run_rules(world.runtime, now=now)
    assert (first.sent, first.held) == (5, {"hourly cap reached": 7})
    assert run_rules(world.runtime, now=now + timedelta(minutes=30))[0].sent == 0
    assert run_rules(world.runtime, now=now + timedelta(minutes=61))[0].sent == 5
    assert run_rules(world.runtime, now=now + timedelta(minutes=122))[0].sent == 2
    assert world.received() == dict.fromkeys(people, 1)


def test_dry_run_names_why_each_member_is_not_mailed(world: World) -> None:
    ann, = world.people("ann")
    segment = world.segment()
    # Real time (the cap counts the ledger's real timestamps), in zones where it is noon and 22:00.
    noon = datetime.now(UTC)
    rule = world.rule(segment=segment, existing="mail", cap=2, quiet="21-8", timezone=zone_at(12, noon))
    assert run_rules(world.runtime, now=noon)[0].sent == 1  # ann; one of the two an hour is used
    bob, = world.people("bob", status="unsubscribed")
    cy, = world.people("cy", attrs={"timezone": zone_at(22, noon)})
    dan, eve = world.people("dan", "eve")
    result = dry_run(world.runtime, rule, now=noon)
    why = {d.contact.email: d.why for d in result.decisions}
    due_one = min((dan, eve), key=contact_id_for)  # members come in contact id order
    capped = max((dan, eve), key=contact_id_for)
    assert why == {ann: "already mailed", bob: "unsubscribed", cy: "quiet hours", due_one: "",
                   capped: "hourly cap reached"}
    assert [d.contact.email for d in result.due] == [due_one]
    delayed = world.rule(segment=segment, existing="mail", delay_minutes=30)
    waiting = dry_run(world.runtime, delayed, now=noon)
    assert {d.contact.email: d.why for d in waiting.decisions} == {
        ann: "delay not over", bob: "unsubscribed", cy: "delay not over", dan: "delay not over",
        eve: "delay not over"}
    due_at = noon + timedelta(minutes=30)
    assert {d.detail for d in waiting.decisions if d.why == "delay not over"} == {
        f"delay not over (due {due_at:%Y-%m-%d %H:%M} UTC)"}
    skipping = world.rule(segment=segment, enable=False)
    existing = dry_run(world.runtime, skipping, now=noon)
    assert {d.why for d in existing.decisions} == {"member when the rule was enabled"}
    assert "disabled" in existing.note
    assert world.received() == {ann: 1}  # dry runs send nothing and write nothing
    assert len(world.ledger(rule)) == 1


def test_an_unreachable_smtp_server_stops_the_run_and_the_next_mails_everyone_once(world: World) -> None:
    people = world.people("ann", "bob", "cy", "dan")
    rule = world.rule(existing="mail")
    other = world.rule(existing="mail")
    down = SmtpSender(f"smtp://127.0.0.1:{free_port()}", attempts=2, backoff=0.01)
    reports = run_rules(world.runtime, smtp=down)
    assert len(reports) == 1 and "cannot be reached" in reports[0].error  # the run stopped there
    stored = get_rule(world.runtime.control, rule)
    assert stored.enabled and "cannot be reached" in stored.last_error
    # The contacts claimed before the server was found down are marked deferred (certainly not sent).
    assert {(row.status, row.error.split(":")[0]) for row in world.ledger(rule)} == {("failed", "deferred")}
    assert world.received() == {}
    healed = {r.rule: r for r in run_rules(world.runtime)}
    assert (healed[rule].sent, healed[other].sent) == (4, 4)
    assert get_rule(world.runtime.control, rule).last_error is None
    assert world.received() == dict.fromkeys(people, 2)


def test_repeated_4xx_answers_stop_the_run_and_deferred_contacts_are_retried(world: World) -> None:
    people = world.people("ann", "bob", "cy")
    rule = world.rule(existing="mail")
    world.smtp.answer("DATA", *["451 4.3.0 try again later"] * 6)  # 3 contacts x 2 attempts
    report, = run_rules(world.runtime, smtp=SmtpSender(world.smtp.url, attempts=2, backoff=0.01))
    assert report.deferred == 3 and "3 messages in a row deferred" in report.error
    assert world.received() == {}
    assert run_rules(world.runtime)[0].sent == 3
    assert world.received() == dict.fromkeys(people, 1)
    assert {row.status for row in world.ledger(rule)} == {"sent"}


def test_a_hard_bounce_marks_the_contact_bounced_for_every_later_rule(world: World) -> None:
    ann, bob = world.people("ann", "bob")
    segment = world.segment()
    world.rule(segment=segment, existing="mail")
    world.smtp.answer(f"RCPT {bob}", "550 5.1.1 no such mailbox")
    report, = run_rules(world.runtime)
    assert (report.sent, report.failed) == (1, 1)
    assert find_contact(world.runtime.store, bob).status == "bounced"
    later = world.rule(segment=segment, existing="mail")
    reports = {r.rule: r for r in run_rules(world.runtime)}
    assert reports[later].sent == 1 and reports[later].skipped == {"bounced": 1}
    assert world.received() == {ann: 2}


def test_a_dry_run_rule_plans_but_never_sends(world: World) -> None:
    world.people("ann", "bob")
    rule = world.rule(existing="mail")
    with world.runtime.control.session() as session:
        session.execute(update(Rule).where(Rule.name == rule).values(dry_run=True))
    report, = run_rules(world.runtime)
    assert (report.would_send, report.sent) == (2, 0)
    assert world.received() == {} and world.ledger(rule) == []
