"""Visitors and pageviews by device class (desktop, mobile, tablet), browser or operating system.

One question, three whitelisted dimensions of the same shape; each pageview counts under its own
value (``breakdowns.pageview_breakdown``).
"""

from __future__ import annotations

from tracker.queries.filters import NO_FILTERS, Filters, check_choice
from tracker.queries.period import Period
from tracker.queries.site.breakdowns import PageviewRow, pageview_breakdown
from tracker.store.base import EventStore

DIMENSIONS = ("device", "browser", "os")


def devices(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
            dimension: str = "device", limit: int = 10, *, raw: bool = False) -> list[PageviewRow]:
    """Pageviews by ``dimension`` (``device``, ``browser`` or ``os``), most visitors first."""
    check_choice(dimension, DIMENSIONS)
    return pageview_breakdown(store, site_id, period, filters, dimension, limit, raw=raw)
