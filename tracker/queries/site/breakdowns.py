"""The two shapes of breakdown table the site panels share: by a visit attribute, by a pageview column.

- ``visit_breakdown``: sessions that began in the period grouped by one of their attributes (entry
  or exit page, source, referrer domain, UTM tag): visitors, visits, bounce rate, visit duration.
  From the sessions rollup unless ``raw``.
- ``pageview_breakdown``: non-bot pageviews in the period grouped by their own country, device,
  browser or OS: visitors and pageviews. From ``rollup_dims_daily`` when the period is whole days
  and only those four dimensions are filtered, else raw events.

Rows are ordered by visitors, then the other count, then the value, so equal counts keep a stable
order; ``limit`` caps them (1 to 1000).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import Filters, check_limit, conditions
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.queries.sessions import BOUNCED, session_rows
from tracker.queries.site.page_stats import DIM_FILTERS
from tracker.store.base import EventStore


@dataclass(frozen=True)
class VisitRow:
    value: str
    visitors: int
    visits: int
    bounce_rate: float  # percent of the row's visits
    visit_duration: float  # mean engaged seconds


@dataclass(frozen=True)
class PageviewRow:
    value: str
    visitors: int
    pageviews: int


def visit_breakdown(store: EventStore, site_id: str, period: Period, filters: Filters, column: str,
                    limit: int, *, skip_empty: bool = False, raw: bool = False) -> list[VisitRow]:
    """Visits grouped by the session column ``column`` (a key of ``sessions.COLUMNS``)."""
    rows = session_rows([column, "visitor", "views", "actions", "engaged_time"], filters, raw=raw)
    having = "HAVING value != ''" if skip_empty else ""
    sql = (f"SELECT {column} AS value, uniq(visitor) AS visitors, count() AS visits, "  # noqa: S608 - column from a whitelist (sessions.COLUMNS, DIMENSIONS); values bound
           f"sum({BOUNCED}) AS bounces, sum(engaged_time) AS engaged FROM ({rows}) GROUP BY value {having} "
           "ORDER BY visitors DESC, visits DESC, value LIMIT %(limit)s")
    found = store.query(sql, params(site_id, period, filters, limit=check_limit(limit)),
                        name=f"visits by {column}").rows
    return [VisitRow(value, visitors, visits, 100.0 * bounces / visits, engaged / visits / 1000)
            for value, visitors, visits, bounces, engaged in found]


def pageview_breakdown(store: EventStore, site_id: str, period: Period, filters: Filters, column: str,
                       limit: int, *, raw: bool = False) -> list[PageviewRow]:
    """Pageviews grouped by their own ``column`` (country, device, browser or os)."""
    if not raw and period.aligned("day") and filters.only(*DIM_FILTERS):
        where = " AND ".join(["site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s",
                              *([conditions(filters.active())] if filters.active() else [])])
        source = (f"SELECT {column} AS value, uniqMerge(visitors) AS visitors, "  # noqa: S608 - column from a whitelist (sessions.COLUMNS, DIMENSIONS); values bound
                  f"countMerge(pageviews) AS pageviews FROM rollup_dims_daily WHERE {where} GROUP BY value")
    else:
        source = (f"SELECT {column} AS value, uniq(visitor_id) AS visitors, count() AS pageviews "  # noqa: S608 - column from a whitelist (sessions.COLUMNS, DIMENSIONS); values bound
                  f"FROM events WHERE {event_where(filters, raw=raw)} GROUP BY value")
    sql = (f"SELECT value, visitors, pageviews FROM ({source}) "  # noqa: S608 - column from a whitelist (sessions.COLUMNS, DIMENSIONS); values bound
           "ORDER BY visitors DESC, pageviews DESC, value LIMIT %(limit)s")
    found = store.query(sql, params(site_id, period, filters, limit=check_limit(limit)),
                        name=f"pageviews by {column}").rows
    return [PageviewRow(*row) for row in found]
