"""Visits by UTM tag of their entry pageview: utm_source, utm_medium or utm_campaign.

Visits whose entry carried no such tag are left out (the table lists tagged traffic only).
"""

from __future__ import annotations

from tracker.queries.filters import NO_FILTERS, Filters, check_choice
from tracker.queries.period import Period
from tracker.queries.site.breakdowns import VisitRow, visit_breakdown
from tracker.store.base import EventStore

DIMENSIONS = ("utm_source", "utm_medium", "utm_campaign")


def utm(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
        dimension: str = "utm_campaign", limit: int = 10, *, raw: bool = False) -> list[VisitRow]:
    """Visits by the UTM ``dimension``, most visitors first."""
    check_choice(dimension, DIMENSIONS)
    return visit_breakdown(store, site_id, period, filters, f"session_{dimension}", limit, skip_empty=True,
                           raw=raw)
