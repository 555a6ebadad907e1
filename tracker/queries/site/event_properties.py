"""The properties of one custom event: each key and value sent with it, with visitors and counts.

Properties travel as parallel arrays (``props.key``, ``props.value``; no Map on ClickHouse 18.16),
so each (key, value) pair is one row here, from raw events (filters as in ``tracker.queries.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters, check_limit
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.store.base import EventStore


@dataclass(frozen=True)
class PropertyRow:
    key: str
    value: str
    visitors: int
    events: int


def event_properties(store: EventStore, site_id: str, period: Period, event: str,
                     filters: Filters = NO_FILTERS, limit: int = 50) -> list[PropertyRow]:
    """Property pairs of the events named ``event``, most events first (then visitors, key, value)."""
    if not isinstance(event, str):
        event = ""
    where = event_where(filters, "name = %(event)s")
    sql = ("SELECT prop_key, prop_value, uniq(visitor_id) AS visitors, count() AS events FROM events "  # noqa: S608 - our SQL fragments only; values are bound parameters
           "ARRAY JOIN props.key AS prop_key, props.value AS prop_value "
           f"WHERE {where} GROUP BY prop_key, prop_value "
           "ORDER BY events DESC, visitors DESC, prop_key, prop_value LIMIT %(limit)s")
    rows = store.query(sql, params(site_id, period, filters, event=event[:200], limit=check_limit(limit)),
                       name="event properties").rows
    return [PropertyRow(*row) for row in rows]
