"""Top pages: visitors, pageviews and time on page per path, over non-bot pageviews in the period.

Time on page is the engaged time the snippet reported for the path (engagement events carry it)
per pageview, in seconds. From ``rollup_pages_daily`` when the period is whole days and no filter
but ``page`` is set; otherwise raw events (filters as in ``tracker.queries.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters, check_limit, conditions
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.store.base import EventStore


@dataclass(frozen=True)
class PageRow:
    page: str
    visitors: int
    pageviews: int
    time_on_page: float  # engaged seconds per pageview


def page_rows_sql(period: Period, filters: Filters, *, raw: bool = False, paths: bool = False) -> str:
    """SQL selecting ``page, visitors, pageviews, engaged`` per path; ``paths`` keeps only the paths
    in the parameter ``%(paths)s``."""
    only = " AND pathname IN %(paths)s" if paths else ""
    if not raw and period.aligned("day") and filters.only("page"):
        where = "site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s" + only
        if filters.page is not None:
            where += " AND " + conditions(["page"])
        return ("SELECT pathname AS page, uniqIfMerge(visitors) AS visitors, "  # noqa: S608 - our SQL fragments only; values are bound parameters
                "sumMerge(pageviews) AS pageviews, sumMerge(engaged) AS engaged "
                f"FROM rollup_pages_daily WHERE {where} GROUP BY page "
                "HAVING pageviews > 0")
    where = event_where(filters, "name IN ('pageview', 'engagement')", raw=raw) + only
    return ("SELECT pathname AS page, uniqIf(visitor_id, name = 'pageview') AS visitors, "  # noqa: S608 - our SQL fragments only; values are bound parameters
            "countIf(name = 'pageview') AS pageviews, "
            "sumIf(toUInt64(engaged_ms), name = 'engagement') AS engaged "
            f"FROM events WHERE {where} GROUP BY page HAVING pageviews > 0")


def top_pages(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
              limit: int = 10, *, raw: bool = False) -> list[PageRow]:
    """The most visited paths, most visitors first (then pageviews, then path)."""
    sql = (f"SELECT page, visitors, pageviews, engaged FROM ({page_rows_sql(period, filters, raw=raw)}) "  # noqa: S608 - our SQL fragments only; values are bound parameters
           "ORDER BY visitors DESC, pageviews DESC, page LIMIT %(limit)s")
    rows = store.query(sql, params(site_id, period, filters, limit=check_limit(limit)), name="top pages").rows
    return [PageRow(page, visitors, pageviews, engaged / pageviews / 1000)
            for page, visitors, pageviews, engaged in rows]
