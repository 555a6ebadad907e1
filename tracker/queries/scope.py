"""What a site question covers, as SQL: the site, the period and the filters over raw events.

Page-level numbers (visitors, pageviews, top pages, countries, devices, custom events, goals,
funnels, retention) count the non-bot events whose time falls in ``[start, end)``; hit filters
(page, country, device, browser, OS) test each event's own value.

A landing filter (source, referrer domain, UTM tag) describes how a visit arrived, which only its
entry pageview records, so it turns the view into one of visits: the numbers are then those of the
visits that began in the period and match every filter (``tracker.queries.sessions``), whole,
with their events (and each event still passes the hit filters). Visitors and pageviews are then
the visits' visitors and all their pageviews, and a time series puts them in the bucket the visit
began in, so "visitors from Google" are the people whose visits came from Google.

The ``toDate(ts)`` bounds let ClickHouse use the table's primary key ``(site_id, toDate(ts), ...)``.

``params`` builds every parameter the SQL of this package names; ``store.query`` renders them.
"""

from __future__ import annotations

from typing import Any

from tracker.errors import OdnosError
from tracker.queries.filters import Filters, conditions
from tracker.queries.period import Period
from tracker.queries.sessions import session_rows

MAX_SITE_ID = 200


def params(site_id: str, period: Period, filters: Filters, **more: Any) -> dict[str, Any]:
    """The parameters of a site question: ``site_id``, the period's (``Period.params``), the filters'."""
    if not isinstance(site_id, str) or len(site_id) > MAX_SITE_ID:
        raise OdnosError(f"the site id must be text of at most {MAX_SITE_ID} characters", code="bad_site")
    return {"site_id": site_id, **period.params(), **filters.params(), **more}


def event_where(filters: Filters, names: str = "name = 'pageview'", *, raw: bool = False) -> str:
    """The WHERE of a page-level question over ``events``: site, period (or, under a landing
    filter, the matching visits' events), non-bot, ``names`` (an SQL test of the event name) and
    the hit filters, as described above."""
    if filters.of_kind("landing"):
        sessions = session_rows([], filters, raw=raw)
        parts = ["site_id = %(site_id)s", "toDate(ts) >= toDate(%(first_day)s) - 1",
                 "toDate(ts) <= toDate(%(last_day)s) + 1",
                 f"cityHash64(session_id) IN (SELECT session FROM ({sessions}))"]  # noqa: S608 - scope fragments come from our query modules; values bound
    else:
        parts = ["site_id = %(site_id)s", "toDate(ts) >= %(first_day)s", "toDate(ts) <= %(last_day)s",
                 "ts >= %(start)s", "ts < %(end)s"]
    hit = filters.of_kind("hit")
    return " AND ".join([*parts, "is_bot = 0", names, *([conditions(hit)] if hit else [])])
