"""Retention by weekly cohort: of the visitors first seen in a week, how many came back each week after.

Weeks are ISO weeks (Monday to Sunday, UTC), and the period is widened to the whole weeks it
touches. A visitor's cohort is the first of those weeks in which it viewed a page; ``retained[k]``
counts the cohort's visitors who viewed a page in week k after it (``retained[0]`` is the whole
cohort). A visitor who came before the period belongs to the cohort of its first week inside it.
Unfiltered, from ``rollup_visitor_weeks``; otherwise raw events (filters as ``tracker.queries.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period, as_datetime, floor
from tracker.queries.scope import event_where, params
from tracker.store.base import EventStore


@dataclass(frozen=True)
class Cohort:
    week: date  # the cohort's Monday
    visitors: int
    retained: list[int]  # retained[k]: the cohort's visitors seen k weeks later (k = 0 is everyone)


def whole_weeks(period: Period) -> Period:
    """``period`` widened to start on a Monday and end after a Sunday."""
    last = floor(period.end - timedelta(seconds=1), "week")
    return Period(floor(period.start, "week"), last + timedelta(days=7))


def retention(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS, *,
              raw: bool = False) -> list[Cohort]:
    """One cohort per week of the (widened) period that has new visitors, oldest first."""
    weeks = whole_weeks(period)
    if not raw and not filters.active():
        source = ("SELECT visitor, week FROM rollup_visitor_weeks WHERE site_id = %(site_id)s "
                  "AND week >= %(first_day)s AND week <= %(last_day)s")
    else:
        # The weeks bound the pageviews even under a landing filter (whose visits reach a day further).
        source = (f"SELECT cityHash64(visitor_id) AS visitor, toMonday(ts) AS week FROM events "  # noqa: S608 - our SQL fragments only; values are bound parameters
                  f"WHERE {event_where(filters, raw=raw)} AND ts >= %(start)s AND ts < %(end)s")
    sql = ("SELECT cohort, toRelativeWeekNum(seen) - toRelativeWeekNum(cohort) AS later, count() AS visitors "  # noqa: S608 - our SQL fragments only; values are bound parameters
           f"FROM (SELECT visitor, min(week) AS cohort, groupUniqArray(week) AS weeks FROM ({source}) "
           "GROUP BY visitor) ARRAY JOIN weeks AS seen GROUP BY cohort, later ORDER BY cohort, later")
    rows = store.query(sql, params(site_id, weeks, filters), name="retention").rows
    total = (weeks.end - weeks.start).days // 7
    cohorts: dict[date, list[int]] = {}
    for cohort, later, visitors in rows:
        start = as_datetime(cohort).date()
        span = total - (start - weeks.start.date()).days // 7
        cohorts.setdefault(start, [0] * span)[later] = visitors
    return [Cohort(week, counts[0], counts) for week, counts in sorted(cohorts.items())]
