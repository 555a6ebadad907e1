"""How many bot pageviews the site's numbers leave out, and which bots they were.

Bots (``is_bot = 1``: crawler lists, headless browsers, automation) are stored, never dropped, and
excluded from every other site number; this is the count the dashboard shows beside them. Filters
test each bot pageview's own columns (a bot has no session to take an entry pageview from).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters, check_limit, conditions
from tracker.queries.period import Period
from tracker.queries.scope import params
from tracker.store.base import EventStore


@dataclass(frozen=True)
class BotRow:
    reason: str  # the detector's reason, e.g. crawler_list, headless
    agent: str  # the browser name the parser gave (Googlebot, HeadlessChrome, ...)
    pageviews: int


@dataclass(frozen=True)
class BotStats:
    pageviews: int
    visitors: int
    rows: list[BotRow]


def bots_excluded(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
                  limit: int = 20, *, raw: bool = False) -> BotStats:
    """Bot pageviews and distinct bot visitor ids in the period, and the top (reason, agent) pairs.

    Whole days without filters come from ``rollup_bots_daily``; anything else from raw events.
    """
    values = params(site_id, period, filters, limit=check_limit(limit))
    if not raw and period.aligned("day") and not filters.active():
        where = "site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s"
        source, visitors, pageviews = "rollup_bots_daily", "uniqMerge(visitors)", "countMerge(pageviews)"
    else:
        where = ("site_id = %(site_id)s AND toDate(ts) >= %(first_day)s AND toDate(ts) <= %(last_day)s "
                 "AND ts >= %(start)s AND ts < %(end)s AND name = 'pageview' AND is_bot = 1")
        if filters.active():
            where += " AND " + conditions(filters.active())
        source, visitors, pageviews = "events", "uniq(visitor_id)", "count()"
    total = store.query(f"SELECT {pageviews}, {visitors} FROM {source} WHERE {where}", values,  # noqa: S608 - our SQL fragments only; values are bound parameters
                        name="bots").first()
    rows = store.query(f"SELECT bot_reason, browser, {pageviews} AS views FROM {source} WHERE {where} "  # noqa: S608 - our SQL fragments only; values are bound parameters
                       "GROUP BY bot_reason, browser ORDER BY views DESC, bot_reason, browser "
                       "LIMIT %(limit)s", values, name="bots by agent").rows
    return BotStats(total[0], total[1], [BotRow(*row) for row in rows])
