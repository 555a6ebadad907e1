"""The date range a dashboard question covers: validation, the previous period, time buckets, gaps.

A period is ``[start, end)`` in UTC (naive datetimes, as both store backends return them). It is
checked once, here, so every query can trust it: a reversed, empty or too long range, or a value
that is not a datetime, is an ``OdnosError`` with code ``bad_period`` (a 400), never a traceback.

Time series pick their bucket from the length, as Plausible does: hours up to two days, days up
to 92, ISO weeks (starting Monday) up to a year and a bit, months beyond. ClickHouse 18.16 has no
``WITH FILL``, so ``fill`` puts the empty buckets back in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tracker.errors import OdnosError

MAX_SPAN = timedelta(days=732)  # two years and a leap day: room for "last 12 months" and its previous period
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2100, 1, 1)
BUCKETS = ("hour", "day", "week", "month")
# ClickHouse expressions that floor a DateTime('UTC') column to a bucket; a whitelist, never user text.
BUCKET_SQL = {"hour": "toStartOfHour({col})", "day": "toDate({col})", "week": "toMonday({col})",
              "month": "toStartOfMonth({col})"}


def _utc(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=0)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise OdnosError(f"the period's {name} must be a date or a datetime, not {type(value).__name__}",
                     code="bad_period")


def floor(moment: datetime, bucket: str) -> datetime:
    """The start of the bucket ``moment`` falls in (weeks start on Monday, as ``toMonday``)."""
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    raise OdnosError(f"unknown time bucket {bucket!r}; use one of {', '.join(BUCKETS)}", code="bad_bucket")


def _next(moment: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return moment + timedelta(hours=1)
    if bucket == "day":
        return moment + timedelta(days=1)
    if bucket == "week":
        return moment + timedelta(days=7)
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1)


def as_datetime(value: datetime | date) -> datetime:
    """A bucket label from the store (a Date for days, weeks and months) as a naive UTC datetime."""
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; build with ``Period(start, end)``, ``Period.days`` or ``Period.last``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if not (EARLIEST <= start <= LATEST and EARLIEST <= end <= LATEST):
            raise OdnosError(f"the period must lie between {EARLIEST:%Y} and {LATEST:%Y}", code="bad_period")
        if end <= start:
            raise OdnosError(f"the period ends ({end:%Y-%m-%d %H:%M}) before it starts "
                             f"({start:%Y-%m-%d %H:%M}); swap the dates", code="bad_period")
        if end - start > MAX_SPAN:
            raise OdnosError(f"the period is {(end - start).days} days long; the longest is "
                             f"{MAX_SPAN.days} days", code="bad_period")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @classmethod
    def days(cls, first: date, last: date) -> Period:
        """Whole UTC days from ``first`` to ``last``, both included (what a date picker gives)."""
        return cls(_utc(first, "start"), _utc(last, "end") + timedelta(days=1))

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> Period:
        """The ``span`` before ``now`` (default: the clock), ending at now."""
        end = _utc(now, "end") if now is not None else datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        return cls(end - span, end)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length just before this one (what changes are compared against)."""
        return Period(self.start - self.length, self.start)

    def bucket(self) -> str:
        """The time bucket a series over this period uses."""
        if self.length <= timedelta(days=2):
            return "hour"
        if self.length <= timedelta(days=92):
            return "day"
        if self.length <= timedelta(days=400):
            return "week"
        return "month"

    def aligned(self, unit: str) -> bool:
        """True when both ends fall on ``unit`` boundaries (``hour`` or ``day``): a rollup of that grain
        then covers the period exactly."""
        return floor(self.start, unit) == self.start and floor(self.end, unit) == self.end

    def buckets(self, bucket: str) -> list[datetime]:
        """Every bucket start from the one holding ``start`` to the last one before ``end``."""
        moment, found = floor(self.start, bucket), []
        while moment < self.end:
            found.append(moment)
            moment = _next(moment, bucket)
        return found

    def params(self) -> dict[str, Any]:
        """The period as SQL parameters: ``start``/``end`` datetimes, ``start_ms``/``end_ms`` epoch
        milliseconds (the sessions' start key), ``first_day``/``last_day`` dates (for the primary key)."""
        last = self.end - timedelta(seconds=1)
        return {"start": self.start, "end": self.end, "first_day": self.start.date(), "last_day": last.date(),
                "start_ms": _epoch_ms(self.start), "end_ms": _epoch_ms(self.end)}


def _epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp()) * 1000


def fill(period: Period, bucket: str, rows: Iterable[tuple], empty: Callable[[datetime], Any],
         make: Callable[[datetime, tuple], Any]) -> list:
    """One value per bucket of ``period``: ``make(start, row)`` where ``rows`` (first column the
    bucket) has one, ``empty(start)`` where it has none."""
    found = {as_datetime(row[0]): row for row in rows}
    return [make(start, found[start]) if start in found else empty(start) for start in period.buckets(bucket)]
