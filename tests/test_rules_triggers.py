"""The three triggers through the real parts: members, events and cron fire times, on chDB and on the
ClickHouse server, mailed through a real SMTP server, each contact exactly once per trigger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.test_rules_world import World, smtp_fixture, world_fixture  # noqa: F401
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.crm.rules.runner import run_rules
from tracker.enrich.email_machines import REVISION_EVENT


def _sent(reports) -> int:
    return sum(r.sent for r in reports)


def test_enter_rule_mails_each_new_member_once_and_never_the_unmailable(world: World) -> None:
    ann, bob = world.people("ann", "bob")
    gone, = world.people("cat", status="unsubscribed")
    bounced, = world.people("dan", status="bounced")
    complained, = world.people("eve", status="complained")
    quiet, = world.people("fay")
    suppress(world.runtime.control.sessions, contact_id_for(quiet), "", "page")
    rule = world.rule(existing="mail")

    [report] = run_rules(world.runtime)
    assert report.sent == 2
    assert report.skipped == {"unsubscribed": 2, "bounced": 1, "complained": 1}
    assert world.received() == {ann: 1, bob: 1}

    again = run_rules(world.runtime)
    assert _sent(again) == 0 and again[0].already == 2  # every member has a row for "once"
    assert again[0].passed == {"unsubscribed": 2, "bounced": 1, "complained": 1}
    newcomer, = world.people("gus")
    later = run_rules(world.runtime)
    assert _sent(later) == 1
    assert world.received() == {ann: 1, bob: 1, newcomer: 1}
    rows = {row.contact_id: (row.status, row.trigger_key, row.error) for row in world.ledger(rule)}
    expected = {ann: ("sent", "once", None), bob: ("sent", "once", None), newcomer: ("sent", "once", None),
                gone: ("skipped", "once", "unsubscribed"), bounced: ("skipped", "once", "bounced"),
                complained: ("skipped", "once", "complained"), quiet: ("skipped", "once", "unsubscribed")}
    assert rows == {contact_id_for(email): row for email, row in expected.items()}


def test_enabling_an_enter_rule_leaves_present_members_out_unless_asked(world: World) -> None:
    ann, bob = world.people("ann", "bob")
    segment = world.segment()
    skip_rule = world.rule(segment=segment)
    mail_rule = world.rule(segment=segment, existing="mail")
    reports = {r.rule: r for r in run_rules(world.runtime)}
    assert reports[skip_rule].sent == 0
    assert reports[skip_rule].passed == {"member when the rule was enabled": 2}
    assert reports[mail_rule].sent == 2
    newcomer, = world.people("cy")
    reports = {r.rule: r for r in run_rules(world.runtime)}
    assert (reports[skip_rule].sent, reports[mail_rule].sent) == (1, 1)
    assert world.received() == {ann: 1, bob: 1, newcomer: 2}


def test_enter_delay_counts_from_the_first_run_that_saw_the_member(world: World) -> None:
    ann, = world.people("ann")
    world.rule(existing="mail", delay_minutes=30)
    start = datetime.now(UTC)
    first = run_rules(world.runtime, now=start)
    assert _sent(first) == 0 and first[0].held == {"delay not over": 1}
    assert _sent(run_rules(world.runtime, now=start + timedelta(minutes=29))) == 0
    assert _sent(run_rules(world.runtime, now=start + timedelta(minutes=31))) == 1
    assert world.received() == {ann: 1}


def test_every_n_days_mails_a_member_again_only_after_the_period(world: World) -> None:
    ann, = world.people("ann")
    rule = world.rule(existing="mail", every_days=7)
    now = datetime.now(UTC)
    assert _sent(run_rules(world.runtime, now=now)) == 1
    soon = run_rules(world.runtime, now=now + timedelta(days=6))
    assert _sent(soon) == 0 and soon[0].passed == {"mailed recently": 1}
    assert _sent(run_rules(world.runtime, now=now + timedelta(days=7, minutes=1))) == 1
    assert world.received() == {ann: 2}
    assert [row.trigger_key for row in world.ledger(rule)] == ["repeat:1", "repeat:2"]


def test_event_rule_answers_each_human_event_of_a_member_once(world: World) -> None:
    ann, bob, cy = world.people("ann", "bob", "cy")
    outsider = world.email("zed")  # not a contact of the segment
    enabled = datetime.now(UTC) - timedelta(minutes=10)
    before = enabled.timestamp() - 60
    world.event("signup", before, email=cy)  # before the rule was enabled: never answered
    rule = world.rule("event:signup", enable_at=enabled)
    now = time.time()
    first = world.event("signup", now - 5, email=ann)
    world.event("signup", now - 4, visitor="v-bob")  # tied to bob through his identity link
    world.link("v-bob", bob, now - 100)
    world.event("signup", now - 3, email=cy, is_bot=1, bot_reason="test")  # a bot: never counts
    world.event("signup", now - 3, email=outsider)
    world.event("pageview", now - 2, email=cy)  # another name
    report, = run_rules(world.runtime)
    assert report.sent == 2 and report.passed == {"not in the segment": 1}
    assert world.received() == {ann: 1, bob: 1}
    assert _sent(run_rules(world.runtime)) == 0  # each event triggers once
    world.event("signup", time.time(), email=ann)  # a second signup event: a second answer
    assert _sent(run_rules(world.runtime)) == 1
    assert world.received() == {ann: 2, bob: 1}
    keys = [row.trigger_key for row in world.ledger(rule)]
    assert keys[0] == f"event:{first['event_id']}" and len(set(keys)) == 3


def test_a_click_a_later_verdict_turns_into_a_scanners_triggers_no_rule(world: World) -> None:
    ann, bob = world.people("ann", "bob")
    world.rule("event:email_click", enable_at=datetime.now(UTC) - timedelta(minutes=10))
    now = time.time()
    for who in (ann, bob):  # each clicked once, looking like a person when the click arrived
        world.event("email_click", now - 5, email=who, message_id=f"m.{who}", link_id="1")
    # then a trap-link click on ann's message: her click two seconds before it was the scanner's
    world.event(REVISION_EVENT, now - 3, email=ann, message_id=f"m.{ann}", site_id="", is_machine=1,
                machine_reason="trap_link", props={"window_ms": "60000"})
    report, = run_rules(world.runtime)
    assert report.sent == 1 and world.received() == {bob: 1}


def test_event_rule_with_once_and_a_delay_from_the_event_time(world: World) -> None:
    ann, = world.people("ann")
    world.rule("event:purchase", once=True, delay_minutes=10,
               enable_at=datetime.now(UTC) - timedelta(hours=1))
    ts = time.time() - 60
    world.event("purchase", ts, email=ann)
    world.event("purchase", ts + 1, email=ann)
    at = datetime.fromtimestamp(ts, UTC)
    held = run_rules(world.runtime, now=at + timedelta(minutes=9))
    assert _sent(held) == 0 and held[0].held == {"delay not over": 2}
    done = run_rules(world.runtime, now=at + timedelta(minutes=11))
    assert _sent(done) == 1 and done[0].already == 1  # the second event: already mailed once
    assert world.received() == {ann: 1}


def test_schedule_rule_mails_each_member_once_per_fire_time(world: World) -> None:
    ann, bob = world.people("ann", "bob")
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday
    assert monday.strftime("%A") == "Monday"
    rule = world.rule("cron:0 9 * * 1", enable_at=monday)
    early = run_rules(world.runtime, now=monday + timedelta(minutes=30))
    assert _sent(early) == 0 and "next fire time 2026-11-30 09:00" in early[0].note
    assert _sent(run_rules(world.runtime, now=monday + timedelta(hours=1, minutes=5))) == 2
    assert _sent(run_rules(world.runtime, now=monday + timedelta(hours=3))) == 0
    cy, = world.people("cy")  # joins on Tuesday: Monday's issue is served until the next fire time
    tuesday = run_rules(world.runtime, now=monday + timedelta(days=1, hours=1))
    assert tuesday[0].sent == 1
    next_week = run_rules(world.runtime, now=monday + timedelta(days=7, hours=1, minutes=1))
    assert _sent(next_week) == 3
    assert world.received() == {ann: 2, bob: 2, cy: 2}
    keys = sorted({row.trigger_key for row in world.ledger(rule)})
    assert keys == ["2026-11-30T09:00Z", "2026-12-07T09:00Z"]


def test_schedule_rule_in_its_time_zone_and_missed_fires_coalesce(world: World) -> None:
    ann, = world.people("ann")
    start = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
    rule = world.rule("cron:0 9 * * *", timezone="Asia/Tokyo", enable_at=start)  # 09:00 Tokyo = 00:00 UTC
    # The scheduler was down for three days: one message for the latest fire time, not three.
    assert _sent(run_rules(world.runtime, now=start + timedelta(days=3, hours=2))) == 1
    assert [row.trigger_key for row in world.ledger(rule)] == ["2026-12-03T00:00Z"]
    assert world.received() == {ann: 1}


def test_event_rule_every_n_days_answers_one_event_per_period(world: World) -> None:
    ann, = world.people("ann")
    world.rule("event:visit_pricing", every_days=1, enable_at=datetime.now(UTC) - timedelta(minutes=5))
    now = time.time()
    world.event("visit_pricing", now - 120, email=ann)
    world.event("visit_pricing", now - 60, email=ann)
    first, = run_rules(world.runtime)
    assert (first.sent, first.passed) == (1, {"mailed recently": 1})
    world.event("visit_pricing", time.time(), email=ann)
    later, = run_rules(world.runtime)
    assert later.sent == 0 and later.passed["mailed recently"] == 2  # the window reads the first two again
    assert world.received() == {ann: 1}
