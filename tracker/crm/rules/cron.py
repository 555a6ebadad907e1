"""Cron expressions for schedule rules: checked as crontab means them, fire times from APScheduler.

APScheduler's ``CronTrigger.from_crontab`` numbers the days of the week from Monday (0) while
crontab numbers them from Sunday (0 or 7), so ``0 9 * * 1`` would fire on Tuesdays. The day-of-week
field is therefore rewritten as crontab reads it (numbers, names, ranges, steps) into day names
before APScheduler sees it. Crontab fires when *either* a restricted day of month or a restricted
day of week matches, APScheduler when both do; rather than guess, an expression restricting both
is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from tracker.errors import OdnosError

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_EXAMPLE = "e.g. '0 9 * * 1' (Mondays at 9:00) or '*/30 8-18 * * mon-fri'"


class CronError(OdnosError):
    code = "bad_cron"


def _day(text: str, expression: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    if text.lower() in DAY_NAMES:
        return DAY_NAMES.index(text.lower())
    raise CronError(f"cron {expression!r}: {text!r} is not a day of the week (0-7 or sun-sat); {_EXAMPLE}")


def _days_of_week(field: str, expression: str) -> set[int]:
    """The days (0 = Sunday) a crontab day-of-week field names."""
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise CronError(f"cron {expression!r}: step {step_text!r} must be a positive number; {_EXAMPLE}")
        step = int(step_text or 1)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, _, high = span.partition("-")
            first, last = _day(low, expression), _day(high, expression)
            if high == "7" or (last == 0 and first > 0):
                last = 7  # 5-7 and sat-sun end on Sunday
            if last < first:
                raise CronError(f"cron {expression!r}: range {span!r} runs backwards; {_EXAMPLE}")
        else:
            first = last = _day(span, expression)
            if step_text:
                last = 6  # 1/2: from Monday, every other day
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def parse_cron(expression: str, timezone: str) -> CronTrigger:
    """The trigger of a five-field crontab expression in ``timezone``; ``CronError`` says what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"cron {expression!r} has {len(fields)} fields, not 5 (minute hour day month "
                        f"weekday); {_EXAMPLE}")
    if fields[2] != "*" and fields[4] != "*":
        raise CronError(f"cron {expression!r} restricts both the day of the month and the day of the week; "
                        "crontab would fire when either matches, which is rarely meant: keep one '*'")
    if fields[4] != "*":
        days = _days_of_week(fields[4], expression)
        fields[4] = ",".join(DAY_NAMES[day] for day in sorted(days))
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=ZoneInfo(timezone))
    except ValueError as exc:
        raise CronError(f"cron {expression!r}: {exc}; {_EXAMPLE}") from None


def latest_fire(trigger: CronTrigger, since: datetime, now: datetime) -> datetime | None:
    """The last fire time in [``since``, ``now``], or None; earlier fires in the range coalesce into it."""
    fire = trigger.get_next_fire_time(None, since)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(latest, latest + timedelta(seconds=1))
    return latest


def next_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The first fire time after ``now``."""
    return trigger.get_next_fire_time(None, now + timedelta(seconds=1))
