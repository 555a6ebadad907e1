"""The pieces of a rule's definition that need no server: cron as crontab reads it (APScheduler alone
would fire ``* * 1`` on Tuesdays), fire times, quiet hours across midnight, time-zone choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker.crm.model import Contact
from tracker.crm.rules.clock import is_quiet, quiet_reason, zone_of
from tracker.crm.rules.cron import CronError, latest_fire, next_fire, parse_cron
from tracker.crm.rules.define import parse_quiet, parse_trigger

MONDAY = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def _weekdays(expression: str) -> list[str]:
    """The weekdays of the fire times in the week starting Monday 2026-11-30, in UTC."""
    trigger = parse_cron(expression, "UTC")
    days, fire = [], next_fire(trigger, MONDAY - timedelta(seconds=1))
    while fire is not None and fire < MONDAY + timedelta(days=7):
        days.append(fire.strftime("%a"))
        fire = next_fire(trigger, fire)
    return days


@pytest.mark.parametrize(("dow", "days"), [
    ("1", ["Mon"]),
    ("0", ["Sun"]),
    ("7", ["Sun"]),
    ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
    ("5-7", ["Fri", "Sat", "Sun"]),
    ("*/2", ["Tue", "Thu", "Sat", "Sun"]),  # crontab counts from Sunday: sun, tue, thu, sat
    ("mon,wed", ["Mon", "Wed"]),
    ("sat-sun", ["Sat", "Sun"]),
    ("0-7", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ("1-5/2", ["Mon", "Wed", "Fri"]),
])
def test_day_of_week_means_what_crontab_means(dow: str, days: list[str]) -> None:
    assert _weekdays(f"0 9 * * {dow}") == days


def test_fire_times_follow_the_rule_zone() -> None:
    trigger = parse_cron("0 9 * * 1", "Europe/Paris")
    fire = next_fire(trigger, MONDAY)
    assert fire.astimezone(UTC) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Paris


def test_latest_fire_coalesces_the_missed_ones_and_ignores_those_before_since() -> None:
    trigger = parse_cron("*/15 * * * *", "UTC")
    since = MONDAY + timedelta(minutes=5)
    assert latest_fire(trigger, since, MONDAY + timedelta(minutes=14)) is None
    assert latest_fire(trigger, since, MONDAY + timedelta(hours=2, minutes=7)) == MONDAY + timedelta(hours=2)
    assert latest_fire(trigger, MONDAY + timedelta(hours=2), MONDAY + timedelta(hours=2)) == \
        MONDAY + timedelta(hours=2)


@pytest.mark.parametrize(("expression", "message"), [
    ("0 9 * *", "has 4 fields"),
    ("0 9 * * 8", "'8' is not a day of the week"),
    ("0 9 * * 5-1", "runs backwards"),
    ("0 9 * * */0", "must be a positive number"),
    ("0 25 * * *", "higher than the maximum"),
    ("0 9 15 * 1", "restricts both"),
])
def test_bad_cron_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(expression, "UTC")


def test_triggers_parse_into_kind_schedule_and_event() -> None:
    assert parse_trigger("enter", "UTC") == ("enter", None, None)
    assert parse_trigger("event:purchase", "UTC") == ("event", None, "purchase")
    assert parse_trigger("cron:0  9 * * 1", "UTC") == ("schedule", "0 9 * * 1", None)


@pytest.mark.parametrize(("quiet", "hour", "expected"), [
    ("21-8", 20, False), ("21-8", 21, True), ("21-8", 0, True), ("21-8", 7, True), ("21-8", 8, False),
    ("1-5", 0, False), ("1-5", 1, True), ("1-5", 4, True), ("1-5", 5, False),
])
def test_quiet_hours_start_inclusive_end_exclusive_across_midnight(quiet: str, hour: int,
                                                                   expected: bool) -> None:
    start, end = parse_quiet(quiet)
    assert is_quiet(datetime(2026, 12, 1, hour, 30), start, end) is expected


def test_the_contact_zone_wins_when_it_is_a_real_zone() -> None:
    assert zone_of(Contact("c", "a@x.org", attrs={"timezone": "Asia/Tokyo"}), "UTC")[0] == "Asia/Tokyo"
    assert zone_of(Contact("c", "a@x.org", attrs={"timezone": "Nowhere/Else"}), "Europe/Paris")[0] == \
        "Europe/Paris"
    noon_utc = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    tokyo = Contact("c", "a@x.org", attrs={"timezone": "Asia/Tokyo"})
    assert quiet_reason(tokyo, "UTC", 21, 8, noon_utc) == "quiet hours (21:00 Asia/Tokyo, until 08:00)"
    assert quiet_reason(Contact("d", "b@x.org"), "UTC", 21, 8, noon_utc) is None
