"""Visitors and pageviews by country (ISO 3166 alpha-2, from the collector's offline database).

Each pageview counts under its own country (``breakdowns.pageview_breakdown``); '' is unknown.
"""

from __future__ import annotations

from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.site.breakdowns import PageviewRow, pageview_breakdown
from tracker.store.base import EventStore


def countries(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
              limit: int = 250, *, raw: bool = False) -> list[PageviewRow]:
    """Countries, most visitors first (the default limit covers every country, for a map)."""
    return pageview_breakdown(store, site_id, period, filters, "country", limit, raw=raw)
