"""Entry pages: the first page of each visit that began in the period, with its visits and bounce rate.

Sessions and their entry page as ``tracker.queries.sessions`` defines them; rows are
``breakdowns.VisitRow`` (visitors, visits that entered there, their bounce rate and duration).
"""

from __future__ import annotations

from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.site.breakdowns import VisitRow, visit_breakdown
from tracker.store.base import EventStore


def entry_pages(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
                limit: int = 10, *, raw: bool = False) -> list[VisitRow]:
    """The pages visits began on, most visitors first."""
    return visit_breakdown(store, site_id, period, filters, "entry", limit, raw=raw)
