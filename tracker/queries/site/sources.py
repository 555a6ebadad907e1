"""Where visits came from: by referrer source (search, social, email, direct, other) or referrer domain.

A visit's source is its entry pageview's (``tracker.queries.sessions``); later pageviews have the
site itself as referrer and do not count. By domain, visits without a referrer (direct, or email
apps that send none) are left out of the table, as Plausible leaves out "Direct / None" there.
"""

from __future__ import annotations

from tracker.queries.filters import NO_FILTERS, Filters, check_choice
from tracker.queries.period import Period
from tracker.queries.site.breakdowns import VisitRow, visit_breakdown
from tracker.store.base import EventStore

DIMENSIONS = ("referrer_source", "referrer_domain")


def sources(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
            dimension: str = "referrer_source", limit: int = 10, *, raw: bool = False) -> list[VisitRow]:
    """Visits by ``dimension`` (``referrer_source`` or ``referrer_domain``), most visitors first."""
    check_choice(dimension, DIMENSIONS)
    return visit_breakdown(store, site_id, period, filters, f"session_{dimension}", limit,
                           skip_empty=dimension == "referrer_domain", raw=raw)
