"""Visitors and pageviews of a period, in total or per time bucket: the rollup that can answer, or events.

Visitors are the distinct ``visitor_id`` of non-bot pageviews whose time falls in the period (or
bucket); pageviews are those pageviews. Under a landing filter they are the matching visits'
visitors and pageviews instead, by the bucket each visit began in (``tracker.queries.scope``). The
fast path, chosen here:

- no filter and an hour-aligned period: ``rollup_hourly`` (one row per hour);
- only country, device, browser or OS filters, whole days and no hourly buckets: ``rollup_dims_daily``;
- only the page filter, whole days and no hourly buckets: ``rollup_pages_daily``;
- a landing filter: the sessions (``tracker.queries.sessions``: finished days scanned, the rest grouped);
- anything else (mixed hit filters, periods not on the rollup's grain): raw events.

Visitor states are merged (``uniqMerge``) across the rows of a bucket, never summed: a visitor of
two hours is one visitor of the day.
"""

from __future__ import annotations

from tracker.queries.filters import Filters, conditions
from tracker.queries.period import BUCKET_SQL, Period
from tracker.queries.scope import event_where
from tracker.queries.sessions import session_rows

DIM_FILTERS = ("country", "device", "browser", "os")


def page_stats_sql(period: Period, filters: Filters, bucket: str | None = None, *, raw: bool = False) -> str:
    """SQL selecting ``[bucket,] visitors, pageviews`` (grouped by ``bucket`` when given)."""
    hourly = bucket == "hour"
    if filters.of_kind("landing"):
        source = f"({session_rows(['visitor', 'views'], filters, raw=raw)})"
        column, where = "toDateTime(intDiv(began, 1000), 'UTC')", "1"
        visitors, pageviews = "uniq(visitor)", "sum(views)"
    elif raw:
        source, column, where = "events", "ts", event_where(filters, raw=True)
        visitors, pageviews = "uniq(visitor_id)", "count()"
    elif not filters.active() and period.aligned("hour"):
        source, column = "rollup_hourly", "hour"
        where = "site_id = %(site_id)s AND hour >= %(start)s AND hour < %(end)s"
        visitors, pageviews = "uniqMerge(visitors)", "countMerge(pageviews)"
    elif not hourly and period.aligned("day") and filters.only(*DIM_FILTERS):
        source, column = "rollup_dims_daily", "day"
        where = " AND ".join(["site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s",
                              *([conditions(filters.active())] if filters.active() else [])])
        visitors, pageviews = "uniqMerge(visitors)", "countMerge(pageviews)"
    elif not hourly and period.aligned("day") and filters.only("page"):
        source, column = "rollup_pages_daily", "day"
        where = ("site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s AND "
                 + conditions(["page"]))
        visitors, pageviews = "uniqIfMerge(visitors)", "sumMerge(pageviews)"
    else:
        return page_stats_sql(period, filters, bucket, raw=True)
    if bucket is None:
        return f"SELECT {visitors} AS visitors, {pageviews} AS pageviews FROM {source} WHERE {where}"  # noqa: S608 - bucket from BUCKET_SQL, sources and filters ours; values bound
    label = BUCKET_SQL[bucket].format(col=column)
    return (f"SELECT {label} AS bucket, {visitors} AS visitors, {pageviews} AS pageviews FROM {source} "  # noqa: S608 - bucket from BUCKET_SQL, sources and filters ours; values bound
            f"WHERE {where} GROUP BY bucket")
