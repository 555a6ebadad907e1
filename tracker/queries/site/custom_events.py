"""Custom events: how many visitors fired each event name in the period, and how often.

Custom events are every event the site sends besides pageviews and engagement reports (the
snippet's ``outbound`` and ``download``, ``404``, and whatever ``odnos.track`` sends); ``identify``
and the email and campaign events are not site behaviour and are left out. The conversion rate is
the event's visitors over the period's visitors (``page_stats``), in percent. From
``rollup_events_daily`` when the period is whole days and unfiltered; otherwise raw events.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters, check_limit
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.queries.site.page_stats import page_stats_sql
from tracker.store.base import EventStore

NOT_CUSTOM = ("pageview", "engagement", "identify", "email_sent", "email_open", "email_click", "email_bounce",
              "unsubscribe", "survey_response")
NOT_CUSTOM_SQL = "name NOT IN (" + ", ".join(f"'{name}'" for name in NOT_CUSTOM) + ")"


@dataclass(frozen=True)
class EventRow:
    name: str
    visitors: int
    events: int
    conversion_rate: float  # percent of the period's visitors


def custom_events(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
                  limit: int = 50, *, raw: bool = False) -> list[EventRow]:
    """Event names, most visitors first (then events, then name)."""
    if not raw and period.aligned("day") and not filters.active():
        source = ("SELECT name, uniqMerge(visitors) AS visitors, countMerge(events) AS events "  # noqa: S608 - our SQL fragments only; values are bound parameters
                  "FROM rollup_events_daily WHERE site_id = %(site_id)s "
                  f"AND day >= %(first_day)s AND day <= %(last_day)s AND {NOT_CUSTOM_SQL} GROUP BY name")
    else:
        source = (f"SELECT name, uniq(visitor_id) AS visitors, count() AS events FROM events "  # noqa: S608 - our SQL fragments only; values are bound parameters
                  f"WHERE {event_where(filters, NOT_CUSTOM_SQL, raw=raw)} GROUP BY name")
    values = params(site_id, period, filters, limit=check_limit(limit))
    rows = store.query(f"SELECT name, visitors, events FROM ({source}) "  # noqa: S608 - our SQL fragments only; values are bound parameters
                       "ORDER BY visitors DESC, events DESC, name LIMIT %(limit)s", values,
                       name="custom events").rows
    if not rows:
        return []
    total = store.query(page_stats_sql(period, filters, raw=raw), values,
                        name="custom events visitors").first()[0]
    return [EventRow(name, visitors, events, 100.0 * visitors / total if total else 0.0)
            for name, visitors, events in rows]
